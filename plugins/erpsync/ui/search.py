"""Where is my order? One number, every window of every DAG the user may read.

The number is matched against the columns people search by, as the scheme's API definition names them:
the order's id and number (``order_key``/``number_key``), its other numbers (``search.numbers``, e.g. a
stock-out's ``src_order_no``; each of the comma-separated ``search.number_lists``) and its lines'
(``search.line_numbers``, e.g. ``src_tid``), and the bill and Kingdee numbers of the load report. Then each matching order's
story is gathered from the same windows: extracted, quarantined for what, unmapped, posted as which
Kingdee bill or rejected with Kingdee's reason.

The number only ever travels as a DuckDB parameter; file names come from the staging root's own
folder names (dag ids checked against the scheme pattern, globs built by this module).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from erpsync.scheme import Scheme
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


def _glob(dag_id: str, name: str) -> str:
    if not DAG_ID.match(dag_id):
        raise ValueError(f"not a dag id: {dag_id!r}")
    return f"{dag_id}/window=*/{name}"


def _read(duck: Duck, dag_id: str, name: str, select: str, where: str, **params: Any) -> list[dict[str, Any]]:
    """``select … where …`` over file ``name`` of every window of ``dag_id`` (none: no rows)."""
    source = "read_parquet($files, filename=true, union_by_name=true, hive_partitioning=false)"
    try:
        return duck.rows(
            f"select filename, {select} from {source} where {where}",
            {"files": duck.parquet([_glob(dag_id, name)]), **params},
        )
    except Exception as exc:  # duckdb.IOException: no window has this file yet
        if "No files found" in str(exc):
            return []
        raise


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
        keys = (api.order_key, api.number_key)
        found = api.search  # the API definition says which columns hold numbers people search by
        return cls(
            order_key=api.order_key,
            number_key=api.number_key,
            orders=tuple(dict.fromkeys((api.number_key, api.order_key, *found.numbers))),
            lists=tuple(found.number_lists),
            lines=tuple(found.line_numbers) if api.order_key in api.line_fields else (),
            shown=tuple(c for c in found.shown if c not in keys),
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
    matched: dict[str, set[str]] = defaultdict(set)  # order id -> where the number was found
    for column in cols.lines:  # an original order number on a line names its stock-out
        for row in _read(
            duck,
            dag_id,
            "lines.parquet",
            f"{oid} as order_id",
            f"{quote_ident(column)} in (select unnest($q))",
            q=variants,
        ):
            matched[str(row["order_id"])].add(f"lines.{column}")
    for row in _read(
        duck,
        dag_id,
        "load_report/part-*.parquet",
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
        dag_id,
        "orders.parquet",
        ", ".join(selected),
        " or ".join(conditions),
        q=variants,
        ids=sorted(matched) or [""],
    )

    ids = sorted({str(r["order_id"]) for r in order_rows if r["order_id"] is not None} | set(matched))
    more = len(ids) > MAX_ORDERS
    ids = ids[:MAX_ORDERS]
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
        _events(duck, dag_id, ids, at)
    for (order_id, _folder), place in windows.items():
        history = histories.setdefault(
            order_id, OrderHistory(dag_id, order_id, place.order.get("order_no"), labels=cols.labels)
        )
        history.windows.append(place)
    for history in histories.values():
        history.windows.sort(key=lambda w: (w.window.start, w.window.end, w.filtered))
    return list(histories.values()), more


def _events(duck: Duck, dag_id: str, ids: list[str], at: Any) -> None:
    """What happened to the orders ``ids`` after extraction, in each window's files."""
    where = "order_id in (select unnest($ids))"
    for row in _read(
        duck, dag_id, "quarantine.parquet", 'order_id, line_id, suite, "check", "column", value', where, ids=ids
    ):
        if (place := at(row)) is not None:
            place.events.append(
                Event("quarantined", {k: row[k] for k in ("line_id", "suite", "check", "column", "value")})
            )
    for row in _read(duck, dag_id, "unmapped.parquet", "order_id, field, message", where, ids=ids):
        if (place := at(row)) is not None:
            place.events.append(Event("unmapped", {"field": row["field"], "message": row["message"]}))
    loaded = ("bill_no", "kingdee_number", "kingdee_id", "field", "message", "at")
    for row in _read(
        duck,
        dag_id,
        "load_report/part-*.parquet",
        'order_id, outcome, bill_no, kingdee_number, kingdee_id, field, message, "at"',
        f"{where} and outcome not in ('quarantined', 'unmapped')",
        ids=ids,
    ):  # told above, from their files
        if (place := at(row)) is not None:
            place.events.append(Event(str(row["outcome"]), {k: row[k] for k in loaded}))
