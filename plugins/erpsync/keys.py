"""Order keys: every number a window's orders are found by and what became of each order, and a
per-DAG index folded from them, so that the order search and the report pages read a few files
instead of every window's (a year of hourly windows of three schemes is 26,000 folders).

**The key file** ``<window folder>/keys.parquet`` is written by the load step once the window's load
report is complete (:func:`record_keys`) and removed when a transform or a load of the window begins
(:func:`drop_keys`): until its load ends, a rerun window is read from its wide files, as windows staged
before key files are. One row per number an order is found by, all text:

* ``order_id``, ``order_no``: the order's id and number (the API definition's ``order_key`` and
  ``number_key``, as the reports name them);
* ``column``: where the number is: an order field (the id, the number, each ``search.numbers`` field,
  each entry of a comma-separated ``search.number_lists`` field), ``lines.<field>`` for a
  ``search.line_numbers`` field of one of its lines, or the load report's ``bill_no`` or
  ``kingdee_number``;
* ``number``: the value, as staged;
* ``outcome``, ``bill_no``, ``kingdee_number``: the order's row of the window's load report (created,
  existing, would_create, rejected, held, quarantined, unmapped; its last row if it has several; null
  if the report has none).

Every order of ``orders.parquet`` and of the report has the row of its id (``column`` = the order key):
that is how an order's other windows are found. The footer holds how many report rows had each
outcome (``erpsync.outcomes``): a window's bars in the trend.

**The index** ``<dag_id>/_index/``:

* ``stamps/<window folder>@<token>``: a fresh token each time the window's key file is written or
  removed, put after the write (a fold that sees a token reads a key file at least that new);
* ``keys-<YYYYMM>.parquet``: the key rows (``folder, column, number, order_id``) of the windows that
  start in that month, sorted by number, so a look-up reads only the row groups whose range holds
  it; its footer (``erpsync_folded``) names each window it folded with the tokens it had then, whether
  it had a key file, and its outcome counts.

A reader trusts a month file for a window only while the window's tokens are the ones it names: a
window whose key file changed since is read from its key file, a window with no token or no key file
from its wide files. So a fold never has to be on time, and two folds at once cannot make the index
wrong (the one that lands last may miss the other's windows: they are read from their key files
until the next fold). A load folds its DAG's changed months when FOLD_AFTER windows have changed.
"""

from __future__ import annotations

import io
import json
import logging
import re
import tempfile
import threading
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from erpsync.staging import KEYS, RunFiles, StoragePath, child_names, put_file, read_parts, write_bytes

if TYPE_CHECKING:  # pyarrow and pandas are imported by the functions that need them
    import pandas as pd
    import pyarrow as pa

    from erpsync.scheme import SourceApi

log = logging.getLogger(__name__)

KEY_COLUMNS = ["order_id", "order_no", "column", "number", "outcome", "bill_no", "kingdee_number"]
INDEX_COLUMNS = ["folder", "column", "number", "order_id"]
_SELECTED = ", ".join(f'"{c}"' for c in INDEX_COLUMNS)
_NO_ROWS = "select " + ", ".join(f'null::varchar as "{c}"' for c in INDEX_COLUMNS) + " where false"
INDEX = "_index"  # <dag_id>/_index/: not a window folder, so nothing that lists windows sees it
STAMPS = "stamps"
FOLD_AFTER = 24  # windows changed since their month was folded before a load folds: a day of hourly windows
ROW_GROUP = 20_000  # rows per row group of a month file: a look-up reads one or two of them
_OUTCOMES = b"erpsync.outcomes"
_FOLDED = "erpsync_folded"  # DuckDB's KV_METADATA keys are identifiers
_MONTH_FILE = re.compile(r"^keys-(\d{6})\.parquet$")
_PREFIX = len("window=")


@dataclass(frozen=True)
class SearchColumns:
    """The columns of a DAG's staged files that the order search finds an order by: the API
    definition's ``order_key`` and ``number_key`` and its ``search`` section."""

    order_key: str
    number_key: str
    orders: tuple[str, ...]  # order fields compared whole
    lists: tuple[str, ...]  # order fields of comma-separated numbers
    lines: tuple[str, ...]  # line fields naming an original order

    @classmethod
    def of(cls, api: SourceApi) -> SearchColumns:
        found = api.search
        return cls(
            order_key=api.order_key,
            number_key=api.number_key,
            orders=tuple(dict.fromkeys((api.number_key, api.order_key, *found.numbers))),
            lists=tuple(found.number_lists),
            lines=tuple(found.line_numbers) if api.order_key in api.line_fields else (),
        )


# -- a window's key file ---------------------------------------------------------------------------


def window_keys(orders: pa.Table, lines: pa.Table | None, report: pa.Table, cols: SearchColumns) -> pa.Table:
    """The key rows of a window from its orders and lines (the columns of ``cols`` they have) and its
    load report (``erpsync.outcomes.REPORT_COLUMNS``); see the module docstring."""
    import pyarrow as pa
    import pyarrow.compute as pc

    def text(table: pa.Table | None, name: str) -> pa.Array | None:
        if table is None or name not in table.column_names:
            return None
        return table.column(name).combine_chunks().cast(pa.string())

    def pairs(ids: pa.Array, column: str, numbers: pa.Array) -> pa.Table:
        return pa.table({"order_id": ids, "column": pa.repeat(pa.scalar(column), len(ids)), "number": numbers})

    none = pa.nulls(orders.num_rows, pa.string())
    ids = text(orders, cols.order_key)
    ids = none if ids is None else ids
    parts = [pairs(ids, c, values) for c in cols.orders if (values := text(orders, c)) is not None]
    for column in cols.lists:
        if (values := text(orders, column)) is not None:
            split = pc.split_pattern(values, pattern=",")
            parts.append(pairs(ids.take(pc.list_parent_indices(split)), column, pc.list_flatten(split)))
    line_ids = text(lines, cols.order_key)
    if line_ids is not None:
        parts += [pairs(line_ids, f"lines.{c}", values) for c in cols.lines if (values := text(lines, c)) is not None]
    report_ids = text(report, "order_id")
    assert report_ids is not None, "a load report has an order_id column"
    parts.append(pairs(report_ids, cols.order_key, report_ids))  # in the report: in the window
    parts += [
        pairs(report_ids, c, values) for c in ("bill_no", "kingdee_number") if (values := text(report, c)) is not None
    ]

    found = pa.concat_tables(parts)
    # an empty number matches no search text (it is never empty)
    found = found.filter(pc.and_(pc.is_valid(found["order_id"]), pc.greater(pc.utf8_length(found["number"]), 0)))
    found = found.group_by(["order_id", "column", "number"], use_threads=False).aggregate([])

    numbers = text(orders, cols.number_key)
    named = pa.concat_tables(
        [
            pa.table({"order_id": ids, "order_no": none if numbers is None else numbers}),
            pa.table({"order_id": report_ids, "order_no": text(report, "order_no")}),
        ]
    )
    named = named.filter(pc.is_valid(named["order_id"]))
    named = named.group_by("order_id", use_threads=False).aggregate([("order_no", "first")])
    last = pc.ScalarAggregateOptions(skip_nulls=False)  # the values of one row, the report's last
    outcomes = pa.table({c: text(report, c) for c in ("order_id", "outcome", "bill_no", "kingdee_number")})
    outcomes = outcomes.filter(pc.is_valid(outcomes["order_id"]))
    outcomes = outcomes.group_by("order_id", use_threads=False).aggregate(
        [(c, "last", last) for c in ("outcome", "bill_no", "kingdee_number")]
    )
    # each row's order: a look-up by position (a hash join costs milliseconds to set up, per window)
    of_name = pc.index_in(found["order_id"], value_set=named["order_id"])
    of_outcome = pc.index_in(found["order_id"], value_set=outcomes["order_id"])
    keys = pa.table(
        {
            "order_id": found["order_id"],
            "order_no": named["order_no_first"].take(of_name),
            "column": found["column"],
            "number": found["number"],
            **{c: outcomes[f"{c}_last"].take(of_outcome) for c in ("outcome", "bill_no", "kingdee_number")},
        }
    )
    return keys.sort_by([("order_id", "ascending"), ("column", "ascending"), ("number", "ascending")])


def _exists(path: StoragePath) -> bool:
    """Whether ``path`` is there now (an object store's client may hold an older listing of its folder)."""
    path.fs.invalidate_cache(path.path)
    return bool(path.exists())


def _columns(path: StoragePath, wanted: Iterable[str]) -> pa.Table:
    """The ``wanted`` columns the Parquet file at ``path`` has (none if there is no such file: a load of
    bills staged by hand has no orders, and its keys are the report's)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not _exists(path):
        return pa.table({})
    with path.open("rb") as handle:
        parquet = pq.ParquetFile(handle)
        names = set(parquet.schema_arrow.names)
        return parquet.read(columns=[c for c in dict.fromkeys(wanted) if c in names], use_threads=False)


def keys_of(files: RunFiles, api: SourceApi, report: pd.DataFrame) -> pa.Table:
    """The key rows of the window of ``files``: its staged orders and lines, and its load ``report``."""
    import pyarrow as pa

    cols = SearchColumns.of(api)
    orders = _columns(files.orders, [*cols.orders, *cols.lists])
    lines = _columns(files.lines, [cols.order_key, *cols.lines]) if cols.lines else None
    return window_keys(orders, lines, pa.Table.from_pandas(report, preserve_index=False), cols)


def write_keys(keys: pa.Table, outcomes: dict[str, int], window_dir: StoragePath) -> None:
    """Write a window's key file (``outcomes``: report rows per outcome) and stamp the window."""
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(keys.replace_schema_metadata({_OUTCOMES: json.dumps(outcomes, sort_keys=True)}), buffer)
    write_bytes(buffer.getvalue(), window_dir / KEYS)
    stamp(window_dir)


def record_keys(files: RunFiles, api: SourceApi) -> None:
    """The load step's last write: the window's key file from its orders, lines and complete load
    report; then its DAG's index is folded if FOLD_AFTER windows changed since (a failed fold is only
    logged: readers read the key files the index does not hold yet)."""
    from erpsync.outcomes import REPORT_COLUMNS

    report = read_parts(files.load_report, REPORT_COLUMNS)
    outcomes = {str(k): int(v) for k, v in report["outcome"].value_counts().items()}
    write_keys(keys_of(files, api, report), outcomes, files.dir)
    try:
        fold(files.dir.parent, due=FOLD_AFTER)
    except Exception:  # the index is a cache of the key files: the window is found without it
        log.warning("Could not fold the key files of %s into its index", files.dir.parent.name, exc_info=True)


def drop_keys(window_dir: StoragePath) -> None:
    """Remove a window's key file when a rerun begins to change what it lists (stamped, so no reader
    trusts the index for it either); the window is read from its wide files until its load ends."""
    keys = window_dir / KEYS
    if _exists(keys):
        keys.unlink(missing_ok=True)
        stamp(window_dir)


def outcomes_of(path: StoragePath) -> dict[str, int]:
    """The outcome counts a key file's footer holds."""
    import pyarrow.parquet as pq

    with path.open("rb") as handle:
        return _outcomes(pq.read_metadata(handle).metadata)


def _outcomes(metadata: dict[bytes, bytes] | None) -> dict[str, int]:
    return {str(k): int(v) for k, v in json.loads((metadata or {}).get(_OUTCOMES, b"{}")).items()}


# -- stamps ----------------------------------------------------------------------------------------


def stamp(window_dir: StoragePath) -> None:
    """Give the window a fresh token, then remove its older ones (a listing of names tells readers
    which windows changed; a crash between leaves two tokens, which reads as changed too)."""
    stamps = window_dir.parent / INDEX / STAMPS
    token = uuid.uuid4().hex
    write_bytes(b"", stamps / f"{window_dir.name}@{token}")
    for name in child_names(stamps):
        folder, _, other = name.rpartition("@")
        if folder == window_dir.name and other != token:
            (stamps / name).unlink(missing_ok=True)


def _unstamp(dag_dir: StoragePath, folders: list[str]) -> None:
    """Remove the tokens of window folders that are gone."""
    stamps = dag_dir / INDEX / STAMPS
    gone = set(folders)
    for name in child_names(stamps) if gone else []:
        if name.rpartition("@")[0] in gone:
            (stamps / name).unlink(missing_ok=True)


def stamps_of(dag_dir: StoragePath) -> dict[str, str]:
    """window folder -> its tokens (sorted, comma-joined), for every window of ``dag_dir`` stamped."""
    found: dict[str, str] = {}
    for name in child_names(dag_dir / INDEX / STAMPS):
        folder, at, token = name.rpartition("@")
        if not at or name.startswith("."):  # a temporary file of a write under way
            continue
        # one token a window but for a moment (a crash between a stamp and removing the one before)
        found[folder] = ",".join(sorted([*found[folder].split(","), token])) if folder in found else token
    return found


# -- the month files -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Folded:
    """A window as a month file folded it."""

    stamp: str
    keys: bool  # it had a key file (else it is read from its wide files)
    outcomes: dict[str, int] = field(default_factory=dict)


def month_of(folder: str) -> str:
    """YYYYMM of a window folder's start, the month file that holds its keys."""
    return folder[_PREFIX : _PREFIX + 6]


_manifests: dict[tuple[str, str], dict[str, Folded]] = {}  # (month file, listing signature) -> its windows
_manifests_lock = threading.Lock()


def _signature(info: dict[str, Any]) -> str:
    """What a listing says of a file that changes when it is replaced (size, times, etag…)."""
    keys = ("size", "mtime", "ino", "created", "LastModified", "ETag", "etag", "last_modified", "updated", "generation")
    return json.dumps({k: info[k] for k in keys if k in info}, sort_keys=True, default=str)


def _manifest(path: StoragePath, signature: str) -> dict[str, Folded]:
    """The windows a month file folded (read once per version of the file in this process)."""
    import pyarrow.parquet as pq

    cache_key = (str(path), signature)
    with _manifests_lock:
        if cache_key in _manifests:
            return _manifests[cache_key]
    with path.open("rb") as handle:
        metadata = pq.read_metadata(handle).metadata or {}
    folded = {
        folder: Folded(entry["stamp"], bool(entry["keys"]), {str(k): int(v) for k, v in entry["outcomes"].items()})
        for folder, entry in json.loads(metadata.get(_FOLDED.encode(), b"{}")).items()
    }
    with _manifests_lock:
        for stale in [k for k in _manifests if k[0] == cache_key[0]]:
            del _manifests[stale]
        _manifests[cache_key] = folded
    return folded


def month_files(dag_dir: StoragePath) -> dict[str, tuple[StoragePath, dict[str, Folded]]]:
    """YYYYMM -> (its month file, the windows it folded)."""
    index = dag_dir / INDEX
    fs = index.fs
    fs.invalidate_cache(index.path)
    try:
        listed = fs.ls(index.path, detail=True)
    except (FileNotFoundError, NotADirectoryError):
        return {}
    found = {}
    for info in listed:
        match = _MONTH_FILE.match(str(info["name"]).rstrip("/").rsplit("/", 1)[-1])
        if match is not None and info.get("type") != "directory":
            path = index / match.group(0)
            found[match.group(1)] = (path, _manifest(path, _signature(info)))
    return found


@dataclass
class DagKeys:
    """Where the keys of each window folder of a DAG are read from now."""

    dag_dir: StoragePath
    months: list[StoragePath]  # month files holding windows of ``indexed``
    indexed: dict[str, Folded]  # folder -> its entry in a month file, current and with a key file
    direct: list[str]  # folders whose key file changed since their month was folded: read it
    wide: list[str]  # folders without a key file (staged before them, or a rerun under way): their wide files

    def key_file(self, folder: str) -> StoragePath:
        return self.dag_dir / folder / KEYS


def dag_keys(dag_dir: StoragePath, names: Iterable[str]) -> DagKeys:
    """Where the keys of the window folders ``names`` of ``dag_dir`` are read from."""
    stamps = stamps_of(dag_dir)
    months = month_files(dag_dir)
    folded = {name: entry for _, manifest in months.values() for name, entry in manifest.items()}
    state = DagKeys(dag_dir, [], {}, [], [])
    for name in names:
        token = stamps.get(name)
        entry = folded.get(name)
        if token is None:
            state.wide.append(name)
        elif entry is not None and entry.stamp == token:
            if entry.keys:
                state.indexed[name] = entry
            else:
                state.wide.append(name)
        elif _exists(state.key_file(name)):
            state.direct.append(name)
        else:
            state.wide.append(name)
    used = {month_of(name) for name in state.indexed}
    state.months = [months[m][0] for m in sorted(used)]
    return state


def fold(dag_dir: StoragePath, *, due: int = 1) -> int:
    """Fold the windows of ``dag_dir`` whose key files changed since their month was folded into their
    month files, when at least ``due`` did; returns how many windows were folded."""
    stamps = stamps_of(dag_dir)
    months = month_files(dag_dir)
    changed: dict[str, list[str]] = defaultdict(list)
    for folder, token in stamps.items():
        folded = months.get(month_of(folder))
        entry = folded[1].get(folder) if folded else None
        if entry is None or entry.stamp != token:
            changed[month_of(folder)].append(folder)
    if not changed or sum(map(len, changed.values())) < due:
        return 0
    present = set(child_names(dag_dir))
    gone = [f for f in stamps if f not in present]  # pruned by retention: their rows leave with this fold
    for month in sorted(changed):
        _fold_month(dag_dir, month, stamps, months.get(month), present)
    _unstamp(dag_dir, gone)
    count = sum(map(len, changed.values()))
    log.info("Folded %d changed windows of %s into its index (%s)", count, dag_dir.name, ", ".join(sorted(changed)))
    return count


def _fold_month(
    dag_dir: StoragePath,
    month: str,
    stamps: dict[str, str],
    current: tuple[StoragePath, dict[str, Folded]] | None,
    present: set[str],
) -> None:
    """Write the month file of ``month`` anew: the windows it holds whose tokens did not change, and the
    key files of the others (read after their tokens were listed: at least that new)."""
    import duckdb
    import pyarrow.parquet as pq

    target = dag_dir / INDEX / f"keys-{month}.parquet"
    old_path, old = current if current else (None, {})
    with tempfile.TemporaryDirectory(prefix="erpsync-fold-") as tmp:
        local = Path(tmp)  # DuckDB reads copies: a file replaced or removed meanwhile cannot fail the fold
        old_copy = _copy(old_path, local / "old.parquet") if old_path is not None else None
        # a window whose token is still the one folded keeps its rows (none if the month file is gone)
        kept = {f: e for f, e in old.items() if f in present and stamps.get(f) == e.stamp} if old_copy else {}
        entries = dict(kept)
        new_files = []
        for folder, token in sorted(stamps.items()):
            if month_of(folder) != month or folder in kept or folder not in present:
                continue
            copy = _copy(dag_dir / folder / KEYS, local / folder / KEYS)
            if copy is None:
                entries[folder] = Folded(token, False)
                continue
            entries[folder] = Folded(token, True, _outcomes(pq.read_metadata(copy).metadata))
            new_files.append(copy)
        if not entries:
            if old_path is not None:
                old_path.unlink(missing_ok=True)
            return
        sources = []
        params: dict[str, Any] = {}
        if any(e.keys for e in kept.values()):
            sources.append(f"select {_SELECTED} from read_parquet($old) where folder in (select unnest($kept))")
            params.update(old=old_copy, kept=sorted(f for f, e in kept.items() if e.keys))
        if new_files:
            sources.append(
                "select split_part(replace(filename, '\\', '/'), '/', -2) as folder, \"column\", number, order_id "
                "from read_parquet($new, filename=true)"
            )
            params["new"] = new_files
        manifest = json.dumps(
            {f: {"stamp": e.stamp, "keys": e.keys, "outcomes": e.outcomes} for f, e in sorted(entries.items())},
            ensure_ascii=False,
        ).replace("'", "''")  # a SQL string literal: DuckDB takes no parameter in COPY's options
        rows = " union all ".join(sources) if sources else _NO_ROWS
        out = local / "month.parquet"
        with duckdb.connect(":memory:", config={"temp_directory": str(local / "spill")}) as con:
            con.execute("set enable_progress_bar = false")
            con.execute(
                f"copy (select * from ({rows}) order by number, folder, \"column\") to '{out}' "
                f"(format parquet, row_group_size {ROW_GROUP}, kv_metadata {{{_FOLDED}: '{manifest}'}})",
                params,
            )
        put_file(out, target)


def _copy(path: StoragePath, copy: Path) -> str | None:
    """A local copy of ``path``; None if it is not there (removed since it was listed: its token changed too)."""
    copy.parent.mkdir(parents=True, exist_ok=True)
    try:
        with path.open("rb") as source, open(copy, "wb") as target:
            while block := source.read(1 << 20):
                target.write(block)
    except FileNotFoundError:
        return None
    return str(copy)
