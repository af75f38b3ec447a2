"""Where is my order? One number, every window of every DAG the user may read.

The number is matched against the columns people search by, as the scheme's API definition names them:
the order's id and number (``order_key``/``number_key``), its other numbers (``search.numbers``, e.g. a
stock-out's ``src_order_no``; each of the comma-separated ``search.number_lists``) and its lines'
(``search.line_numbers``, e.g. ``src_tid``), and the bill and Kingdee numbers of the load report.
Then each matching order's story is gathered from the windows it is in: extracted, quarantined for
what, unmapped, posted as which Kingdee bill or rejected with Kingdee's reason.

Where the numbers are looked up: each window's key file (``erpsync.keys``), through the DAG's index
for the windows folded into it (a few month files sorted by number) and the window's own key file for
those changed since; a window without a key file (staged before key files, or a rerun under way) in
its wide files, as before. Then the story is read from the wide files of only the windows the orders
are in.

The number only ever travels as a DuckDB parameter; file names come from the staging root's own
folder names (dag ids checked against the scheme pattern, paths built by this module).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from erpsync.keys import DagKeys, SearchColumns, dag_keys
from erpsync.scheme import Scheme
from erpsync.staging import KEYS
from erpsync.ui.staged import DAG_ID, Duck, Staging, quote_ident

MAX_QUERY = 64  # document numbers are shorter; longer input is no number
MAX_ORDERS = 50  # orders shown; a number that matches more is not a number of one order
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def clean_query(text: str | None) -> str:
    """The search text as searched: trimmed, without control characters, at most MAX_QUERY characters."""
    return _CONTROL.sub("", text or "").strip()[:MAX_QUERY]


@dataclass
class Event:
    """One thing that happened to an order in one window."""

    kind: str  # extracted | quarantined | unmapped | <load outcome>
    detail: dict[str, Any]


@dataclass
class OrderWindow:
    dag_id: str
    folder: str
    window: Any
    filtered: bool
    dry_run: bool = False
    order: dict[str, Any] = field(default_factory=dict)  # the staged order's shown fields
    events: list[Event] = field(default_factory=list)


@dataclass
class OrderHistory:
    dag_id: str
    order_id: str
    order_no: str | None
    matched: set[str] = field(default_factory=set)  # the columns the number was found in
    windows: list[OrderWindow] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)  # column -> its Chinese label (API definition)

    @property
    def last_outcome(self) -> str | None:
        for window in reversed(self.windows):
            for event in window.events:
                if event.kind not in ("extracted",):
                    return event.kind
        return None


@dataclass
class SearchResult:
    query: str
    orders: list[OrderHistory]
    more: bool  # more orders matched than are shown
    skipped: list[str]  # DAGs that could not be searched, and why


_WIDE = ("orders.parquet", "lines.parquet", "quarantine.parquet", "unmapped.parquet")
REPORT = "load_report"
_ONE_BY_ONE = 64  # windows listed one by one on object storage; more: one listing of the whole DAG


def _files(staging: Staging, dag_id: str, folders: list[str]) -> dict[str, list[str]]:
    """The staged files of the window folders ``folders`` of ``dag_id`` that exist, by name (``REPORT``:
    the load report's parts), as DuckDB names them: DuckDB refuses a list naming a missing file."""
    found: dict[str, list[str]] = {name: [] for name in (*_WIDE, REPORT)}
    if not folders:
        return found
    if not DAG_ID.match(dag_id):
        raise ValueError(f"not a dag id: {dag_id!r}")
    wanted = set(folders)
    if staging.local or len(folders) <= _ONE_BY_ONE:
        listed = []
        for folder in folders:
            names = staging.listdir(f"{dag_id}/{folder}")
            listed += [f"{folder}/{n}" for n in names]
            if REPORT in names:
                listed += [f"{folder}/{REPORT}/{n}" for n in staging.listdir(f"{dag_id}/{folder}/{REPORT}")]
    else:  # windows staged before key files: one listing (paged by the store) instead of two calls each
        listed = [p for p in staging.find(staging.root / dag_id) if p.split("/", 1)[0] in wanted]
    for path in sorted(listed):
        parts = path.split("/")
        if parts[0] not in wanted:
            continue
        if len(parts) == 2 and parts[1] in _WIDE:
            found[parts[1]].append(staging.duck_name(f"{dag_id}/{path}"))
        elif len(parts) == 3 and parts[1] == REPORT and parts[2].startswith("part-") and parts[2].endswith(".parquet"):
            found[REPORT].append(staging.duck_name(f"{dag_id}/{path}"))
    return found


def _read(duck: Duck, files: list[str], select: str, where: str, **params: Any) -> list[dict[str, Any]]:
    """``select … where …`` over ``files`` (none: no rows)."""
    if not files:
        return []
    source = "read_parquet($files, filename=true, union_by_name=true, hive_partitioning=false)"
    return duck.rows(f"select filename, {select} from {source} where {where}", {"files": files, **params})


def _keys(
    staging: Staging, duck: Duck, dag_id: str, keys: DagKeys, numbers: list[str], column: str | None = None
) -> list[dict[str, Any]]:
    """Key rows (``folder, column, number, order_id``) whose number is one of ``numbers`` (and whose
    column is ``column``): from the DAG's index for the windows it holds, from their own key files
    for the windows changed since. Windows pruned since they were folded are left out."""
    if not numbers:
        return []
    # "number in ($n0, $n1…)": a list DuckDB can test against each row group's range; "in (select
    # unnest($q))" reads every row (0.3 s over a year)
    names = {f"n{i}": number for i, number in enumerate(numbers)}
    where = f"number in ({', '.join('$' + n for n in names)})" + (' and "column" = $column' if column else "")
    params: dict[str, Any] = {**names, **({"column": column} if column else {})}
    rows = []
    if keys.months:
        found = duck.rows(
            f'select folder, "column", number, order_id from read_parquet($files) where {where}',
            {"files": duck.parquet(keys.months), **params},
        )
        there: dict[str, bool] = {}
        for row in found:
            folder = row["folder"]
            if folder in keys.indexed and folder not in there:
                there[folder] = staging.exists(f"{dag_id}/{folder}/{KEYS}")
            if there.get(folder):
                rows.append(row)
    if keys.direct:
        for row in duck.rows(
            'select filename, "column", number, order_id from read_parquet($files, filename=true) where ' + where,
            {"files": duck.parquet([f"{dag_id}/{f}/{KEYS}" for f in keys.direct]), **params},
        ):
            rows.append({"folder": staging.from_duck(row.pop("filename")).split("/")[1], **row})
    return rows


@dataclass(frozen=True)
class _Columns:
    """The columns of one DAG's staged files that a number is looked up in, from its API definition."""

    order_key: str
    number_key: str
    orders: tuple[str, ...]  # compared whole
    lists: tuple[str, ...]  # comma-separated lists of numbers
    lines: tuple[str, ...]  # line columns naming an original order
    shown: tuple[str, ...]  # shown beside each window of the order
    labels: dict[str, str]

    @classmethod
    def of(cls, scheme: Scheme) -> _Columns:
        api = scheme.source.api
        found = SearchColumns.of(api)  # the API definition says which columns hold numbers people search by
        keys = (api.order_key, api.number_key)
        return cls(
            order_key=found.order_key,
            number_key=found.number_key,
            orders=found.orders,
            lists=found.lists,
            lines=found.lines,
            shown=tuple(c for c in api.search.shown if c not in keys),
            labels={c: f.label for c, f in api.order_fields.items()},
        )


def search(staging: Staging, duck: Duck, schemes: dict[str, Scheme | None], text: str) -> SearchResult:
    """The histories of the orders ``text`` names, in the DAGs of ``schemes`` (dag_id -> scheme)."""
    query = clean_query(text)
    variants = list(dict.fromkeys([query, query.upper()]))  # ck2026… typed in lower case
    result = SearchResult(query, [], False, [])
    for dag_id, scheme in sorted(schemes.items()):
        if scheme is None:
            result.skipped.append(f"{dag_id}: no scheme defines it any more (its columns are unknown)")
            continue
        found, more = _search_dag(staging, duck, dag_id, _Columns.of(scheme), variants)
        result.orders += found
        result.more = result.more or more
    result.orders = sorted(result.orders, key=lambda h: (h.order_no or "", h.dag_id, h.order_id))[:MAX_ORDERS]
    return result


def _search_dag(
    staging: Staging, duck: Duck, dag_id: str, cols: _Columns, variants: list[str]
) -> tuple[list[OrderHistory], bool]:
    oid, ono = quote_ident(cols.order_key), quote_ident(cols.number_key)
    keys = dag_keys(staging.root / dag_id, staging.names(dag_id))
    matched: dict[str, set[str]] = defaultdict(set)  # order id -> where the number was found
    for row in _keys(staging, duck, dag_id, keys, variants):
        matched[str(row["order_id"])].add(str(row["column"]))

    # windows without a key file: their wide files, as before key files
    wide = _files(staging, dag_id, keys.wide)
    for column in cols.lines:  # an original order number on a line names its stock-out
        for row in _read(
            duck,
            wide["lines.parquet"],
            f"{oid} as order_id",
            f"{quote_ident(column)} in (select unnest($q))",
            q=variants,
        ):
            matched[str(row["order_id"])].add(f"lines.{column}")
    for row in _read(
        duck,
        wide[REPORT],
        "order_id, bill_no",
        "(bill_no in (select unnest($q)) or kingdee_number in (select unnest($q))) and order_id is not null",
        q=variants,
    ):
        matched[str(row["order_id"])].add("bill_no" if row["bill_no"] in variants else "kingdee_number")

    conditions = [f"{quote_ident(c)} in (select unnest($q))" for c in cols.orders]
    conditions += [f"list_has_any(string_split(coalesce({quote_ident(c)}, ''), ','), $q)" for c in cols.lists]
    conditions.append(f"{oid} in (select unnest($ids))")
    selected = [
        f"{oid} as order_id",
        f"{ono} as order_no",
        *map(quote_ident, dict.fromkeys([*cols.orders, *cols.lists, *cols.shown])),
    ]
    order_rows = _read(
        duck,
        wide["orders.parquet"],
        ", ".join(selected),
        " or ".join(conditions),
        q=variants,
        ids=sorted(matched) or [""],
    )

    ids = sorted({str(r["order_id"]) for r in order_rows if r["order_id"] is not None} | set(matched))
    more = len(ids) > MAX_ORDERS
    ids = ids[:MAX_ORDERS]
    # the windows with a key file that these orders are in: only their wide files are read
    homes = sorted({row["folder"] for row in _keys(staging, duck, dag_id, keys, ids, column=cols.order_key)})
    story = _files(staging, dag_id, homes)
    order_rows += _read(
        duck, story["orders.parquet"], ", ".join(selected), f"{oid} in (select unnest($ids))", ids=ids or [""]
    )
    windows: dict[tuple[str, str], OrderWindow] = {}

    def at(row: dict[str, Any]) -> OrderWindow | None:
        """The (order, window) a row of a staged file belongs to, by the file's folder."""
        relative = staging.from_duck(row["filename"]).split("/")
        parsed = staging.parse(dag_id, relative[1]) if len(relative) > 2 else None
        if parsed is None or str(row["order_id"]) not in ids:
            return None
        key = (str(row["order_id"]), relative[1])
        if key not in windows:
            windows[key] = OrderWindow(dag_id, relative[1], parsed[0], parsed[1] is not None, parsed[2])
        return windows[key]

    histories: dict[str, OrderHistory] = {}
    for row in order_rows:
        if (place := at(row)) is None:
            continue
        order_id = str(row["order_id"])
        history = histories.setdefault(order_id, OrderHistory(dag_id, order_id, row["order_no"], labels=cols.labels))
        history.matched |= {c for c in cols.orders if row.get(c) in variants}
        history.matched |= {c for c in cols.lists if set(str(row.get(c) or "").split(",")) & set(variants)}
        history.matched |= matched.get(order_id, set())
        place.order = {"order_no": row["order_no"], **{c: row.get(c) for c in cols.shown}}
        place.events.append(Event("extracted", {}))
    if ids:
        _events(duck, {name: wide[name] + story[name] for name in wide}, ids, at)
    for (order_id, _folder), place in windows.items():
        history = histories.setdefault(
            order_id, OrderHistory(dag_id, order_id, place.order.get("order_no"), labels=cols.labels)
        )
        history.windows.append(place)
    for history in histories.values():
        history.windows.sort(key=lambda w: (w.window.start, w.window.end, w.filtered))
    return list(histories.values()), more


def _events(duck: Duck, files: dict[str, list[str]], ids: list[str], at: Any) -> None:
    """What happened to the orders ``ids`` after extraction, in the windows' files."""
    where = "order_id in (select unnest($ids))"
    for row in _read(
        duck,
        files["quarantine.parquet"],
        'order_id, line_id, suite, "check", "column", value',
        where,
        ids=ids,
    ):
        if (place := at(row)) is not None:
            place.events.append(
                Event("quarantined", {k: row[k] for k in ("line_id", "suite", "check", "column", "value")})
            )
    for row in _read(duck, files["unmapped.parquet"], "order_id, field, message", where, ids=ids):
        if (place := at(row)) is not None:
            place.events.append(Event("unmapped", {"field": row["field"], "message": row["message"]}))
    loaded = ("bill_no", "kingdee_number", "kingdee_id", "field", "message", "at")
    for row in _read(
        duck,
        files[REPORT],
        'order_id, outcome, bill_no, kingdee_number, kingdee_id, field, message, "at"',
        f"{where} and outcome not in ('quarantined', 'unmapped')",
        ids=ids,
    ):  # told above, from their files
        if (place := at(row)) is not None:
            place.events.append(Event(str(row["outcome"]), {k: row[k] for k in loaded}))
