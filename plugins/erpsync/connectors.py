"""The connector registry: ``source.system`` and ``target.system`` of a scheme name the module that
speaks that system's protocol. The steps read and write through the objects these modules open and
never import a connector themselves, so a new system is a new module here, not a change of the steps.

A source module has ``open_reader(source, connection_id=None)``: a context manager giving a reader with
``orders(window, filters)`` (every order of the window, each once, as the API returned it) and the
counters ``calls``, ``retries``, ``throttled_seconds``, ``sub_windows``, ``pages``, ``recorder``. A target
module has ``open_writer(target, connection_id=None)``: a writer with ``save(bills, request, settings,
record, dry_run)`` (each bill exactly once; ``record`` gets the report rows), ``read_bills(query)`` (the
bills a reconciliation compares, :class:`BillQuery`) and ``recorder``. Both have ``CONFIG_ERRORS``: the
exceptions that no retry can fix.
"""

from __future__ import annotations

import datetime as dt
import importlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Protocol

from erpsync.scheme import LoadSettings
from erpsync.windows import Window

SOURCES = {"wdt": "erpsync.wdt.connector"}
TARGETS = {"kingdee": "erpsync.kingdee.connector"}


class Reader(Protocol):
    sub_windows: int
    pages: int

    @property
    def calls(self) -> int: ...
    @property
    def retries(self) -> int: ...
    @property
    def throttled_seconds(self) -> float: ...
    @property
    def recorder(self) -> Any: ...

    def orders(self, window: Window, filters: Mapping[str, str] | None = None) -> Iterator[dict[str, Any]]: ...


@dataclass(frozen=True)
class BillQuery:
    """The bills of ``form`` a reconciliation reads: those whose ``key`` is one of ``keys`` (wherever their
    date), and, when ``dated``, those whose ``date`` field falls on a day of ``[start, end)``.

    ``header`` and ``lines`` name the fields to read (name -> field key; ``lines`` are entry fields, so
    the answer has one row per entry row); ``references`` are the fields that point at other records
    (customers, materials, stocks), read by their number. Each row holds ``bill_id``, ``bill_no`` (the
    target's own number), ``key`` and every name of ``header`` and ``lines``: dates as ``yyyy-MM-dd``,
    numbers as ``Decimal``, the rest as text.
    """

    form: str
    entry: str  # the entry entity (FEntity, FInStockEntry): its rows are the answer's rows
    key: str
    keys: Sequence[str]
    date: str
    start: dt.date
    end: dt.date
    header: Mapping[str, str]
    lines: Mapping[str, str]
    references: frozenset[str]
    dated: bool = True


class Writer(Protocol):
    @property
    def recorder(self) -> Any: ...

    def read_bills(self, query: BillQuery) -> list[dict[str, Any]]: ...

    def save(
        self,
        bills: Sequence[dict[str, Any]],
        request: Mapping[str, Any],
        settings: LoadSettings,
        record: Any,
        dry_run: bool = False,
    ) -> int: ...


def _module(registry: Mapping[str, str], system: str, role: str) -> ModuleType:
    if system not in registry:
        raise KeyError(f"no {role} connector for system {system!r} (known: {', '.join(registry)})")
    return importlib.import_module(registry[system])


def source_connector(system: str) -> ModuleType:
    """The module of the source system ``system`` (imported when first asked for)."""
    return _module(SOURCES, system, "source")


def target_connector(system: str) -> ModuleType:
    return _module(TARGETS, system, "target")


def open_reader(source: Any, connection_id: str | None = None) -> AbstractContextManager[Reader]:
    """A reader on the scheme source's connection."""
    opened: AbstractContextManager[Reader] = source_connector(source.system).open_reader(source, connection_id)
    return opened


def open_writer(target: Any, connection_id: str | None = None) -> AbstractContextManager[Writer]:
    opened: AbstractContextManager[Writer] = target_connector(target.system).open_writer(target, connection_id)
    return opened


def config_errors(scheme: Any) -> tuple[type[Exception], ...]:
    """The exceptions of the scheme's connectors that no retry can fix."""
    return (
        *source_connector(scheme.source.system).CONFIG_ERRORS,
        *target_connector(scheme.target.system).CONFIG_ERRORS,
    )
