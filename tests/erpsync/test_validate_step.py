"""The validate step over staged row groups: the same files whatever the row groups, only the columns
the rules read, neither GX nor pandas imported, Data Docs pages that escape what WDT sent."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from airflow.sdk import ObjectStoragePath

from erpsync.scheme import INCLUDE_DIR, load_scheme
from erpsync.staging import RunFiles, read_json, read_parquet
from erpsync.steps.extract import EXTRA_COLUMN
from erpsync.steps.quality_docs import GX_STATIC, gx_version
from erpsync.steps.rules import ValidationSetupError
from erpsync.steps.validate import QUARANTINE_COLUMNS, validate
from erpsync.windows import Window, parse_datetime
from tests.conftest import REPO, run_of

SCHEME = load_scheme(INCLUDE_DIR / "schemes" / "sales_outstock.yaml")
API = SCHEME.source.api
WINDOW = Window.of(parse_datetime("2026-11-01", "s"), parse_datetime("2026-11-02", "e"))
SCRIPT = "<img src=x onerror=alert(1)>"


def _orders() -> list[dict[str, str | None]]:
    orders = []
    for n in range(40):
        number = f"CK{n:04d}"
        orders.append(
            {
                "stockout_id": str(5000 + n),
                "order_no": number,
                "stockout_no": number,
                "consign_time": "2026-11-01 10:00:00",
                "shop_no": "TMALL001",
                "warehouse_no": None if n == 17 else "WH001",
            }
        )
    orders[31]["order_no"] = orders[2]["order_no"]  # a repeat far apart: other row groups
    orders[35]["stockout_no"] = orders[36]["stockout_no"] = SCRIPT  # a repeat of markup
    return orders


def _lines(orders: list[dict[str, str | None]]) -> list[dict[str, str | None]]:
    lines = []
    for n, order in enumerate(orders):
        for k in range(1 + n % 3):
            lines.append(
                {
                    "rec_id": str(100 * n + k),
                    "stockout_id": order["stockout_id"],
                    "spec_no": "GT1001-01",
                    "goods_count": ["1.0000", "0.0000", " 2 ", "two"][(n + k) % 4] if n % 5 == 0 else "1.0000",
                    "sell_price": "-1.5" if n == 23 else "10.0000",
                }
            )
    lines.append({**lines[0], "rec_id": "99999", "stockout_id": "77777", "spec_no": None})  # no such order
    return lines


def _write(rows: list[dict], fields: list[str], path, group_rows: int) -> None:
    """As extract writes: every known field as text, then ``extra``, in row groups of ``group_rows``."""
    schema = pa.schema([(f, pa.string()) for f in [*fields, EXTRA_COLUMN]])
    table = pa.Table.from_pylist([{f: r.get(f) for f in fields} for r in rows], schema=schema)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        pq.write_table(table, fh, row_group_size=group_rows)


def _stage(root: Path, group_rows: int, scheme=SCHEME) -> RunFiles:
    files = RunFiles(ObjectStoragePath(root.as_uri()), scheme.dag_id, WINDOW)
    orders = _orders()
    _write(orders, list(API.order_fields), files.orders, group_rows)
    _write(
        _lines(orders), [API.order_key, *[f for f in API.line_fields if f != API.order_key]], files.lines, group_rows
    )
    return files


def _results(files: RunFiles) -> dict[str, dict]:
    """Each suite's result without what names the run (its time)."""
    found = {}
    for name in ("stockout_orders", "stockout_lines"):
        result = read_json(files.quality / f"{name}.json")
        result.pop("meta")
        found[name] = result
    return found


def test_row_groups_change_nothing(tmp_path):
    outcomes = []
    for group_rows in (1, 7, 10_000):
        files = _stage(tmp_path / str(group_rows), group_rows)
        result = validate(run_of(SCHEME, files))
        outcomes.append((result.broken_rules, read_parquet(files.quarantine), _results(files), files))
    (broken, quarantine, results, files), *others = outcomes
    for other_broken, other_quarantine, other_results, _ in others:
        assert other_broken == broken
        assert other_quarantine.equals(quarantine)
        assert other_results == results

    assert list(quarantine.columns) == QUARANTINE_COLUMNS and {str(d) for d in quarantine.dtypes} == {"string"}
    plain = quarantine.astype(object).where(quarantine.notna(), None)
    rows = {(r.order_id, r.order_no, r.line_id, r.check, r.value) for r in plain.itertuples()}
    assert ("5002", "CK0002", None, "order_no is unique", "CK0002") in rows
    assert ("5031", "CK0002", None, "order_no is unique", "CK0002") in rows
    assert ("5035", "CK0035", None, "stockout_no is unique", SCRIPT) in rows
    assert ("5017", "CK0017", None, "warehouse_no is present", None) in rows
    # a line names its order by the number the orders' pass found; text that is no number is held as sent
    assert ("5005", "CK0005", "500", "goods_count > 0", "0.0000") in rows
    assert ("5005", "CK0005", "502", "goods_count is present", "two") in rows
    assert ("5023", "CK0023", "2300", "sell_price >= 0", "-1.5") in rows
    assert ("77777", None, "99999", "spec_no is present", None) in rows  # its order is not in the window
    summary = read_json(files.quality / "summary.json")
    assert summary["orders"] == 40 and summary["broken_rules"] == len(quarantine) == broken
    assert summary["quarantined_orders"] == quarantine["order_id"].nunique()
    lines = results["stockout_lines"]["results"]
    between = next(
        r
        for r in lines
        if r["expectation_config"]["kwargs"].get("column") == "goods_count"
        and "min_value" in r["expectation_config"]["kwargs"]
    )
    assert between["result"]["partial_unexpected_list"][0] == "0.0000"  # exact text, never a float


def test_only_the_columns_the_rules_read_a_row_group_at_a_time(tmp_path, monkeypatch):
    files = _stage(tmp_path, 7)
    read: list[tuple[int, tuple[str, ...]]] = []
    group = pq.ParquetFile.read_row_group

    def recording(self, i, columns=None, **kwargs):
        read.append((i, tuple(columns or ())))
        return group(self, i, columns=columns, **kwargs)

    def whole(*args, **kwargs):
        raise AssertionError("the whole file was read")

    monkeypatch.setattr(pq.ParquetFile, "read_row_group", recording)
    monkeypatch.setattr(pq.ParquetFile, "read", whole)
    monkeypatch.setattr(pq.ParquetFile, "iter_batches", whole)
    validate(run_of(SCHEME, files))
    columns = {c for _, names in read for c in names}
    assert columns and EXTRA_COLUMN not in columns and "receiver_name" not in columns
    assert len(read) >= 40 // 7


def test_an_expectation_that_cannot_run_fails_the_step_naming_it(tmp_path):
    suite = tmp_path / "strict_lines.json"
    spec = json.loads((INCLUDE_DIR / "expectations" / "stockout_lines.json").read_text(encoding="utf-8"))
    spec["name"] = "strict_lines"
    spec["expectations"].append({"type": "expect_column_value_lengths_to_be_between", "kwargs": {"column": "spec_no"}})
    suite.write_text(json.dumps(spec), encoding="utf-8")
    source = dataclasses.replace(SCHEME.source, suites={**SCHEME.source.suites, "lines": suite})
    scheme = dataclasses.replace(SCHEME, source=source)
    files = _stage(tmp_path, 7)
    with pytest.raises(
        ValidationSetupError,
        match="suite strict_lines .*expectation 8: expect_column_value_lengths_to_be_between is not supported",
    ):
        validate(run_of(scheme, files))
    assert not files.quarantine.exists()  # nothing half-written for transform to trust


def test_validate_imports_neither_gx_nor_pandas(tmp_path):
    """Importing GX took seconds a run, pandas a third of one: the step needs neither."""
    files = _stage(tmp_path, 7)
    code = (
        "import sys\n"
        "from airflow.sdk import ObjectStoragePath\n"
        "from erpsync.scheme import INCLUDE_DIR, load_scheme\n"
        "from erpsync.staging import RunFiles\n"
        "from erpsync.steps.validate import validate\n"
        "from erpsync.windows import Window, parse_datetime\n"
        "from tests.conftest import run_of\n"
        "scheme = load_scheme(INCLUDE_DIR / 'schemes' / 'sales_outstock.yaml')\n"
        "window = Window.of(parse_datetime('2026-11-01', 's'), parse_datetime('2026-11-02', 'e'))\n"
        f"files = RunFiles(ObjectStoragePath({str(files.dir.parent.parent)!r}), scheme.dag_id, window)\n"
        "before = {m for m in ('pandas', 'great_expectations') if m in sys.modules}\n"
        "result = validate(run_of(scheme, files))\n"
        "print(result.broken_rules, sorted(m for m in ('pandas', 'great_expectations') if m in sys.modules and m not in before))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    broken, imported = done.stdout.strip().splitlines()[-1].split(" ", 1)
    assert int(broken) > 0 and imported == "[]"


def test_data_docs_escape_values_and_share_gx_static(tmp_path):
    files = _stage(tmp_path, 7)
    result = validate(run_of(SCHEME, files))
    docs = Path(files.quality.path) / "docs"
    assert Path(result.docs_index.removeprefix("file://")) == docs / "index.html"
    pages = sorted(p.relative_to(docs).as_posix() for p in docs.rglob("*.html"))
    validations = [p for p in pages if p.startswith("validations/")]
    assert {p.split("/")[1] for p in validations} == {"stockout_orders", "stockout_lines"}
    assert all(p.split("/")[2] == "test" for p in validations)  # the run's id names its folder, as GX does
    assert {"index.html", "expectations/stockout_orders.html", "expectations/stockout_lines.html"} <= set(pages)
    orders_page = (docs / next(p for p in validations if "stockout_orders" in p)).read_text(encoding="utf-8")
    assert SCRIPT not in orders_page and "&lt;img src=x onerror=alert(1)&gt;" in orders_page
    shared = tmp_path / GX_STATIC / gx_version()
    assert (shared / ".published").exists() and (shared / "images" / "favicon.ico").is_file()
    for page in pages:  # every link into the shared static folder resolves
        text = (docs / page).read_text(encoding="utf-8")
        links = re.findall(r'(?:href|src)="([^"]*' + GX_STATIC + r'[^"]*)"', text)
        assert links and all(((docs / page).parent / link).resolve().is_file() for link in links), page
    # a later run of the window replaces the pages: the report lists one run per suite
    validate(dataclasses.replace(run_of(SCHEME, files), run_id="again"))
    runs = {p.parent.parent.name for p in docs.glob("validations/*/*/*/*.html")}
    assert runs == {"again"}
