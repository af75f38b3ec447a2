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
from erpsync.mapping.values import Constant, Value, compile_value
from erpsync.scheme import Collection, FormField, MappingRow, Scheme, SchemeError, SourceApi, TargetForm

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
    text = str(value)
    return None if text.strip() in _NULL_TEXTS else text


def _shape(rule: FieldRule, value: Any) -> Any:
    """The JSON value Kingdee reads for a field of this kind; None means "do not send"."""
    if value is None or (isinstance(value, str) and value.strip() in _NULL_TEXTS):
        return None
    kind = rule.field.kind
    if kind == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
        raise MappingError(rule.field.key, f"expected true or false, got {value!r}")
    if kind == "decimal":
        try:
            number = value if isinstance(value, Decimal) else Decimal(str(value).strip())
        except InvalidOperation:
            raise MappingError(rule.field.key, f"not a decimal number: {value!r}") from None
        if not number.is_finite():
            raise MappingError(rule.field.key, f"not a finite number: {value!r}")
        return format(number.normalize(), "f") if number else "0"
    if kind == "int":
        try:
            return int(str(value))
        except ValueError:
            raise MappingError(rule.field.key, f"not an integer: {value!r}") from None
    text = str(value).strip() if not isinstance(value, bool) else str(value).lower()
    if kind == "date":
        if not _DATE.match(text):
            raise MappingError(rule.field.key, f"not a date (yyyy-MM-dd[ HH:mm:ss]): {value!r}")
        return text
    if kind == "basedata":
        return {rule.field.lookup: text}
    if kind == "lot":
        return {"FNumber": text}
    if kind in ("text", "enum"):
        return text
    raise MappingError(rule.field.key, f"unknown field kind {kind!r} in the form definition")


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
        header_resolve = _HeaderContext(order, lines, self)
        model: dict[str, Any] = {}
        for rule in self.header:
            rule.apply(header_resolve, model, now)
        for entity, rules in self.subheads.items():
            sub: dict[str, Any] = {}
            for rule in rules:
                rule.apply(header_resolve, sub, now)
            if sub:
                model[entity] = sub
        entries = []
        for line in lines:
            entry: dict[str, Any] = {}
            resolve = _EntryContext(order, line, self)
            for rule in self.entry:
                rule.apply(resolve, entry, now)
            entries.append(entry)
        if not entries:
            raise MappingError(self.entry_entity, "the order has no lines")
        model[self.entry_entity] = entries
        bill_no = model.get(self.bill_key)
        if not isinstance(bill_no, str) or not bill_no:
            raise MappingError(self.bill_key, "the bill number is empty")
        return Bill(bill_no, model)

    def line_field(self, collection: str, name: str) -> str:
        if collection == self.entry_collection.name:
            return self.entry_collection.aliases.get(name, name)
        return name


class _HeaderContext:
    def __init__(self, order: Record, lines: Sequence[Record], mapping: BillMapping) -> None:
        self.order, self.lines, self.mapping = order, lines, mapping

    def __call__(self, name: str) -> str | None:
        if name.startswith(MAPS_PREFIX + "."):
            return _mapped(self, name)
        if "." not in name:
            return _null(self.order.get(name))
        collection, field = name.split(".", 1)
        field = self.mapping.line_field(collection, field)
        values = [v for v in (_null(line.get(field)) for line in self.lines) if v is not None]
        return ",".join(dict.fromkeys(values)) or None


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
    """``maps.<map>.<column>``: the map's value for the record's key field (MapMiss when it has no row)."""
    _, table, column = name.split(".")
    value_map = context.mapping.maps[table]
    return value_map.lookup(context(value_map.key), column)


def _option_value(row: MappingRow, definition: Mapping[str, Any], where: str) -> Any:
    if not isinstance(compile_value(row.value), Constant):
        raise SchemeError(f"{where}: a request option takes a constant, got {row.value!r}")
    text = row.value.strip()
    if definition.get("kind") == "bool":
        if text.lower() not in _TRUE | _FALSE:
            raise SchemeError(f"{where}: expected true or false, got {row.value!r}")
        return text.lower() in _TRUE
    if definition.get("kind") == "int":
        if not text.isdigit():
            raise SchemeError(f"{where}: expected a whole number, got {row.value!r}")
        return int(text)
    allowed = definition.get("values")
    if allowed and text not in allowed:
        raise SchemeError(f"{where}: {row.value!r} is not supported; use one of {', '.join(allowed)}")
    return text


def _check_placeholders(
    value: Value, where: str, api: SourceApi, collections: Mapping[str, Collection], maps: Mapping[str, ValueMap]
) -> None:
    for name in value.placeholders:
        _check_name(name, where, api, collections, maps)


def _check_name(name: str, where: str, api: SourceApi, collections: Mapping[str, Collection], maps: Mapping[str, ValueMap]) -> None:
    if name.startswith(MAPS_PREFIX + "."):
        parts = name.split(".")
        if len(parts) != 3:
            raise SchemeError(f"{where}: {{{{{name}}}}}: write {{{{maps.<map>.<column>}}}}")
        table = maps.get(parts[1])
        if table is None:
            known = ", ".join(maps) or "none"
            raise SchemeError(f"{where}: {{{{{name}}}}}: no map {parts[1]!r} in include/maps/ (known: {known})")
        if parts[2] not in table.columns:
            raise SchemeError(f"{where}: {{{{{name}}}}}: map {parts[1]!r} has no column {parts[2]!r} ({', '.join(table.columns)})")
        _check_name(table.key, f"{where}: map {parts[1]!r} key", api, collections, maps)
        return
    if "." not in name:
        if name not in api.order_fields:
            raise SchemeError(f"{where}: {{{{{name}}}}} is not a response field of {api.method}")
        return
    collection, field = name.split(".", 1)
    if collection in collections:
        field = collections[collection].aliases.get(field, field)
    elif collection != api.line_list_key:
        known = ", ".join([api.line_list_key, *collections])
        raise SchemeError(f"{where}: {{{{{name}}}}} names no list of the order (known: {known})")
    if field not in api.line_fields:
        raise SchemeError(f"{where}: {{{{{name}}}}}: '{field}' is not a line field of {api.method}")


def compile_mapping(scheme: Scheme) -> BillMapping:
    """Check every mapping row of the scheme and compile it; errors name the row."""
    target, api = scheme.target, scheme.source.api
    form = target.form
    entry_entity = form.entry_entity
    header: list[FieldRule] = []
    subheads: dict[str, list[FieldRule]] = {k: [] for k, kind in form.entities.items() if kind == "subhead"}
    entry: list[FieldRule] = []
    options: dict[str, Any] = {}
    entry_collection: Collection | None = None
    seen: dict[str, str] = {}
    try:
        maps = load_maps(scheme.path.parent.parent / "maps")  # include/schemes/x.yaml -> include/maps/
    except ValueError as exc:
        raise SchemeError(str(exc)) from None

    for index, row in enumerate(target.mapping):
        where = f"{scheme.path}: target.mapping[{index}] ({row.field} {row.label})"
        parts = row.field.split(".")
        key, parents = parts[-1], parts[:-1]
        for parent in parents:
            if parent not in form.entities:
                raise SchemeError(f"{where}: '{parent}' is not an entity of {form.form_id}")

        option = form.option(key)
        if option is not None:
            if row.value.strip():  # an option left empty keeps Kingdee's default
                name, definition = option
                value = _option_value(row, definition, where)
                if name == "FormId" and value != form.form_id:
                    raise SchemeError(f"{where}: FormId {value!r} does not match the form {form.form_id}")
                if name not in ("FormId", "Operation"):  # Operation: Save, the only value allowed: BatchSave
                    options[name] = value
            continue

        if key in form.entities:  # structural row: the entity itself
            if form.entities[key] == "entry":
                name = row.value.strip()
                if name in target.collections:
                    entry_collection = target.collections[name]
                elif name == api.line_list_key:
                    entry_collection = Collection(name, name, {})
                else:
                    raise SchemeError(f"{where}: the entry list {name!r} is neither a collection nor {api.line_list_key!r}")
            elif row.value.strip():
                raise SchemeError(f"{where}: an object row takes no value, got {row.value!r}")
            continue

        field = form.field(key)
        if field is None:
            raise SchemeError(
                f"{where}: {form.form_id} has no field {key!r}; add it to include/apis/kingdee.{form.form_id}.yaml"
            )
        declared = entry_entity if entry_entity in parents else (parents[-1] if parents else "header")
        if field.entity != declared:
            raise SchemeError(f"{where}: {field.key} belongs to {field.entity}, not to {declared}")
        if field.key in seen:
            raise SchemeError(f"{where}: {field.key} is mapped twice (also by {seen[field.key]})")
        seen[field.key] = row.field
        try:
            value = compile_value(row.value)
        except ValueError as exc:
            raise SchemeError(f"{where}: {exc}") from None
        _check_placeholders(value, where, api, target.collections, maps)
        rule = FieldRule(field, value, row)
        if field.entity == "header":
            header.append(rule)
        elif field.entity == entry_entity:
            entry.append(rule)
        else:
            subheads[field.entity].append(rule)

    if entry_collection is None:
        entry_collection = Collection(api.line_list_key, api.line_list_key, {})
    if target.bill_key not in seen:
        raise SchemeError(f"{scheme.path}: target.bill_key {target.bill_key} is not mapped")
    if form.field(target.bill_key) is None or form.field(target.bill_key).entity != "header":
        raise SchemeError(f"{scheme.path}: target.bill_key {target.bill_key} must be a header field")
    return BillMapping(
        form=form,
        bill_key=form.field(target.bill_key).key,
        header=tuple(header),
        subheads={k: tuple(v) for k, v in subheads.items()},
        entry_entity=entry_entity,
        entry_collection=entry_collection,
        entry=tuple(entry),
        request=RequestSpec(form.form_id, "BatchSave", options, {
            f.key: f.form for f in form.fields.values() if f.form and target.check_base_data
        }),
        line_list_key=api.line_list_key,
        maps=maps,
    )


