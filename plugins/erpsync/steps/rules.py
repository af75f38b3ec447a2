"""Rules: a Great Expectations suite compiled once to vectorised checks over Parquet row groups.

The suites stay GX's own JSON files (``include/expectations/``). :func:`load_suite` reads one and
refuses, naming the suite and the expectation, any expectation type or argument not implemented here:
a rule is never skipped silently. :func:`scan` then checks a staged file one row group at a time with
pyarrow, reading only the columns the rules and the report need, so memory does not grow with the
window (uniqueness keeps 8 bytes per row, see :class:`_Tally`).

The semantics are GX's (1.x, pandas engine) on the values validate gives GX: text as staged, and the
suite's ``meta.decimal_columns`` as exact :class:`~decimal.Decimal` (text that is no finite number
becomes null). Each result is GX's ``ExpectationValidationResult`` in the ``SUMMARY`` result format
(counts, percentages, the first 20 unexpected values and rows, the most common unexpected values);
every failing row goes to the quarantine instead of ``unexpected_list``. Decimal values are written
in the results as exact text where GX would write a float. ``tests/erpsync/test_validate_rules.py``
runs GX itself beside these checks on the same data for every expectation of the shipped suites.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

from erpsync.scheme import SourceKeys
from erpsync.staging import StoragePath

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

NOT_NULL = "expect_column_values_to_not_be_null"
UNIQUE = "expect_column_values_to_be_unique"
BETWEEN = "expect_column_values_to_be_between"
# the arguments each implemented expectation takes; anything else in a suite is refused
ARGUMENTS: dict[str, frozenset[str]] = {
    NOT_NULL: frozenset({"column"}),
    UNIQUE: frozenset({"column"}),
    BETWEEN: frozenset({"column", "min_value", "max_value", "strict_min", "strict_max"}),
}
ROW = "_row"  # the row's number in its file, GX's first unexpected index column here
PARTIAL = 20  # GX's partial_unexpected_count
_NULL_HASH = -1  # CPython's hash() never returns -1: it marks a null in the uniqueness hashes


class ValidationSetupError(RuntimeError):
    """A suite that cannot be run (a broken suite file, an unsupported expectation, a missing column): not a data problem."""


@dataclass(frozen=True)
class Rule:
    """One expectation of a suite, ready to run."""

    type: str
    kwargs: Mapping[str, Any]  # as written in the suite (numbers as exact Decimal)
    column: str
    check: str  # the rule in a reader's words, e.g. "goods_count > 0"
    meta: Mapping[str, Any] = field(default_factory=dict)
    id: str | None = None
    min_value: Decimal | None = None
    max_value: Decimal | None = None
    strict_min: bool = False
    strict_max: bool = False

    def bad(self, value: Decimal) -> bool:
        """Whether a (non-null) number breaks the bounds of a ``between`` rule."""
        if self.min_value is not None and (value <= self.min_value if self.strict_min else value < self.min_value):
            return True
        return self.max_value is not None and (value >= self.max_value if self.strict_max else value > self.max_value)


@dataclass(frozen=True)
class Suite:
    name: str
    path: Path
    rules: tuple[Rule, ...]
    index_columns: tuple[str, ...]  # meta.index_columns: what identifies a row in the results
    decimal_columns: frozenset[str]  # meta.decimal_columns: read as exact decimals
    meta: Mapping[str, Any]


def decimal(value: Any) -> Decimal | None:
    """The exact number a staged value holds, None when it holds none (null, not a number, NaN, ±Infinity)."""
    if value is None:
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _plain(number: Any) -> str:
    """0 -> "0", 2.50 -> "2.5"."""
    return format(Decimal(str(number)).normalize(), "f")


def describe(expectation_type: str, kwargs: Mapping[str, Any]) -> str:
    """The rule in a reader's words, e.g. "goods_count > 0"."""
    column = kwargs.get("column")
    if expectation_type == NOT_NULL:
        return f"{column} is present"
    if expectation_type == UNIQUE:
        return f"{column} is unique"
    if expectation_type == BETWEEN:
        parts = []
        if kwargs.get("min_value") is not None:
            parts.append(f"{column} {'>' if kwargs.get('strict_min') else '>='} {_plain(kwargs['min_value'])}")
        if kwargs.get("max_value") is not None:
            parts.append(f"{column} {'<' if kwargs.get('strict_max') else '<='} {_plain(kwargs['max_value'])}")
        return " and ".join(parts) or f"{column} in range"
    return f"{expectation_type}({column})"


def _bound(value: Any, what: str) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise ValueError(f"{what} must be a number, not {value!r}")
    return Decimal(value)


def _flag(value: Any, what: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ValueError(f"{what} must be true or false, not {value!r}")
    return value


def _rule(entry: Any, decimal_columns: frozenset[str]) -> Rule:
    if (
        not isinstance(entry, dict)
        or not isinstance(entry.get("type"), str)
        or not isinstance(entry.get("kwargs"), dict)
    ):
        raise ValueError(f"not an expectation: {entry!r}")
    kind, kwargs = entry["type"], entry["kwargs"]
    if kind not in ARGUMENTS:
        raise ValueError(f"{kind} is not supported (supported: {', '.join(sorted(ARGUMENTS))})")
    unknown = sorted(set(kwargs) - ARGUMENTS[kind])
    if unknown:
        raise ValueError(f"{kind}: argument {', '.join(unknown)} is not supported")
    column = kwargs.get("column")
    if not isinstance(column, str) or not column:
        raise ValueError(f"{kind}: column must be a column name, not {column!r}")
    bounds: dict[str, Any] = {}
    if kind == BETWEEN:
        low, high = _bound(kwargs.get("min_value"), "min_value"), _bound(kwargs.get("max_value"), "max_value")
        if low is None and high is None:
            raise ValueError(f"{kind} on {column}: min_value and max_value cannot both be null")
        if low is not None and high is not None and low > high:
            raise ValueError(f"{kind} on {column}: min_value is greater than max_value")
        if column not in decimal_columns:  # GX would compare text with a number and raise
            raise ValueError(f"{kind} on {column}: the column must be one of meta.decimal_columns")
        bounds = {
            "min_value": low,
            "max_value": high,
            "strict_min": _flag(kwargs.get("strict_min"), "strict_min"),
            "strict_max": _flag(kwargs.get("strict_max"), "strict_max"),
        }
    meta = entry.get("meta") or {}
    if not isinstance(meta, dict):
        raise ValueError(f"{kind} on {column}: meta must be an object")
    return Rule(kind, kwargs, column, describe(kind, kwargs), meta, entry.get("id"), **bounds)


def _names(value: Any, what: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"meta.{what} must be a list of column names")
    return tuple(value)


def load_suite(path: Path) -> Suite:
    """The suite in GX's JSON form at ``path``; :class:`ValidationSetupError` naming the suite and the
    expectation when it has one that cannot be run exactly."""
    try:
        spec = json.loads(path.read_text(encoding="utf-8"), parse_float=Decimal)  # bounds stay exact
        name, entries, meta = spec["name"], spec["expectations"], spec.get("meta") or {}
        if not isinstance(name, str) or not isinstance(entries, list) or not isinstance(meta, dict):
            raise TypeError("name, expectations and meta must be text, a list and an object")
        index_columns = _names(meta.get("index_columns", []), "index_columns")
        decimal_columns = frozenset(_names(meta.get("decimal_columns", []), "decimal_columns"))
    except (OSError, KeyError, TypeError, ValueError) as exc:
        raise ValidationSetupError(f"{path}: not a usable expectation suite: {exc}") from exc
    rules = []
    for number, entry in enumerate(entries, 1):
        try:
            rules.append(_rule(entry, decimal_columns))
        except ValueError as exc:
            raise ValidationSetupError(f"suite {name} ({path}), expectation {number}: {exc}") from exc
    return Suite(name, path, tuple(rules), index_columns, decimal_columns, meta)


# -- Arrow arrays from Python values -----------------------------------------------------------------
# pa.array(), like every conversion of a Python value to Arrow (scalars included), imports pandas on
# its first call to ask whether the value is a pandas object: 0.3 s and 40 MB a run. The few arrays
# validate makes are built from their buffers instead; everything else stays Arrow-to-Arrow.


def bool_array(flags: Sequence[bool]) -> pa.Array:
    import numpy as np
    import pyarrow as pa

    bits = np.packbits(np.asarray(flags, dtype=bool), bitorder="little")
    return pa.Array.from_buffers(pa.bool_(), len(flags), [None, pa.py_buffer(bits)])


def index_array(positions: Sequence[int]) -> pa.Array:
    import numpy as np
    import pyarrow as pa

    values = np.asarray(positions, dtype=np.int64)
    return pa.Array.from_buffers(pa.int64(), len(values), [None, pa.py_buffer(values)])


def string_array(values: Sequence[str | None]) -> pa.Array:
    import numpy as np
    import pyarrow as pa

    encoded = [b"" if v is None else v.encode("utf-8") for v in values]
    ends = np.cumsum([len(e) for e in encoded], dtype=np.int64)
    if len(ends) and ends[-1] >= 2**31:
        raise ValueError("more than 2 GB of text in one column")
    offsets = np.concatenate([np.zeros(1, dtype=np.int32), ends.astype(np.int32)])
    valid = np.packbits(np.asarray([v is not None for v in values], dtype=bool), bitorder="little")
    buffers = [pa.py_buffer(valid), pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))]
    return pa.Array.from_buffers(pa.string(), len(encoded), buffers)


# -- checking a file ---------------------------------------------------------------------------------


@dataclass
class _Tally:
    """What one rule found in one file, gathered row group by row group.

    Memory grows with the failing rows only, except for a uniqueness rule: it keeps a 64-bit hash of
    each row's value (1.6 MB per 200,000 rows) and settles the few rows whose hashes repeat on exact
    values at the end, re-reading only the row groups that hold them."""

    element_count: int = 0
    nonnull_count: int = 0
    unexpected_count: int = 0
    partial: list[Any] = field(default_factory=list)  # the first PARTIAL unexpected values
    partial_index: list[dict[str, Any]] = field(default_factory=list)  # and their rows
    counts: Counter[Any] = field(default_factory=Counter)  # every unexpected value, first seen first
    broken: list[Broken] = field(default_factory=list)  # every failing row, in row order
    hashes: list[np.ndarray] = field(default_factory=list)  # uniqueness: one array per row group


@dataclass(frozen=True)
class Broken:
    """A row that breaks a rule: what the quarantine lists (``order_no`` may still need looking up)."""

    rule: Rule
    row: int  # its number in the file
    order_id: str | None
    order_no: str | None
    line_id: str | None
    value: str | None  # as received


@dataclass(frozen=True)
class Scan:
    names: tuple[str, ...]  # the file's columns
    rows: int
    tallies: tuple[_Tally, ...]  # one per rule of the suite, in its order
    numbers: dict[str, str | None]  # order id -> order number, for the ids asked for


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


class _Group:
    """One row group's columns, each decoded once for all the rules that read it."""

    def __init__(self, table: pa.Table, suite: Suite) -> None:
        self.table = table
        self.suite = suite
        self._decoded: dict[str, tuple[pa.Array, list[Decimal | None]]] = {}

    def raw(self, column: str) -> pa.Array:
        return self.table.column(column).combine_chunks()

    def decimals(self, column: str) -> tuple[pa.Array, list[Decimal | None]]:
        """Each row's index into the column's distinct values (null for a null), and each distinct
        value as a number: the text is parsed once per distinct value, not once per row."""
        if column not in self._decoded:
            import pyarrow.compute as pc

            encoded = pc.dictionary_encode(self.raw(column))
            self._decoded[column] = (encoded.indices, [decimal(v) for v in encoded.dictionary.to_pylist()])
        return self._decoded[column]

    def typed(self, column: str, value: Any) -> Any:
        """A raw value as validate gives it to the rules: a number in a decimal column, else as staged."""
        return decimal(value) if column in self.suite.decimal_columns else value

    def keys(self, column: str) -> list[Any]:
        """Every row's typed value (for uniqueness)."""
        if column in self.suite.decimal_columns:
            indices, numbers = self.decimals(column)
            return [None if i is None else numbers[i] for i in indices.to_pylist()]
        return self.raw(column).to_pylist()


def _mask(per_value: list[bool], indices: pa.Array) -> pa.Array:
    """Per row, the flag of its distinct value (false for a null row)."""
    import pyarrow.compute as pc

    flags = pc.take(bool_array(per_value), indices)
    return pc.and_kleene(flags, pc.is_valid(flags))  # fill_null(flags, False) without an Arrow scalar


def _failing(rule: Rule, group: _Group) -> tuple[pa.Array, int]:
    """The rows of the group that break ``rule`` (a boolean array) and how many rows are not null."""
    import pyarrow.compute as pc

    column = rule.column
    rows = group.table.num_rows
    if column in group.suite.decimal_columns:
        indices, numbers = group.decimals(column)
        parsed = _mask([n is not None for n in numbers], indices)
        nonnull = int(pc.sum(parsed).as_py() or 0)
        if rule.type == NOT_NULL:
            return pc.invert(parsed), nonnull
        return _mask([n is not None and rule.bad(n) for n in numbers], indices), nonnull
    nulls = pc.is_null(group.raw(column), nan_is_null=True)
    return nulls, rows - int(pc.sum(nulls).as_py() or 0)


def _record(
    rule: Rule, tally: _Tally, group: _Group, positions: list[int], row_numbers: list[int], keys: SourceKeys
) -> None:
    """Count the failing rows at ``positions`` of the group, rows ``row_numbers`` of the file."""
    picked = group.table.take(index_array(positions))
    values = {name: picked.column(name).to_pylist() for name in picked.column_names}
    index_columns = group.suite.index_columns
    empty = [None] * len(positions)
    for i, row_number in enumerate(row_numbers):
        raw = values[rule.column][i]
        value = group.typed(rule.column, raw)
        tally.unexpected_count += 1
        tally.counts[value] += 1
        if len(tally.partial) < PARTIAL:
            tally.partial.append(value)
            index = {rule.column: value, ROW: row_number}
            index.update({c: group.typed(c, values[c][i]) for c in index_columns})
            tally.partial_index.append(index)
        tally.broken.append(
            Broken(
                rule,
                row_number,
                _text(values.get(keys.order, empty)[i]),
                _text(values.get(keys.number, empty)[i]),
                _text(values.get(keys.line, empty)[i]),
                _text(raw),
            )
        )


def _hashes(keys: list[Any]) -> np.ndarray:
    import numpy as np

    return np.fromiter((_NULL_HASH if k is None else hash(k) for k in keys), dtype=np.int64, count=len(keys))


def _settle_unique(
    rule: Rule, tally: _Tally, parquet: Any, columns: list[str], starts: list[int], suite: Suite, keys: SourceKeys
) -> None:
    """Find the rows whose value repeats: rows with repeated hashes, compared on their exact values."""
    import numpy as np

    if not tally.hashes:
        return
    every = np.concatenate(tally.hashes)
    tally.hashes = []
    known = np.sort(every[every != _NULL_HASH])
    repeated = np.unique(known[1:][known[1:] == known[:-1]])
    if not repeated.size:
        return
    positions = np.flatnonzero(np.isin(every, repeated))
    del every, known
    groups = np.searchsorted(np.asarray(starts), positions, side="right") - 1
    candidates: list[tuple[int, _Group, list[int], list[Any]]] = []
    for number in np.unique(groups).tolist():
        local = (positions[groups == number] - starts[number]).tolist()
        table = parquet.read_row_group(number, columns=columns, use_threads=False).take(index_array(local))
        group = _Group(table, suite)
        candidates.append((number, group, local, group.keys(rule.column)))
    seen = Counter(key for *_, values in candidates for key in values if key is not None)
    for number, group, local, values in candidates:
        failing = [i for i, key in enumerate(values) if key is not None and seen[key] > 1]
        if failing:  # the group holds only the candidates: row i is row local[i] of row group `number`
            _record(rule, tally, group, failing, [starts[number] + local[i] for i in failing], keys)


def _check(rules: Sequence[Rule], tallies: Sequence[_Tally], group: _Group, first_row: int, keys: SourceKeys) -> None:
    """Run every rule over one row group, whose first row is row ``first_row`` of the file."""
    import pyarrow.compute as pc

    for rule, tally in zip(rules, tallies, strict=True):
        tally.element_count += group.table.num_rows
        if rule.type == UNIQUE:
            values = group.keys(rule.column)
            tally.hashes.append(_hashes(values))
            tally.nonnull_count += sum(v is not None for v in values)
            continue
        failing, nonnull = _failing(rule, group)
        tally.nonnull_count += nonnull
        positions = pc.indices_nonzero(failing).to_pylist()
        if positions:
            _record(rule, tally, group, positions, [first_row + p for p in positions], keys)


def _columns(suite: Suite | None, names: list[str], keys: SourceKeys, path: StoragePath) -> list[str]:
    """The file's columns the rules and the report read, in file order; a column a rule or
    ``meta.index_columns`` names that the file lacks fails the suite (GX raises on it too)."""
    if suite is None:
        return []
    wanted = {r.column for r in suite.rules} | set(suite.index_columns)
    missing = sorted(wanted - set(names))
    if missing:
        raise ValidationSetupError(f"suite {suite.name}: {path.name} has no column {', '.join(missing)}")
    wanted |= {keys.order, keys.number, keys.line}
    return [n for n in names if n in wanted]


def scan(path: StoragePath, suite: Suite | None, keys: SourceKeys, lookup: set[str] | None = None) -> Scan:
    """Run ``suite`` (None: no rules) over the staged file at ``path`` one row group at a time, and
    find the order numbers of the order ids in ``lookup``."""
    import pyarrow.parquet as pq

    rules = suite.rules if suite is not None else ()
    tallies = tuple(_Tally() for _ in rules)
    numbers: dict[str, str | None] = {}
    with path.open("rb") as handle:
        parquet = pq.ParquetFile(handle)
        names = parquet.schema_arrow.names
        columns = _columns(suite, names, keys, path)
        looking = bool(lookup) and keys.order in names and keys.number in names
        if looking:
            columns = [n for n in names if n in {*columns, keys.order, keys.number}]
        if not rules and not looking:  # the row count is in the footer
            return Scan(tuple(names), parquet.metadata.num_rows, tallies, numbers)
        starts: list[int] = []
        rows = 0
        for number in range(parquet.num_row_groups):
            table = parquet.read_row_group(number, columns=columns, use_threads=False)
            starts.append(rows)
            if suite is not None:
                _check(rules, tallies, _Group(table, suite), rows, keys)
            if looking and lookup:
                found = zip(table.column(keys.order).to_pylist(), table.column(keys.number).to_pylist(), strict=True)
                numbers.update({str(i): _text(n) for i, n in found if i is not None and str(i) in lookup})
            rows += table.num_rows
            del table
        if suite is not None:
            for rule, tally in zip(rules, tallies, strict=True):
                if rule.type == UNIQUE:
                    _settle_unique(rule, tally, parquet, columns, starts, suite, keys)
    return Scan(tuple(names), rows, tallies, numbers)


# -- GX's result form --------------------------------------------------------------------------------


def jsonable(value: Any) -> Any:
    """A value for the results JSON: numbers read as Decimal become exact text (JSON numbers for
    the suite's own integral arguments, as GX writes them), containers recursively."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else str(value)
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def _value(value: Any) -> Any:
    """An unexpected value in a result: a Decimal as its exact text (GX writes a float)."""
    return str(value) if isinstance(value, Decimal) else value


def rule_result(rule: Rule, tally: _Tally, suite: Suite, batch_id: str) -> dict[str, Any]:
    """GX's ``ExpectationValidationResult`` JSON for ``rule`` (result_format SUMMARY, with
    ``unexpected_index_column_names``), the way GX's ``_format_map_output`` builds it."""
    element, unexpected = tally.element_count, tally.unexpected_count
    skip_missing = rule.type == NOT_NULL  # GX counts no missing values for this one
    missing = element - tally.nonnull_count
    missing_percent = total = nonmissing = None
    if element > 0:
        total = unexpected / element * 100
        if skip_missing:
            nonmissing = total
        else:
            missing_percent = missing / element * 100
            nonmissing = unexpected / tally.nonnull_count * 100 if tally.nonnull_count > 0 else None
    result: dict[str, Any] = {
        "element_count": element,
        "unexpected_count": unexpected,
        "unexpected_percent": nonmissing,
        "partial_unexpected_list": [_value(v) for v in tally.partial],
        "unexpected_index_column_names": [ROW, *suite.index_columns],
    }
    if not skip_missing:
        result |= {
            "missing_count": missing,
            "missing_percent": missing_percent,
            "unexpected_percent_total": total,
            "unexpected_percent_nonmissing": nonmissing,
        }
    common = sorted(tally.counts.most_common(PARTIAL), key=lambda pair: (-pair[1], pair[0]))
    result["partial_unexpected_counts"] = [{"value": _value(v), "count": c} for v, c in common]
    result["partial_unexpected_index_list"] = [{k: _value(v) for k, v in row.items()} for row in tally.partial_index]
    return {
        "success": unexpected == 0,
        "expectation_config": {
            "type": rule.type,
            "kwargs": {"batch_id": batch_id, **jsonable(dict(rule.kwargs))},
            "meta": jsonable(dict(rule.meta)),
            "id": rule.id,
            "severity": "critical",
        },
        "result": result,
        "meta": {},
        "exception_info": {"raised_exception": False, "exception_traceback": None, "exception_message": None},
    }


def suite_result(suite: Suite, results: list[dict[str, Any]], meta: dict[str, Any]) -> dict[str, Any]:
    """GX's ``ExpectationSuiteValidationResult`` JSON around the rules' results."""
    successful = sum(1 for r in results if r["success"])
    return {
        "success": successful == len(results),
        "results": results,
        "suite_name": suite.name,
        "suite_parameters": {},
        "statistics": {
            "evaluated_expectations": len(results),
            "successful_expectations": successful,
            "unsuccessful_expectations": len(results) - successful,
            "success_percent": successful / len(results) * 100 if results else None,
        },
        "meta": meta,
        "id": None,
    }
