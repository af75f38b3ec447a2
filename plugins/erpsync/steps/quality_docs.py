"""Data Docs: a window's validation results as static pages, in the layout of GX's Data Docs site.

``quality/docs/`` holds ``index.html``, ``expectations/<suite>.html`` (the suite's rules) and
``validations/<suite>/<run name>/<run time>/<batch id>.html`` (one run of the suite over the window),
the paths GX's site builder gives them and the erpsync UI links. The pages are written from the GX
result JSON validate saves, without importing GX (importing it alone takes seconds); every value is
HTML-escaped. Their icon and logo come from GX's static folder, stored once per GX version at
``<staging root>/_gx_static/<version>/`` (4 MB, the same for every window) and linked relatively, so
the pages work served by the erpsync UI and opened from a local staging folder alike.
"""

from __future__ import annotations

import html
import importlib.metadata
import importlib.util
import json
import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from erpsync.staging import RunFiles, StoragePath, remove_tree, write_bytes
from erpsync.steps.rules import Suite

GX_STATIC = "_gx_static"
_PUBLISHED = ".published"  # written last: the shared copy is whole
_DEPTH_TO_ROOT = 4  # docs -> quality -> window -> dag -> staging root
_STYLE = """
body { font-family: system-ui, sans-serif; margin: 0 1.5rem 2rem; font-size: 14px; }
nav.navbar { padding: 0.5rem 0; border-bottom: 1px solid #ddd; margin-bottom: 1rem; }
nav.navbar img { height: 32px; }
table { border-collapse: collapse; margin: 0.4rem 0 1rem; }
th, td { border: 1px solid #ddd; padding: 0.25rem 0.5rem; text-align: left; vertical-align: top; }
.text-danger { color: #c53030; } .text-success { color: #2f855a; } code { background: #f5f5f5; }
"""


@dataclass(frozen=True)
class Validation:
    """One suite's run over one staged file: its GX result JSON, whose results follow the suite's rules."""

    suite: Suite
    result: Mapping[str, Any]
    batch_id: str
    data: str  # the staged file checked, e.g. lines.parquet
    run_name: str
    run_time: datetime

    @property
    def page(self) -> str:
        """Its page under docs/: GX's validations/<suite>/<run name>/<run time>/<batch id>.html."""
        folder = self.run_time.strftime("%Y%m%dT%H%M%S.%fZ")
        return (
            f"validations/{_segment(self.suite.name)}/{_segment(self.run_name)}/{folder}/{_segment(self.batch_id)}.html"
        )


def _suite_page(suite: Suite) -> str:
    """A suite's page under docs/: GX's expectations/<suite>.html."""
    return f"expectations/{_segment(suite.name)}.html"


def _segment(text: str) -> str:
    """A path segment: a run name holding a slash must not make folders."""
    return text.replace("/", "_").replace("\\", "_") or "_"


def gx_version() -> str:
    """The installed GX's version, read from its metadata: importing GX costs seconds."""
    return importlib.metadata.version("great_expectations")


def shared_static(files: RunFiles) -> StoragePath:
    """Where the Data Docs static folder of the installed GX lives: beside the DAG folders."""
    return files.dir.parent.parent / GX_STATIC / gx_version()


def _gx_static_folder() -> Path:
    spec = importlib.util.find_spec("great_expectations")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("great_expectations is not installed: its Data Docs static files are missing")
    return Path(next(iter(spec.submodule_search_locations))) / "render" / "view" / "static"


def publish_static(files: RunFiles) -> StoragePath:
    """Store GX's static folder once per GX version under the staging root; return where it is."""
    shared = shared_static(files)
    if not (shared / _PUBLISHED).exists():  # concurrent windows write the same bytes, atomically
        static = _gx_static_folder()
        for file in sorted(p for p in static.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
            target = shared
            for part in file.relative_to(static).parts:
                target = target / part
            write_bytes(file.read_bytes(), target)
        write_bytes(b"", shared / _PUBLISHED)
    return shared


def write_site(files: RunFiles, validations: Sequence[Validation]) -> StoragePath:
    """Make ``quality/docs/`` the pages of these validations (dropping what a previous run left);
    return its index page."""
    version = publish_static(files).name
    docs = files.quality / "docs"
    remove_tree(docs)
    for relative, text in site(validations, version).items():
        target = docs
        for part in relative.split("/"):
            target = target / part
        write_bytes(text.encode("utf-8"), target)
    return docs / "index.html"


def site(validations: Sequence[Validation], version: str) -> dict[str, str]:
    """Every page of the site by its path under docs/."""
    pages = {"index.html": _index(validations, version)}
    for validation in validations:
        pages[_suite_page(validation.suite)] = _suite_html(validation.suite, version)
        pages[validation.page] = _validation_page(validation, version)
    return pages


# -- pages --------------------------------------------------------------------------------------------


def _e(value: Any) -> str:
    return html.escape("null" if value is None else str(value))


def _up(page: str) -> str:
    """The relative path from ``page`` (under docs/) back to docs/."""
    return "../" * page.count("/")


def _frame(page: str, version: str, title: str, body: str) -> str:
    static = posixpath.join(*([".."] * (page.count("/") + _DEPTH_TO_ROOT)), GX_STATIC, version)
    return (
        '<!DOCTYPE html>\n<html>\n<head>\n<meta charset="UTF-8">\n'
        f"<title>{_e(title)}</title>\n"
        f'<link rel="icon" href="{static}/images/favicon.ico">\n'
        f"<style>{_STYLE}</style>\n</head>\n<body>\n"
        f'<nav class="navbar"><a href="{_up(page)}index.html">'
        f'<img src="{static}/images/logo-long-vector.svg" alt="Data Docs"></a></nav>\n'
        f'<div class="container">\n{body}\n</div>\n</body>\n</html>\n'
    )


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], css: str = "table table-sm") -> str:
    """A table; cells are HTML already (escape values before)."""
    header = "".join(f"<th>{h}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{css}"><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>'


def _status(success: Any) -> str:
    if success:
        return '<span class="fas fa-check-circle text-success" title="succeeded">✓</span>'
    return '<span class="fas fa-times text-danger" title="failed">✗</span>'


def _percent(value: Any) -> str:
    return "–" if value is None else f"≈{float(value):.4g}%"


def _observed(result: Mapping[str, Any]) -> str:
    """GX's "observed value": how many rows broke the rule, and the most common values they held."""
    unexpected, total = result.get("unexpected_count") or 0, result.get("element_count") or 0
    if not unexpected:
        return f"≈0% unexpected ({_e(total)} rows)"
    text = (
        f"{_e(unexpected)} unexpected values found. {_percent(result.get('unexpected_percent'))} "
        f"of {_e(total)} total rows."
    )
    counts = result.get("partial_unexpected_counts") or []
    rows = [(_e(c.get("value")), _e(c.get("count"))) for c in counts]
    index = result.get("partial_unexpected_index_list") or []
    sample = ""
    if index:
        columns = list(index[0])
        sample = _table([_e(c) for c in columns], [[_e(row.get(c)) for c in columns] for row in index])
    return (
        f"<p>{text}</p>"
        + _table(["Unexpected Value", "Count"], rows, "table-bordered table-sm mt-3")
        + (f"<p>First rows (up to {len(index)}):</p>{sample}" if sample else "")
    )


def _validation_page(validation: Validation, version: str) -> str:
    result, suite, page = validation.result, validation.suite, validation.page
    stats = result.get("statistics") or {}
    overview = _table(
        ["", ""],
        [
            ["Expectation Suite", f'<a href="{_up(page)}{_e(_suite_page(suite))}">{_e(suite.name)}</a>'],
            ["Data asset", _e(validation.data)],
            ["Status", f"{_status(result.get('success'))} {'Succeeded' if result.get('success') else 'Failed'}"],
            ["Evaluated Expectations", _e(stats.get("evaluated_expectations"))],
            ["Successful Expectations", _e(stats.get("successful_expectations"))],
            ["Unsuccessful Expectations", _e(stats.get("unsuccessful_expectations"))],
            ["Success Percent", _percent(stats.get("success_percent"))],
        ],
    )
    meta = result.get("meta") or {}
    info = _table(
        ["", ""],
        [
            ["Run Name", _e(validation.run_name)],
            ["Run Time", _e(validation.run_time.isoformat())],
            ["Results format", f"Great Expectations {_e(meta.get('great_expectations_version'))}"],
            ["Checked by", _e(meta.get("validator"))],
        ],
    )
    by_column: dict[str, list[list[str]]] = {}  # GX's page has a section per column
    for rule, check in zip(suite.rules, result.get("results") or [], strict=True):
        by_column.setdefault(rule.column, []).append(
            [
                _status(check.get("success")),
                f"<code>{_e(rule.check)}</code><br><small>{_e(rule.type)}</small>",
                _observed(check.get("result") or {}),
            ]
        )
    sections = "".join(
        f'<h3 id="{_e(column)}">{_e(column)}</h3>' + _table(["Status", "Expectation", "Observed Value"], rows)
        for column, rows in by_column.items()
    )
    body = (
        f'<p><a href="{_up(page)}index.html">Home</a> / Validations / {_e(suite.name)} / '
        f"{_e(validation.run_name)} / {_e(validation.run_time.isoformat())}</p>\n"
        "<h1>Expectation Validation Result</h1>\n<p>Evaluates whether a batch of data matches expectations.</p>\n"
        f"<h2>Overview</h2>{overview}<h2>Info</h2>{info}<h2>Expectations by column</h2>{sections}"
    )
    return _frame(page, version, f"{suite.name}: validation result", body)


def _suite_html(suite: Suite, version: str) -> str:
    page = _suite_page(suite)
    rows = [
        [
            _e(rule.column),
            f"<code>{_e(rule.check)}</code>",
            _e(rule.type),
            _e(json.dumps({k: v for k, v in rule.kwargs.items() if k != "column"}, default=str) or ""),
        ]
        for rule in suite.rules
    ]
    notes = suite.meta.get("notes")
    body = (
        f'<p><a href="{_up(page)}index.html">Home</a> / Expectation Suites / {_e(suite.name)}</p>\n'
        f"<h1>Expectation Suite: {_e(suite.name)}</h1>\n"
        + (f"<p>{_e(notes)}</p>\n" if notes else "")
        + f"<p>{len(suite.rules)} expectations, from <code>{_e(suite.path.name)}</code>.</p>\n"
        + _table(["Column", "Rule", "Expectation", "Arguments"], rows)
    )
    return _frame(page, version, f"{suite.name}: expectation suite", body)


def _index(validations: Sequence[Validation], version: str) -> str:
    runs = [
        [
            _status(v.result.get("success")),
            f'<a href="{_e(v.page)}">{_e(v.suite.name)}</a>',
            _e(v.run_name),
            _e(v.run_time.isoformat()),
            _e(v.data),
        ]
        for v in validations
    ]
    suites = [[f'<a href="{_e(_suite_page(v.suite))}">{_e(v.suite.name)}</a>'] for v in validations]
    body = (
        "<h1>Data Docs</h1>\n<h2>Validation Results</h2>"
        + _table(["Status", "Expectation Suite", "Run Name", "Run Time", "Data asset"], runs)
        + "<h2>Expectation Suites</h2>"
        + _table(["Expectation Suite"], suites)
    )
    return _frame("index.html", version, "Data Docs", body)
