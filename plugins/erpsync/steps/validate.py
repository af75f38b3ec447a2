"""Validate: Great Expectations suites over the staged orders and lines; failing orders are quarantined.

The suites are files in GX's own JSON form that the scheme names (``source.expectations``: one for the
orders, one for the lines; by default ``include/expectations/``). Their ``meta`` names the columns
that identify a row in the report (``index_columns``) and the columns read as exact decimals
(``decimal_columns``). A stock-out is quarantined as a whole when its header or any of its lines
breaks a rule: a bill with a line missing would be wrong, not just incomplete. ``quarantine.parquet``
lists each broken rule with the order (``order_id``, ``order_no``), the line (``line_id``) and the
offending value as received, the key columns being the ones the API definition names; the GX results
and Data Docs are saved under ``quality/``, Data Docs' static assets once for all windows under
``<staging root>/_gx_static/<GX version>/`` (see ``publish_docs``).
"""

from __future__ import annotations

import json
import logging
import os
import posixpath
import re
import shutil
import tempfile
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import pandas as pd

from erpsync.run import Run
from erpsync.scheme import SourceKeys
from erpsync.staging import RunFiles, StoragePath, read_parquet, replace_tree, write_bytes, write_json, write_parquet

log = logging.getLogger(__name__)

_ROW = "_row"
QUARANTINE_COLUMNS = ["order_id", "order_no", "line_id", "suite", "rule", "check", "column", "value"]
# Data Docs' static folder (css, fonts, images: 4 MB, the same for every window) is stored once per GX
# version, at <staging root>/_gx_static/<version>/; each window keeps only its own pages.
GX_STATIC = "_gx_static"
_PUBLISHED = ".published"  # written last: the shared copy is whole
# href="./static/…", src="../../static/…": a page's link into the site's static folder
_STATIC_LINK = re.compile(r"""(?P<attr>\b(?:href|src)=)(?P<q>["'])(?:\./|(?:\.\./)+)?static/(?P<rest>[^"'<>]*)(?P=q)""")


class ValidationSetupError(RuntimeError):
    """A suite could not be run (a broken suite file, an expectation that raised): not a data problem."""


@dataclass(frozen=True)
class ValidateResult:
    orders: int
    lines: int
    quarantined_orders: int
    broken_rules: int
    docs_index: str


def _decimal(value: Any) -> Decimal | None:
    if value is None or value is pd.NA:
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _typed(frame: pd.DataFrame, decimal_columns: list[str]) -> pd.DataFrame:
    """A copy with decimal columns as Decimal (unparseable text becomes null) and a row number."""
    columns: dict[str, Any] = {_ROW: range(len(frame))}
    for column in frame.columns:
        values = frame[column].astype(object).where(frame[column].notna(), None)
        columns[column] = [_decimal(v) for v in values] if column in decimal_columns else values.to_list()
    return pd.DataFrame(columns)


def _load_suite(path: Path) -> tuple[Any, dict[str, Any]]:
    import great_expectations as gx
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
        suite = gx.ExpectationSuite(
            name=spec["name"],
            expectations=[ExpectationConfiguration(type=e["type"], kwargs=e["kwargs"]) for e in spec["expectations"]],
            meta=spec.get("meta", {}),
        )
    except (OSError, KeyError, TypeError, ValueError) as exc:
        raise ValidationSetupError(f"{path}: not a usable expectation suite: {exc}") from exc
    return suite, spec.get("meta", {})


def validate(run: Run) -> ValidateResult:
    """Run the scheme's ``orders`` suite on the staged orders and its ``lines`` suite on their lines
    (either may be absent: no rules for that table)."""
    files, suites, keys, run_name = run.files, run.scheme.source.suites, run.scheme.source.keys, run.run_id
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    logging.getLogger("great_expectations").setLevel(logging.WARNING)  # its INFO lines drown the task log
    import great_expectations as gx
    from great_expectations.checkpoint import UpdateDataDocsAction
    from great_expectations.data_context.types.base import ProgressBarsConfig

    frames = {"orders": read_parquet(files.orders), "lines": read_parquet(files.lines)}
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = context.data_sources.add_pandas(name="wdt_staging")
    quarantine: list[dict[str, Any]] = []
    orders = frames["orders"]
    order_numbers = dict(zip(orders[keys.order].astype(object), orders[keys.number].astype(object), strict=True))

    with tempfile.TemporaryDirectory(prefix="erpsync-docs-") as docs_dir:
        context.add_data_docs_site(
            site_name="erpsync_quality",
            site_config={
                "class_name": "SiteBuilder",
                "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": docs_dir},
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            },
        )
        for table, frame in frames.items():
            if table not in suites:
                continue
            suite, meta = _load_suite(suites[table])
            name = suite.name
            suite = context.suites.add(suite)
            index_columns = [_ROW, *meta.get("index_columns", [])]
            typed = _typed(frame, meta.get("decimal_columns", []))
            batch = source.add_dataframe_asset(name=name).add_batch_definition_whole_dataframe("window")
            definition = context.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch, suite=suite))
            checkpoint = context.checkpoints.add(
                gx.Checkpoint(
                    name=f"{name}_checkpoint",
                    validation_definitions=[definition],
                    actions=[UpdateDataDocsAction(name="docs", site_names=["erpsync_quality"])],
                    result_format={"result_format": "COMPLETE", "unexpected_index_column_names": index_columns},
                )
            )
            outcome = checkpoint.run(batch_parameters={"dataframe": typed}, run_id=gx.RunIdentifier(run_name=run_name))
            for result in outcome.run_results.values():
                write_json(result.to_json_dict(), files.quality / f"{name}.json")
                quarantine.extend(_broken(name, result, frame, order_numbers, keys))
        publish_docs(Path(docs_dir), files)

    report = pd.DataFrame(quarantine, columns=QUARANTINE_COLUMNS).astype("string")
    write_parquet(report, files.quarantine)
    bad_orders = report["order_id"].fillna(report["order_no"]).nunique()
    summary = {
        "orders": len(frames["orders"]),
        "lines": len(frames["lines"]),
        "quarantined_orders": int(bad_orders),
        "broken_rules": len(report),
        "by_rule": report.groupby(["suite", "rule", "column"]).size().rename("count").reset_index().to_dict("records"),
    }
    write_json(summary, files.quality / "summary.json")
    for row in report.itertuples():
        log.warning(
            "Quarantined order %s (id %s, line %s): breaks %s (%s), value %r",
            row.order_no,
            row.order_id,
            row.line_id,
            row.check,
            row.rule,
            row.value,
        )
    return ValidateResult(
        orders=summary["orders"],
        lines=summary["lines"],
        quarantined_orders=int(bad_orders),
        broken_rules=len(report),
        docs_index=str(files.quality / "docs" / "index.html"),
    )


def shared_static(files: RunFiles) -> StoragePath:
    """Where the Data Docs static folder of the installed GX lives: beside the DAG folders."""
    import great_expectations as gx

    return files.dir.parent.parent / GX_STATIC / gx.__version__


def _relinked(text: str, to_shared: str) -> str:
    """A page's links into the site's static folder, made links into ``to_shared``."""
    return _STATIC_LINK.sub(lambda m: f"{m['attr']}{m['q']}{to_shared}/{m['rest']}{m['q']}", text)


def publish_docs(site: Path, files: RunFiles) -> None:
    """Make ``quality/docs/`` the built site ``site`` without its ``static/`` folder: that goes once
    to the shared folder, and the pages' links to it become relative links there (so the pages work
    served by the erpsync UI and opened from a local staging folder alike)."""
    static = site / "static"
    shared = shared_static(files)
    if static.is_dir():
        if not (shared / _PUBLISHED).exists():  # concurrent windows write the same bytes, atomically
            for file in sorted(p for p in static.rglob("*") if p.is_file()):
                target = shared
                for part in file.relative_to(static).parts:
                    target = target / part
                write_bytes(file.read_bytes(), target)
            write_bytes(b"", shared / _PUBLISHED)
        shutil.rmtree(static)
    # the page's depth below docs/, then docs -> quality -> window -> dag -> root
    for page in site.rglob("*.html"):
        depth = len(page.parent.relative_to(site).parts)
        to_shared = posixpath.join(*([".."] * (depth + 4)), GX_STATIC, shared.name)
        text = page.read_text(encoding="utf-8")
        relinked = _relinked(text, to_shared)
        if relinked != text:
            page.write_text(relinked, encoding="utf-8")
    replace_tree(site, files.quality / "docs")


def _plain(number: Any) -> str:
    """0.0 -> "0", 2.50 -> "2.5": GX hands bounds back as floats."""
    return format(Decimal(str(number)).normalize(), "f")


def describe(expectation_type: str, kwargs: dict[str, Any]) -> str:
    """The rule in a reader's words, e.g. "goods_count > 0"."""
    column = kwargs.get("column")
    if expectation_type == "expect_column_values_to_not_be_null":
        return f"{column} is present"
    if expectation_type == "expect_column_values_to_be_unique":
        return f"{column} is unique"
    if expectation_type == "expect_column_values_to_be_between":
        parts = []
        if kwargs.get("min_value") is not None:
            parts.append(f"{column} {'>' if kwargs.get('strict_min') else '>='} {_plain(kwargs['min_value'])}")
        if kwargs.get("max_value") is not None:
            parts.append(f"{column} {'<' if kwargs.get('strict_max') else '<='} {_plain(kwargs['max_value'])}")
        return " and ".join(parts) or f"{column} in range"
    return f"{expectation_type}({column})"


def _broken(
    suite: str, result: Any, raw: pd.DataFrame, order_numbers: dict[Any, Any], keys: SourceKeys
) -> list[dict[str, Any]]:
    """One quarantine row per (rule, failing row), with the value as received from WDT."""
    rows = []
    for check in result.results:
        if check.success:
            continue
        config = check.expectation_config
        if check.exception_info and check.exception_info.get("raised_exception"):
            raise ValidationSetupError(
                f"suite {suite}: {config.type} on {config.kwargs.get('column')} raised: "
                f"{check.exception_info.get('exception_message')}"
            )
        column = config.kwargs.get("column")
        for unexpected in check.result.get("unexpected_index_list") or []:
            position = int(unexpected[_ROW])
            source = raw.iloc[position]
            value = source[column] if column in raw.columns else None
            rows.append(
                {
                    "order_id": _clean(source.get(keys.order)),
                    "order_no": _clean(source.get(keys.number, order_numbers.get(source.get(keys.order)))),
                    "line_id": _clean(source.get(keys.line)),
                    "suite": suite,
                    "rule": config.type,
                    "check": describe(config.type, config.kwargs),
                    "column": column,
                    "value": _clean(value),
                }
            )
    return rows


def _clean(value: Any) -> str | None:
    return None if value is None or value is pd.NA else str(value)
