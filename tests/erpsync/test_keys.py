"""Key files and the per-DAG index: what each window's orders are found by, written by the steps,
folded per month, and read by the order search and the trend; windows without a key file (staged
before key files, or a rerun under way) are still found, from their wide files."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from airflow.sdk import ObjectStoragePath

from erpsync import keys as key_index
from erpsync.keys import INDEX, SearchColumns, dag_keys, drop_keys, fold, record_keys, stamps_of, window_keys
from erpsync.outcomes import REPORT_COLUMNS, report_row
from erpsync.scheme import INCLUDE_DIR, load_scheme
from erpsync.staging import KEYS, RunFiles, read_parquet, write_json
from erpsync.steps.extract import EXTRA_COLUMN
from erpsync.windows import Window, parse_datetime

SCHEME = load_scheme(INCLUDE_DIR / "schemes" / "sales_outstock.yaml")
API = SCHEME.source.api
DAG = SCHEME.dag_id
QUARANTINE_COLUMNS = ["order_id", "order_no", "line_id", "suite", "rule", "check", "column", "value"]
UNMAPPED_COLUMNS = ["order_id", "order_no", "field", "message"]


def _hour(day: int, hour: int) -> Window:
    start = parse_datetime(f"2026-11-{day:02d}T{hour:02d}:00:00", "s")
    return Window.of(start, start.add(hours=1))


def _order(n: int, **fields: str | None) -> dict[str, str | None]:
    return {
        "stockout_id": str(5000 + n),
        "order_no": f"CK{n:04d}",
        "stockout_no": f"CK{n:04d}",
        "src_order_no": f"JY{n:04d}",
        "src_tids": f"P{n}A,P{n}B",
        "consign_time": "2026-11-01 10:00:00",
        "shop_no": "TMALL001",
        "shop_name": "天猫旗舰店",
        "warehouse_no": "WH001",
        **fields,
    }


def _line(order: dict[str, str | None], k: int = 0) -> dict[str, str | None]:
    return {
        "rec_id": f"{order['stockout_id']}{k}",
        "stockout_id": order["stockout_id"],
        "spec_no": "SKU-1",
        "goods_count": "1.0000",
        "sell_price": "10.0000",
        "src_tid": f"T{order['stockout_id']}{k}",
    }


def _table(rows: Sequence[dict[str, Any]], fields: Sequence[str]) -> pa.Table:
    return pa.Table.from_pylist(
        [{f: r.get(f) for f in fields} for r in rows], schema=pa.schema([(f, pa.string()) for f in fields])
    )


def _write(table: pa.Table, path: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        pq.write_table(table, handle)


def _stage(root: Any, window: Window, orders: list[dict], quarantined: Sequence[dict] = (), **dry: bool) -> RunFiles:
    """A window as extract and validate leave it: every field of the API definition as text."""
    files = RunFiles(root, DAG, window, dry_run=dry.get("dry_run", False))
    _write(_table(orders, [*API.order_fields, EXTRA_COLUMN]), files.orders)
    line_fields = [API.order_key, *[f for f in API.line_fields if f != API.order_key]]
    _write(_table([_line(o, k) for o in orders for k in (0, 1)], [*line_fields, EXTRA_COLUMN]), files.lines)
    rows = [
        {
            "order_id": o["stockout_id"],
            "order_no": o["order_no"],
            "line_id": f"{o['stockout_id']}0",
            "suite": "stockout_lines",
            "rule": "expect_column_values_to_be_between",
            "check": "goods_count > 0",
            "column": "goods_count",
            "value": "0.0000",
        }
        for o in quarantined
    ]
    _write(_table(rows, QUARANTINE_COLUMNS), files.quarantine)
    _write(_table([], UNMAPPED_COLUMNS), files.unmapped)
    write_json({"orders": len(orders), "calls": 1, "seconds": 0.5, "filters": {}}, files.extract_summary)
    write_json({"orders": len(orders), "quarantined_orders": len(rows)}, files.quality / "summary.json")
    return files


def _report(files: RunFiles, outcomes: dict[str, str]) -> None:
    """The window's load report: order number -> outcome (created/existing get a Kingdee number)."""
    orders = read_parquet(files.orders).set_index("order_no")
    rows = []
    for number, outcome in outcomes.items():
        bill = {"bill_no": None if outcome == "quarantined" else number, "order_no": number}
        bill["order_id"] = orders.loc[number, "stockout_id"]
        made = outcome in ("created", "existing")
        rows.append(
            report_row(
                bill,
                outcome,
                kingdee_id="1" if made else None,
                kingdee_number=f"XSCKD{number[2:]}" if made else None,
                field="FMaterialID" if outcome == "rejected" else None,
                message="物料不存在" if outcome == "rejected" else None,
            )
        )
    _write(_table(rows, REPORT_COLUMNS), files.load_report / "part-000000.parquet")


# -- the key file ----------------------------------------------------------------------------------


def test_the_key_file_lists_every_number_with_where_it_is_and_the_outcome():
    cols = SearchColumns.of(API)
    orders = pa.table(
        {
            "stockout_id": ["1", "2", None],
            "order_no": ["CK1", "CK2", "CK3"],
            "src_order_no": ["JY1", None, "JY3"],
            "src_tids": ["T1,T2", "", None],
        }
    )
    lines = pa.table({"stockout_id": ["1", "1", "2"], "src_tid": ["L1", "L2", None]})
    report = _table(
        [
            {"bill_no": "CK1", "order_id": "1", "order_no": "CK1", "outcome": "created", "kingdee_number": "XS1"},
            {"bill_no": None, "order_id": "2", "order_no": "CK2", "outcome": "quarantined"},
        ],
        REPORT_COLUMNS,
    )
    keys = window_keys(orders, lines, report, cols).to_pylist()
    assert [(k["order_id"], k["column"], k["number"]) for k in keys] == [
        ("1", "bill_no", "CK1"),
        ("1", "kingdee_number", "XS1"),
        ("1", "lines.src_tid", "L1"),
        ("1", "lines.src_tid", "L2"),
        ("1", "order_no", "CK1"),
        ("1", "src_order_no", "JY1"),
        ("1", "src_tids", "T1"),
        ("1", "src_tids", "T2"),
        ("1", "stockout_id", "1"),
        ("2", "order_no", "CK2"),
        ("2", "stockout_id", "2"),
    ]  # the order without an id is in no report and found by nothing, as before key files
    first, second = keys[0], keys[-1]
    assert (first["order_no"], first["outcome"], first["bill_no"], first["kingdee_number"]) == (
        "CK1",
        "created",
        "CK1",
        "XS1",
    )
    assert (second["order_no"], second["outcome"], second["bill_no"], second["kingdee_number"]) == (
        "CK2",
        "quarantined",
        None,
        None,
    )


def test_the_load_writes_the_key_file_and_a_rerun_removes_it_until_its_load_ends(tmp_path):
    from erpsync.steps.load import load
    from erpsync.steps.transform import transform
    from tests.conftest import run_of

    class Kingdee:
        recorder = None

        def save(self, bills, request, settings, record, dry_run=False):
            record(0, [report_row(b, "created", kingdee_id="9", kingdee_number="XS" + b["bill_no"]) for b in bills])
            return 1

    root = ObjectStoragePath(tmp_path.as_uri())
    good, bad = _order(1), _order(2)
    files = _stage(root, _hour(1, 0), [good, bad], quarantined=[bad])
    run = run_of(SCHEME, files)
    transform(run)
    assert not files.keys.exists()
    load(run, Kingdee())
    keys = read_parquet(files.keys)
    outcomes = dict(zip(keys["order_id"], keys["outcome"], strict=False))
    assert outcomes == {"5001": "created", "5002": "quarantined"}
    assert set(keys.loc[keys["column"] == "kingdee_number", "number"]) == {"XSCK0001"}
    assert key_index.outcomes_of(files.keys) == {"created": 1, "quarantined": 1}
    first = stamps_of(files.dir.parent)[files.dir.name]

    transform(run)  # a rerun: the orders may have been read again
    assert not files.keys.exists()
    assert stamps_of(files.dir.parent)[files.dir.name] != first
    load(run, Kingdee())
    assert files.keys.exists()
    assert (
        len(stamps_of(files.dir.parent)) == 1 and len(key_index.child_names(files.dir.parent / INDEX / "stamps")) == 1
    )


def test_dropping_a_window_that_has_no_key_file_stamps_nothing(tmp_path):
    files = _stage(ObjectStoragePath(tmp_path.as_uri()), _hour(1, 0), [_order(1)])
    drop_keys(files.dir)
    assert stamps_of(files.dir.parent) == {}


# -- the index -------------------------------------------------------------------------------------


def _keyed(root: Any, window: Window, orders: list[dict], outcomes: dict[str, str]) -> RunFiles:
    files = _stage(root, window, orders)
    _report(files, outcomes)
    record_keys(files, API)
    return files


def test_a_window_is_read_from_the_index_only_while_its_key_file_is_the_one_folded(tmp_path):
    root = ObjectStoragePath(tmp_path.as_uri())
    a = _keyed(root, _hour(1, 0), [_order(1)], {"CK0001": "created"})
    b = _keyed(root, _hour(1, 1), [_order(2)], {"CK0002": "rejected"})
    old = _stage(root, _hour(1, 2), [_order(3)])  # staged before key files
    dag_dir = root / DAG
    names = [a.dir.name, b.dir.name, old.dir.name]

    state = dag_keys(dag_dir, names)
    assert (sorted(state.direct), state.wide, state.indexed) == (sorted(names[:2]), [old.dir.name], {})
    assert fold(dag_dir, due=3) == 0  # two changed windows: not yet due
    assert fold(dag_dir) == 2
    assert fold(dag_dir) == 0
    state = dag_keys(dag_dir, names)
    assert sorted(state.indexed) == sorted(names[:2]) and state.direct == [] and state.wide == [old.dir.name]
    assert state.indexed[b.dir.name].outcomes == {"rejected": 1}
    assert [p.name for p in state.months] == ["keys-202611.parquet"]
    month = pq.read_table(state.months[0].path)
    assert month.column_names == ["folder", "column", "number", "order_id"]
    assert month.column("number").to_pylist() == sorted(month.column("number").to_pylist())

    # a rerun of b: dropped, then loaded again
    saved = state.months[0].read_bytes()
    drop_keys(b.dir)
    assert dag_keys(dag_dir, names).wide == [b.dir.name, old.dir.name]
    _report(b, {"CK0002": "created"})
    record_keys(b, API)
    assert dag_keys(dag_dir, names).direct == [b.dir.name]
    assert fold(dag_dir) == 1
    assert dag_keys(dag_dir, names).indexed[b.dir.name].outcomes == {"created": 1}

    # two folds at once: the one that lands last lacks the other's window, which stays read from its key file
    drop_keys(a.dir)
    _report(a, {"CK0001": "existing"})
    record_keys(a, API)
    assert fold(dag_dir) == 1
    state.months[0].write_bytes(saved)  # the older fold lands after
    state = dag_keys(dag_dir, names)
    assert sorted(state.direct) == sorted(names[:2]) and state.indexed == {}
    assert fold(dag_dir) == 2


def test_a_fold_forgets_windows_that_are_gone(tmp_path):
    root = ObjectStoragePath(tmp_path.as_uri())
    a = _keyed(root, _hour(1, 0), [_order(1)], {"CK0001": "created"})
    b = _keyed(root, _hour(2, 0), [_order(2)], {"CK0002": "created"})
    dag_dir = root / DAG
    fold(dag_dir)
    shutil.rmtree(a.dir.path)
    c = _keyed(root, _hour(3, 0), [_order(3)], {"CK0003": "created"})
    assert fold(dag_dir) == 1  # c; a is gone: its stamp and rows leave too
    assert set(stamps_of(dag_dir)) == {b.dir.name, c.dir.name}
    months = key_index.month_files(dag_dir)
    assert set(months["202611"][1]) == {b.dir.name, c.dir.name}
    assert set(pq.read_table(months["202611"][0].path).column("folder").to_pylist()) == {b.dir.name, c.dir.name}


def test_the_loads_fold_every_so_many_windows(tmp_path, monkeypatch):
    monkeypatch.setattr(key_index, "FOLD_AFTER", 3)
    root = ObjectStoragePath(tmp_path.as_uri())
    for hour in range(5):
        _keyed(root, _hour(1, hour), [_order(hour)], {f"CK{hour:04d}": "created"})
    state = dag_keys(root / DAG, [f"window={_hour(1, h).key}" for h in range(5)])
    assert (len(state.indexed), len(state.direct)) == (3, 2)


# -- search with and without key files ---------------------------------------------------------


@pytest.fixture
def staged(tmp_path):
    """Five windows of the sales DAG: two folded into the index, one changed since (its own key file),
    one staged before key files, one rerun under way (key file dropped); order 1 is read by four of them."""
    root = ObjectStoragePath((tmp_path / "staging").as_uri())
    one = _order(1)
    _keyed(root, _hour(1, 0), [one, _order(2)], {"CK0001": "created", "CK0002": "rejected"})
    quarantined = _order(3)
    files = _stage(root, _hour(1, 1), [one, quarantined], quarantined=[quarantined])
    _report(files, {"CK0001": "existing", "CK0003": "quarantined"})
    record_keys(files, API)
    fold(root / DAG)
    _keyed(root, _hour(1, 2), [one, _order(4, src_tids="P1A")], {"CK0001": "existing", "CK0004": "created"})
    old = _stage(root, _hour(1, 3), [one, _order(5)])
    _report(old, {"CK0001": "existing", "CK0005": "created"})
    rerun = _keyed(root, _hour(1, 4), [_order(6)], {"CK0006": "held"})
    drop_keys(rerun.dir)
    return root


QUERIES = ["CK0001", "ck0001", "XSCKD0001", "JY0001", "P1A", "P1B", "T50010", "5001", "CK0003", "CK0005", "CK0006"]


def _search(root: Any, text: str) -> Any:
    from erpsync.ui.search import search
    from erpsync.ui.staged import Staging

    staging = Staging(root)
    with staging.duck() as duck:
        return search(staging, duck, {DAG: SCHEME}, text)


def _story(result: Any) -> list[Any]:
    """What the page shows of a result, in a stable order."""
    return [
        (
            h.order_id,
            h.order_no,
            sorted(h.matched),
            h.last_outcome,
            [
                (
                    w.folder,
                    w.filtered,
                    w.dry_run,
                    sorted(w.order.items()),
                    sorted(repr(sorted(e.detail.items())) + e.kind for e in w.events),
                )
                for w in h.windows
            ],
        )
        for h in result.orders
    ]


def test_search_reads_the_index_the_key_files_and_the_wide_files(staged):
    found = _search(staged, "CK0001")
    [order] = found.orders
    assert (order.order_id, order.order_no) == ("5001", "CK0001")
    assert {"order_no", "stockout_no"} <= order.matched
    assert [w.folder for w in order.windows] == [f"window={_hour(1, h).key}" for h in range(4)]
    events = [[e.kind for e in w.events] for w in order.windows]
    assert events == [
        ["extracted", "created"],
        ["extracted", "existing"],
        ["extracted", "existing"],
        ["extracted", "existing"],
    ]
    created = order.windows[0].events[1].detail
    assert created["kingdee_number"] == "XSCKD0001" and order.windows[0].order["shop_name"] == "天猫旗舰店"

    assert "kingdee_number" in _search(staged, "xsckd0001").orders[0].matched
    assert "lines.src_tid" in _search(staged, "T50010").orders[0].matched
    list_entry = _search(staged, "P1A")
    assert [h.order_id for h in list_entry.orders] == ["5001", "5004"] and all(
        "src_tids" in h.matched for h in list_entry.orders
    )
    [quarantined] = _search(staged, "CK0003").orders
    assert [e.kind for e in quarantined.windows[0].events] == ["extracted", "quarantined"]
    assert quarantined.windows[0].events[1].detail["check"] == "goods_count > 0"
    assert [w.folder for w in _search(staged, "CK0005").orders[0].windows] == [f"window={_hour(1, 3).key}"]
    assert _search(staged, "CK0006").orders[0].last_outcome == "held"  # the rerun's window, from its wide files
    assert _search(staged, "' or 1=1 --").orders == []


def test_search_finds_the_same_without_key_files(staged):
    with_keys = {q: _story(_search(staged, q)) for q in QUERIES}
    for folder in (staged / DAG).iterdir():
        if folder.name == INDEX:
            shutil.rmtree(folder.path)
        elif (folder / KEYS).exists():
            (folder / KEYS).unlink()
    assert dag_keys(staged / DAG, key_index.child_names(staged / DAG)).indexed == {}
    without = {q: _story(_search(staged, q)) for q in QUERIES}
    assert without == with_keys
    assert all(without[q] for q in QUERIES)


def test_search_leaves_out_a_window_pruned_since_it_was_folded(staged):
    first = staged / DAG / f"window={_hour(1, 0).key}"
    for child in first.iterdir():
        if child.name != "complete.json":
            shutil.rmtree(child.path) if child.is_dir() else child.unlink()
    [order] = _search(staged, "CK0001").orders
    assert first.name not in [w.folder for w in order.windows]
    assert _search(staged, "CK0002").orders == []


def test_search_and_the_trend_read_the_index_on_object_storage(staged, monkeypatch):
    from airflow.sdk.io.store import attach
    from fsspec.implementations.memory import MemoryFileSystem

    from erpsync.ui.reports import summaries
    from erpsync.ui.staged import Staging

    memory = MemoryFileSystem()
    attach(protocol="memory", fs=memory)
    memory.put(staged.path, "/bucket/keys-test", recursive=True)
    remote = ObjectStoragePath("memory://bucket/keys-test")
    state = dag_keys(remote / DAG, Staging(remote).names(DAG))
    assert len(state.indexed) == 2 and len(state.direct) == 1 and len(state.wide) == 2
    assert _story(_search(remote, "CK0001")) == _story(_search(staged, "CK0001"))
    monkeypatch.setattr("erpsync.ui.search._ONE_BY_ONE", 0)  # many windows without key files: one listing
    assert _story(_search(remote, "CK0001")) == _story(_search(staged, "CK0001"))

    staging = Staging(remote)
    names = staging.names(DAG)
    with staging.duck() as duck:
        shown = summaries(staging, duck, DAG, staging.folders(DAG, names), state)
        parts = summaries(staging, duck, DAG, staging.folders(DAG, names))  # every count from the load reports
    assert [(s.folder.name, s.outcomes, s.loaded, s.status) for s in shown] == [
        (s.folder.name, s.outcomes, s.loaded, s.status) for s in parts
    ]
    assert shown[-1].outcomes == {"created": 1, "rejected": 1}
    memory.rm("/bucket/keys-test", recursive=True)


def test_the_trend_of_a_pruned_window_reads_as_pruned(staged):
    from erpsync.ui.reports import summaries
    from erpsync.ui.staged import Staging

    staging = Staging(staged)
    first = staged / DAG / f"window={_hour(1, 0).key}"
    write_json({"completed_at": "2026-11-01T01:05:00+08:00"}, first / "complete.json")
    for child in first.iterdir():
        if child.name != "complete.json":
            shutil.rmtree(child.path) if child.is_dir() else child.unlink()
    names = staging.names(DAG)
    with staging.duck() as duck:
        [summary] = summaries(staging, duck, DAG, staging.folders(DAG, [first.name]), dag_keys(staged / DAG, names))
    assert (summary.status, summary.outcomes, summary.loaded) == ("pruned", {}, False)


def test_the_key_files_and_the_index_are_written_on_object_storage():
    from airflow.sdk.io.store import attach
    from fsspec.implementations.memory import MemoryFileSystem

    memory = MemoryFileSystem()
    attach(protocol="memory", fs=memory)
    root = ObjectStoragePath("memory://bucket/keys-written")
    try:
        a = _keyed(root, _hour(1, 0), [_order(1)], {"CK0001": "created"})
        b = _keyed(root, _hour(1, 1), [_order(2)], {"CK0002": "held"})
        assert key_index.outcomes_of(a.keys) == {"created": 1}
        assert fold(root / DAG) == 2
        drop_keys(b.dir)
        state = dag_keys(root / DAG, [a.dir.name, b.dir.name])
        assert (list(state.indexed), state.direct, state.wide) == ([a.dir.name], [], [b.dir.name])
        assert [h.order_id for h in _search(root, "XSCKD0001").orders] == ["5001"]
    finally:
        memory.rm("/bucket/keys-written", recursive=True)
