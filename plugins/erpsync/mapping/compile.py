"""Compile a scheme's target mapping into a bill builder: the one place each mapping row is handled.

Every row of the user's table lands in exactly one of four places:

* a **structural** row (``SubHeadEntity`` object, ``SubHeadEntity.FEntity`` = the entry collection);
* a **request option** (``FormId``, ``Operation``, ``IsAutoSubmitAndAudit``, ``IsVerifyBaseDataField``,
  ``SubSystemId``): the document lists them among the entry fields, the API reads them from the
  request, so they go there;
* a **header** or **sub-head** field of the Model;
* an **entry** field, built once per line of the entry collection. ``FEntity`` is placed at the top
  level of the Model as the real API expects, wherever the table draws it.

Templates resolve ``{{field}}`` against the order, ``{{list.field}}`` against the current line inside
entries; in header fields a line placeholder gives the distinct non-empty values of the order's lines
joined with "," (the way WDT itself joins ``src_tids`` of merged orders). Empty source values and WDT's
zero datetime ``0000-00-00 00:00:00`` are NULL; a field whose value is NULL is not sent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from erpsync.mapping.maps import PREFIX as MAPS_PREFIX
from erpsync.mapping.maps import ValueMap, load_maps
from erpsync.mapping.values import Constant, Template, Value, compile_value
from erpsync.scheme import (
    Collection,
    FormField,
    MappingRow,
    Problem,
    RequestOptionDef,
    Scheme,
    SchemeError,
    SourceApi,
    TargetForm,
)

Record = Mapping[str, Any]

_NULL_TEXTS = frozenset({"", "0000-00-00 00:00:00", "0000-00-00"})
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}( \d{2}:\d{2}:\d{2})?$")
_TRUE = frozenset({"true", "1"})
_FALSE = frozenset({"false", "0"})


class MappingError(ValueError):
    """A bill that cannot be built: names the target field and the problem."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _null(value: Any) -> str | None:
    if value is None:
        return None
    text = value if type(value) is str else str(value)
    return None if text.strip() in _NULL_TEXTS else text


def _shape(rule: FieldRule, value: Any) -> Any:
    """The JSON value Kingdee reads for a field of this kind; None means "do not send"."""
    if value is None or (isinstance(value, str) and value.strip() in _NULL_TEXTS):
        return None
    return _SHAPERS.get(rule.field.kind, _shape_unknown)(rule.field, value)


# One shaper per field kind, for a value that is not NULL; the build path looks each up once per rule.


def _plain_text(value: Any) -> str:
    return str(value).strip() if not isinstance(value, bool) else str(value).lower()


def _shape_bool(field: FormField, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise MappingError(field.key, f"expected true or false, got {value!r}")


def _shape_decimal(field: FormField, value: Any) -> str:
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except InvalidOperation:
        raise MappingError(field.key, f"not a decimal number: {value!r}") from None
    if not number.is_finite():
        raise MappingError(field.key, f"not a finite number: {value!r}")
    return format(number.normalize(), "f") if number else "0"


def _shape_int(field: FormField, value: Any) -> int:
    try:
        return int(str(value))
    except ValueError:
        raise MappingError(field.key, f"not an integer: {value!r}") from None


def _shape_date(field: FormField, value: Any) -> str:
    text = _plain_text(value)
    if not _DATE.match(text):
        raise MappingError(field.key, f"not a date (yyyy-MM-dd[ HH:mm:ss]): {value!r}")
    return text


def _shape_basedata(field: FormField, value: Any) -> dict[str, str]:
    return {field.lookup: _plain_text(value)}


def _shape_lot(field: FormField, value: Any) -> dict[str, str]:
    return {"FNumber": _plain_text(value)}


def _shape_text(field: FormField, value: Any) -> str:
    return _plain_text(value)


def _shape_unknown(field: FormField, value: Any) -> Any:
    raise MappingError(field.key, f"unknown field kind {field.kind!r} in the form definition")


_SHAPERS = {
    "bool": _shape_bool,
    "decimal": _shape_decimal,
    "int": _shape_int,
    "date": _shape_date,
    "basedata": _shape_basedata,
    "lot": _shape_lot,
    "text": _shape_text,
    "enum": _shape_text,
}


@dataclass(frozen=True)
class FieldRule:
    field: FormField
    value: Value
    row: MappingRow

    def apply(self, resolve: Any, target: dict[str, Any], now: datetime | None = None) -> None:
        try:
            raw = self.value.evaluate(resolve, now)
        except ValueError as exc:  # an expression that fails on this record's data
            raise MappingError(self.field.key, str(exc)) from None
        shaped = _shape(self, raw)
        if shaped is not None:
            target[self.field.key] = shaped


@dataclass(frozen=True)
class RequestSpec:
    """What the load step needs besides the bills: the form, the service and the request options."""

    form_id: str
    service: str
    options: Mapping[str, Any]
    base_data: Mapping[str, str]  # field key -> base-data form, for the check before posting (may be empty)


@dataclass(frozen=True)
class Bill:
    bill_no: str
    model: dict[str, Any]


@dataclass(frozen=True)
class BillMapping:
    form: TargetForm
    bill_key: str
    header: tuple[FieldRule, ...]
    subheads: Mapping[str, tuple[FieldRule, ...]]
    entry_entity: str
    entry_collection: Collection
    entry: tuple[FieldRule, ...]
    request: RequestSpec
    line_list_key: str
    maps: Mapping[str, ValueMap]

    def build(self, order: Record, lines: Sequence[Record], now: datetime | None = None) -> Bill:
        """One Kingdee Model for one source order and its lines (in the order given); ``now`` is the
        run's window end, the time NOW()/CURDATE() give in ``_function`` expressions."""
        builder = self.__dict__.get("_builder")
        if builder is None:
            builder = _Builder(self)
            object.__setattr__(self, "_builder", builder)  # derived from the rules alone: frozen all the same
        return builder.build(order, lines, now)

    def source_columns(self) -> tuple[set[str], set[str]]:
        """The order columns and the line columns the rules read (a value map's key field included)."""
        orders: set[str] = set()
        lines: set[str] = set()

        def add(name: str) -> None:
            if name.startswith(MAPS_PREFIX + "."):
                add(self.maps[name.split(".")[1]].key)
            elif "." not in name:
                orders.add(name)
            else:
                collection, field = name.split(".", 1)
                lines.add(self.line_field(collection, field))

        for rules in (self.header, *self.subheads.values(), self.entry):
            for rule in rules:
                for name in rule.value.placeholders:
                    add(name)
        return orders, lines

    def line_field(self, collection: str, name: str) -> str:
        if collection == self.entry_collection.name:
            return self.entry_collection.aliases.get(name, name)
        return name

    def resolver(self, order: Record, lines: Sequence[Record], line: Record | None = None) -> Any:
        """``resolve(name)`` as ``build`` uses it: for the header (``line`` None) or for one line."""
        return _HeaderContext(order, lines, self) if line is None else _EntryContext(order, line, self)


def _joined(lines: Sequence[Record], field: str) -> str | None:
    """A line field in a header: its distinct non-empty values, in order, joined as WDT joins src_tids."""
    values = [v for v in (_null(line.get(field)) for line in lines) if v is not None]
    return ",".join(dict.fromkeys(values)) or None


class _HeaderContext:
    def __init__(self, order: Record, lines: Sequence[Record], mapping: BillMapping) -> None:
        self.order, self.lines, self.mapping = order, lines, mapping

    def __call__(self, name: str) -> str | None:
        if name.startswith(MAPS_PREFIX + "."):
            return _mapped(self, name)
        if "." not in name:
            return _null(self.order.get(name))
        collection, field = name.split(".", 1)
        return _joined(self.lines, self.mapping.line_field(collection, field))


class _EntryContext:
    def __init__(self, order: Record, line: Record, mapping: BillMapping) -> None:
        self.order, self.line, self.mapping = order, line, mapping

    def __call__(self, name: str) -> str | None:
        if name.startswith(MAPS_PREFIX + "."):
            return _mapped(self, name)
        if "." not in name:
            return _null(self.order.get(name))
        collection, field = name.split(".", 1)
        return _null(self.line.get(self.mapping.line_field(collection, field)))


def _mapped(context: _HeaderContext | _EntryContext, name: str) -> str | None:
    return _map_value(context.mapping.maps, name, context)


def _map_value(maps: Mapping[str, ValueMap], name: str, resolve: Any) -> str | None:
    """``maps.<map>.<column>``: the map's value for the record's key field, read with ``resolve``
    (MapMiss when the map has no row for it)."""
    _, table, column = name.split(".")
    value_map = maps[table]
    return value_map.lookup(resolve(value_map.key), column)


# ``build``'s steps: ``(field key, step, argument)``; ``step(argument, texts, now)`` gives the shaped
# value (None: not sent) or raises MappingError. ``texts``: placeholder name -> source text or None.
# Steps are module-level functions and plain data: a BillMapping pickles as before (as its expressions do).

_CACHE_LIMIT = 4096  # results kept per cache; a full cache is emptied, so memory stays flat


def _constant(shaped: Any, texts: dict[str, str | None], now: datetime | None) -> Any:
    return shaped


def _fresh_dict(shaped: dict[str, str], texts: dict[str, str | None], now: datetime | None) -> dict[str, str]:
    return dict(shaped)  # bills never share a mutable part


def _failing(error: tuple[str, str], texts: dict[str, str | None], now: datetime | None) -> Any:
    raise MappingError(*error)


# A text in ``texts`` is a str that is none of _NULL_TEXTS (nor is a join of them): _shape's NULL test
# is done, and _plain_text(text) is text.strip().


def _placeholder(arg: tuple[str, FormField, Any], texts: dict[str, str | None], now: datetime | None) -> Any:
    name, field, shaper = arg
    text = texts[name]
    return None if text is None else shaper(field, text)


def _placeholder_text(name: str, texts: dict[str, str | None], now: datetime | None) -> str | None:
    text = texts[name]
    return None if text is None else text.strip()


def _placeholder_reference(
    arg: tuple[str, str], texts: dict[str, str | None], now: datetime | None
) -> dict[str, str] | None:
    name, lookup = arg  # basedata {lookup: number}, lot {"FNumber": number}
    text = texts[name]
    return None if text is None else {lookup: text.strip()}


def _placeholder_decimal(
    arg: tuple[str, FormField, dict[str, str]], texts: dict[str, str | None], now: datetime | None
) -> Any:
    name, field, cache = arg
    text = texts[name]
    if text is None:
        return None
    shaped = cache.get(text)
    if shaped is None:
        shaped = _shape_decimal(field, text)
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        cache[text] = shaped
    return shaped


def _evaluated(
    arg: tuple[FieldRule, tuple[str, ...], bool, dict[Any, Any], Mapping[str, ValueMap]],
    texts: dict[str, str | None],
    now: datetime | None,
) -> Any:
    rule, leaves, uses_now, cache, maps = arg
    key: tuple[str | datetime | None, ...] = tuple([texts[name] for name in leaves])
    if uses_now:
        key += (now,)
    outcome = cache.get(key)
    if outcome is None:
        outcome = _outcome(rule, texts, now, maps)
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        cache[key] = outcome
    shaped, error = outcome
    if error is not None:
        raise MappingError(rule.field.key, error)
    return dict(shaped) if type(shaped) is dict else shaped


def _outcome(
    rule: FieldRule, texts: dict[str, str | None], now: datetime | None, maps: Mapping[str, ValueMap]
) -> tuple[Any, str | None]:
    """``FieldRule.apply``'s result on these source texts as (shaped value, None) or (None, the error's message)."""

    def resolve(name: str) -> str | None:
        return _map_value(maps, name, resolve) if name.startswith(MAPS_PREFIX + ".") else texts[name]

    target: dict[str, Any] = {}
    try:
        rule.apply(resolve, target, now)
    except MappingError as exc:
        return None, exc.message
    return target.get(rule.field.key), None


class _Builder:
    """What ``BillMapping.build`` runs, decided once per mapping instead of once per order and line.

    An empty value is no step; a constant is its shaped value; a lone ``{{placeholder}}`` is a look-up
    and its kind's shaper (decimals cached by text); anything else (text around placeholders,
    ``_function``, value maps) is evaluated as ``FieldRule.apply`` does, cached by the texts of the
    source fields it reads (and ``now`` if it reads the time), the only inputs of its result.
    Placeholder texts are read once per order and once per line. Steps run in rule order, so the
    bill, and the error of an order that cannot be built, are those of rule-by-rule evaluation.
    """

    def __init__(self, mapping: BillMapping) -> None:
        from erpsync.mapping.values import Constant, Empty, Function, Template

        self._mapping = mapping
        self._order_names: dict[str, None] = {}
        self._joins: dict[str, str] = {}  # header: line placeholder -> line field, values joined
        self._line_names: dict[str, str] = {}  # entries: line placeholder -> line field
        decimals: dict[str, str] = {}

        def step(rule: FieldRule, header: bool) -> tuple[str, Any, Any] | None:
            value, field, key = rule.value, rule.field, rule.field.key
            if isinstance(value, Empty):
                return None
            if isinstance(value, Constant):
                shaped, error = _outcome(rule, {}, None, mapping.maps)
                if error is not None:
                    return key, _failing, (key, error)
                if shaped is None:
                    return None
                return (key, _fresh_dict, shaped) if type(shaped) is dict else (key, _constant, shaped)
            lone = value.parts[0] if isinstance(value, Template) and len(value.parts) == 1 else None
            if lone is not None and lone[0] and not lone[1].startswith(MAPS_PREFIX + "."):
                (name,) = self._leaves(lone[1], header)
                if field.kind == "decimal":
                    return key, _placeholder_decimal, (name, field, decimals)
                if field.kind in ("text", "enum"):
                    return key, _placeholder_text, name
                if field.kind in ("basedata", "lot"):
                    return key, _placeholder_reference, (name, field.lookup if field.kind == "basedata" else "FNumber")
                return key, _placeholder, (name, field, _SHAPERS.get(field.kind, _shape_unknown))
            leaves = tuple(dict.fromkeys(leaf for name in value.placeholders for leaf in self._leaves(name, header)))
            uses_now = isinstance(value, Function) and value.expression.uses_now
            return key, _evaluated, (rule, leaves, uses_now, {}, mapping.maps)

        def steps(rules: tuple[FieldRule, ...], header: bool) -> tuple[tuple[str, Any, Any], ...]:
            return tuple(s for s in (step(rule, header) for rule in rules) if s is not None)

        self.header = steps(mapping.header, True)
        self.subheads = tuple((entity, steps(rules, True)) for entity, rules in mapping.subheads.items())
        self.entry = steps(mapping.entry, False)
        self.order_names = tuple(self._order_names)
        self.joins = tuple(self._joins.items())
        self.line_names = tuple(self._line_names.items())
        self.entry_entity, self.bill_key = mapping.entry_entity, mapping.bill_key
        del self._mapping, self._order_names, self._joins, self._line_names

    def _leaves(self, name: str, header: bool) -> tuple[str, ...]:
        """The source placeholders behind ``name`` (a value map's key field), noted for reading."""
        if name.startswith(MAPS_PREFIX + "."):
            return self._leaves(self._mapping.maps[name.split(".")[1]].key, header)
        if "." not in name:
            self._order_names[name] = None
        else:
            collection, field = name.split(".", 1)
            (self._joins if header else self._line_names)[name] = self._mapping.line_field(collection, field)
        return (name,)

    def build(self, order: Record, lines: Sequence[Record], now: datetime | None) -> Bill:
        get = order.get
        texts = {name: _null(get(name)) for name in self.order_names}
        header_texts = texts
        if self.joins:
            header_texts = dict(texts)
            for name, field in self.joins:
                header_texts[name] = _joined(lines, field)
        model: dict[str, Any] = {}
        for key, run, arg in self.header:
            value = run(arg, header_texts, now)
            if value is not None:
                model[key] = value
        for entity, steps in self.subheads:
            sub: dict[str, Any] = {}
            for key, run, arg in steps:
                value = run(arg, header_texts, now)
                if value is not None:
                    sub[key] = value
            if sub:
                model[entity] = sub
        entries = []
        line_names, entry_steps = self.line_names, self.entry
        for line in lines:
            line_texts = dict(texts)
            for name, field in line_names:
                value = line.get(field)  # _null, inlined: this runs for every field of every line
                if value is not None:
                    if type(value) is not str:
                        value = str(value)
                    if value.strip() in _NULL_TEXTS:
                        value = None
                line_texts[name] = value
            entry: dict[str, Any] = {}
            for key, run, arg in entry_steps:
                value = run(arg, line_texts, now)
                if value is not None:
                    entry[key] = value
            entries.append(entry)
        if not entries:
            raise MappingError(self.entry_entity, "the order has no lines")
        model[self.entry_entity] = entries
        bill_no = model.get(self.bill_key)
        if not isinstance(bill_no, str) or not bill_no:
            raise MappingError(self.bill_key, "the bill number is empty")
        return Bill(bill_no, model)


_SERVICES = {"batchSave": "BatchSave"}  # target.api -> the WebAPI service (BatchSaveQuery: settings.load)
# Source types a field kind cannot take: a time is never a quantity, a quantity never a date.
_INCOMPATIBLE = {
    "datetime": {"decimal", "int", "bool", "lot"},
    "date": {"decimal", "int", "bool", "lot"},
    "decimal": {"date", "bool"},
    "int": {"date"},
}


class _RowProblem(Exception):
    """A problem of one mapping row; ``key`` is the row's key it is about (field or value)."""

    def __init__(self, message: str, key: str = "value") -> None:
        super().__init__(message)
        self.key = key


def _option_value(row: MappingRow, definition: RequestOptionDef) -> Any:
    if not isinstance(compile_value(row.value), Constant):
        raise _RowProblem(f"a request option takes a constant, got {row.value!r}")
    text = row.value.strip()
    if definition.kind == "bool":
        if text.lower() not in _TRUE | _FALSE:
            raise _RowProblem(f"expected true or false, got {row.value!r}")
        return text.lower() in _TRUE
    if definition.kind == "int":
        if not text.isdigit():
            raise _RowProblem(f"expected a whole number, got {row.value!r}")
        return int(text)
    if definition.values and text not in definition.values:
        raise _RowProblem(f"{row.value!r} is not supported; use one of {', '.join(definition.values)}")
    return text


def _source_type(name: str, api: SourceApi, collections: Mapping[str, Collection], maps: Mapping[str, ValueMap]) -> str:
    """The type of a placeholder's source field (raises ``_RowProblem`` for a name the source lacks)."""
    if name.startswith(MAPS_PREFIX + "."):
        parts = name.split(".")
        if len(parts) != 3:
            raise _RowProblem(f"{{{{{name}}}}}: write {{{{maps.<map>.<column>}}}}")
        table = maps.get(parts[1])
        if table is None:
            raise _RowProblem(
                f"{{{{{name}}}}}: no map {parts[1]!r} in include/maps/ (known: {', '.join(maps) or 'none'})"
            )
        if parts[2] not in table.columns:
            raise _RowProblem(
                f"{{{{{name}}}}}: map {parts[1]!r} has no column {parts[2]!r} ({', '.join(table.columns)})"
            )
        try:
            _source_type(table.key, api, collections, maps)
        except _RowProblem as exc:
            raise _RowProblem(f"map {parts[1]!r} key: {exc}") from None
        return "string"  # a map cell is text
    if "." not in name:
        if name not in api.order_fields:
            raise _RowProblem(f"{{{{{name}}}}} is not a response field of {api.method}")
        return api.order_fields[name].type
    collection, field = name.split(".", 1)
    if collection in collections:
        field = collections[collection].aliases.get(field, field)
    elif collection != api.line_list_key:
        known = ", ".join([api.line_list_key, *collections])
        raise _RowProblem(f"{{{{{name}}}}} names no list of the order (known: {known})")
    if field not in api.line_fields:
        raise _RowProblem(f"{{{{{name}}}}}: '{field}' is not a line field of {api.method}")
    return api.line_fields[field].type


def _check_rule(
    rule: FieldRule, api: SourceApi, collections: Mapping[str, Collection], maps: Mapping[str, ValueMap]
) -> None:
    """Names the source has, a source type the field can take, a constant the field can send."""
    types = {name: _source_type(name, api, collections, maps) for name in rule.value.placeholders}
    if isinstance(rule.value, Template) and len(rule.value.parts) == 1 and types:
        ((name, source_type),) = types.items()
        if rule.field.kind in _INCOMPATIBLE.get(source_type, ()):
            raise _RowProblem(f"{{{{{name}}}}} is a {source_type} field; {rule.field.key} takes a {rule.field.kind}")
    if isinstance(rule.value, Constant):
        try:
            rule.apply(lambda name: None, {}, None)
        except MappingError as exc:
            raise _RowProblem(f"the constant cannot be sent: {exc.message}") from None


def compile_mapping(scheme: Scheme) -> BillMapping:
    """Check every mapping row of the scheme and compile it; a ``SchemeError`` lists every bad row
    with its file:line."""
    target, api = scheme.target, scheme.source.api
    form = target.form
    entry_entity = form.entry_entity
    header: list[FieldRule] = []
    subheads: dict[str, list[FieldRule]] = {k: [] for k, kind in form.entities.items() if kind == "subhead"}
    entry: list[FieldRule] = []
    options: dict[str, Any] = {}
    entry_collection: Collection | None = None
    seen: dict[str, str] = {}
    problems: list[Problem] = []
    try:
        maps = load_maps(scheme.path.parent.parent / "maps")  # include/schemes/x.yaml -> include/maps/
    except ValueError as exc:
        raise SchemeError(str(exc)) from None

    for index, row in enumerate(target.mapping):
        try:
            parts = row.field.split(".")
            key, parents = parts[-1], parts[:-1]
            for parent in parents:
                if parent not in form.entities:
                    raise _RowProblem(f"'{parent}' is not an entity of {form.form_id}", "field")

            option = form.option(key)
            if option is not None:
                if row.value.strip():  # an option left empty keeps Kingdee's default
                    name, definition = option
                    value = _option_value(row, definition)
                    if name == "FormId" and value != form.form_id:
                        raise _RowProblem(f"FormId {value!r} does not match the form {form.form_id}")
                    if name not in ("FormId", "Operation"):  # Operation: Save, the only value allowed: BatchSave
                        options[name] = value
                continue

            if key in form.entities:  # structural row: the entity itself
                kind = form.entities[key]
                if row.type != ("array" if kind == "entry" else "object"):
                    raise _RowProblem(
                        f"{key} is an {kind} entity: its type is {'array' if kind == 'entry' else 'object'}", "type"
                    )
                if kind == "entry":
                    name = row.value.strip()
                    if name in target.collections:
                        entry_collection = target.collections[name]
                    elif name == api.line_list_key:
                        entry_collection = Collection(name, name, {})
                    else:
                        raise _RowProblem(f"the entry list {name!r} is neither a collection nor {api.line_list_key!r}")
                elif row.value.strip():
                    raise _RowProblem(f"an object row takes no value, got {row.value!r}")
                continue

            field = form.field(key)
            if field is None:
                raise _RowProblem(
                    f"{form.form_id} has no field {key!r}; add it to {form.path.relative_to(form.path.parents[1])}",
                    "field",
                )
            if row.type in ("object", "array"):
                raise _RowProblem(
                    f"{field.key} is a {field.kind} field, not an entity: its type cannot be {row.type}", "type"
                )
            declared = entry_entity if entry_entity in parents else (parents[-1] if parents else "header")
            if field.entity != declared:
                raise _RowProblem(f"{field.key} belongs to {field.entity}, not to {declared}", "field")
            if field.key in seen:
                raise _RowProblem(f"{field.key} is mapped twice (also by {seen[field.key]})", "field")
            seen[field.key] = row.field
            try:
                value = compile_value(row.value)
            except ValueError as exc:
                raise _RowProblem(str(exc)) from None
            rule = FieldRule(field, value, row)
            _check_rule(rule, api, target.collections, maps)
        except _RowProblem as exc:
            location = ("target", "mapping", index, exc.key)
            problems.append(scheme.problem(location, str(exc), f"target.mapping[{index}] ({row.field} {row.label})"))
            continue
        if field.entity == "header":
            header.append(rule)
        elif field.entity == entry_entity:
            entry.append(rule)
        else:
            subheads[field.entity].append(rule)

    bill_field = form.field(target.bill_key)
    if bill_field is None or bill_field.entity != "header":
        problems.append(
            scheme.problem(("target", "bill_key"), f"{target.bill_key} must be a header field of {form.form_id}")
        )
    elif bill_field.key not in seen:
        problems.append(scheme.problem(("target", "bill_key"), f"{target.bill_key} is not mapped"))
    if problems:
        raise SchemeError(problems)
    assert bill_field is not None  # else a problem above
    if entry_collection is None:
        entry_collection = Collection(api.line_list_key, api.line_list_key, {})
    return BillMapping(
        form=form,
        bill_key=bill_field.key,
        header=tuple(header),
        subheads={k: tuple(v) for k, v in subheads.items()},
        entry_entity=entry_entity,
        entry_collection=entry_collection,
        entry=tuple(entry),
        request=RequestSpec(
            form.form_id,
            _SERVICES[target.api],
            options,
            {f.key: f.form for f in form.fields.values() if f.form and target.check_base_data},
        ),
        line_list_key=api.line_list_key,
        maps=maps,
    )
