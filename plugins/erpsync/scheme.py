"""Schemes: the user's integration document as data (source API, target mapping, settings).

A scheme file in ``include/schemes/`` holds the three steps of the document; the API definitions it
names live in ``include/apis/``. Loading checks everything a run would trip over later, so a malformed
scheme fails when the DAG is parsed with an error that names the file, the step and the row.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

INCLUDE_DIR = Path(__file__).resolve().parents[2] / "include"


class SchemeError(ValueError):
    """A scheme or API definition that cannot be run as written."""


@dataclass(frozen=True)
class FieldDef:
    key: str
    label: str
    type: str


@dataclass(frozen=True)
class SourceApi:
    """A WDT query API: its request parameters and response fields (include/apis/<method>.yaml)."""

    method: str
    label: str
    list_key: str
    total_key: str
    order_key: str
    line_list_key: str
    line_key: str
    max_window_days: int
    max_page_size: int
    request: Mapping[str, FieldDef]
    order_fields: Mapping[str, FieldDef]
    line_fields: Mapping[str, FieldDef]


@dataclass(frozen=True)
class FormField:
    key: str
    entity: str  # "header", a sub-head entity key, or the entry entity key
    kind: str
    label: str
    lookup: str = "FNumber"
    form: str = ""  # basedata: the form its numbers live in ("" = not checked before posting)


@dataclass(frozen=True)
class TargetForm:
    """A Kingdee form as Save/BatchSave reads it (include/apis/kingdee.<form>.yaml)."""

    form_id: str
    label: str
    entities: Mapping[str, str]  # entity key -> "subhead" | "entry"
    fields: Mapping[str, FormField]  # lower-cased key -> field
    request_options: Mapping[str, Mapping[str, Any]]  # lower-cased option -> definition

    @property
    def entry_entity(self) -> str:
        return next(key for key, kind in self.entities.items() if kind == "entry")

    def field(self, key: str) -> FormField | None:
        return self.fields.get(key.lower())

    def option(self, key: str) -> tuple[str, Mapping[str, Any]] | None:
        for name, definition in self.request_options.items():
            if name.lower() == key.lower():
                return name, definition
        return None


@dataclass(frozen=True)
class RequestParam:
    field: str
    label: str
    type: str
    value: str
    example: str = ""


@dataclass(frozen=True)
class MappingRow:
    field: str
    label: str
    type: str
    value: str


@dataclass(frozen=True)
class Collection:
    """A named list the mapping iterates, drawn from a list of the source order."""

    name: str
    source: str
    aliases: Mapping[str, str]


# A run's `filters` value: one document number or code. Letters (CJK included), digits and - _ . : #;
# nothing that could name a path or change a query's meaning.
FILTER_VALUE = r"^[\w.:#-]{1,64}$"


@dataclass(frozen=True)
class Source:
    system: str
    connection: str
    api: SourceApi
    label: str
    request: tuple[RequestParam, ...]
    page_size: int
    start_page: int
    by_modified: bool = False  # send is_by_modified=1: the window is on last-modified time (spec §4.1)
    lookback: timedelta = timedelta(0)  # each run also re-reads this much before its window

    @property
    def filter_fields(self) -> tuple[str, ...]:
        """Request parameters a run may set (``filters``): those the scheme leaves empty."""
        return tuple(p.field for p in self.request if not p.value.strip())

    def check_filters(self, filters: Mapping[str, Any]) -> dict[str, str]:
        """The run's filters as request parameters, or a ``SchemeError`` naming the bad one."""
        checked: dict[str, str] = {}
        for key, value in filters.items():
            if key not in self.filter_fields:
                raise SchemeError(
                    f"filter {key!r} is not allowed: a run may set only {', '.join(self.filter_fields)} "
                    "(the request parameters the scheme leaves empty)"
                )
            if not isinstance(value, str) or not re.fullmatch(FILTER_VALUE, value):
                raise SchemeError(f"filter {key}={value!r} is not a document number or code (letters, digits, - _ . : #; 1-64)")
            checked[key] = value
        return checked


@dataclass(frozen=True)
class Target:
    system: str
    connection: str
    api: str
    label: str
    form: TargetForm
    bill_key: str
    check_base_data: bool  # look the bills' base-data numbers up in Kingdee before posting
    collections: Mapping[str, Collection]
    mapping: tuple[MappingRow, ...]


ON_PROBLEM = ("fail", "warn")


@dataclass(frozen=True)
class LoadSettings:
    """``settings.load``: how bills reach Kingdee."""

    chunk_size: int = 100  # bills per BatchSave call
    concurrency: int = 1  # BatchSave calls in flight at once within one load task
    rounds: int = 5  # look-up-and-resend rounds after unknown outcomes, per chunk
    on_problem: str = "fail"  # a valid order that did not reach Kingdee: fail (red run) or warn (green)
    asynchronous: bool = False  # BatchSaveQuery + QueryAsyncResult polling instead of BatchSave


@dataclass(frozen=True)
class Settings:
    cron: str
    timezone: str
    retries: int
    retry_delay_seconds: int
    enabled: bool
    preconditions: tuple[str, ...]
    max_active_runs: int
    load: LoadSettings


@dataclass(frozen=True)
class Scheme:
    name: str
    dag_id: str
    description: str
    tags: tuple[str, ...]
    source: Source
    target: Target
    settings: Settings
    path: Path


class _Reader:
    """Reads one YAML mapping and names the file and location in every error."""

    def __init__(self, data: Any, where: str) -> None:
        if not isinstance(data, Mapping):
            raise SchemeError(f"{where}: expected a mapping, got {type(data).__name__}")
        self.data = data
        self.where = where

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
        if key not in self.data or self.data[key] is None:
            if default is ...:
                raise SchemeError(f"{self.where}: missing '{key}'")
            return default
        value = self.data[key]
        if kind is str and isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)  # YAML reads 110 or 21 as numbers; the document's values are text
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            expected = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
            raise SchemeError(f"{self.where}: '{key}' must be {expected}, got {value!r}")
        return value

    def sub(self, key: str) -> _Reader:
        return _Reader(self.get(key, Mapping), f"{self.where}.{key}")

    def items(self, key: str) -> list[_Reader]:
        rows = self.get(key, list)
        return [_Reader(row, f"{self.where}.{key}[{i}]") for i, row in enumerate(rows)]


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SchemeError(f"{path}: file not found") from None
    except yaml.YAMLError as exc:
        raise SchemeError(f"{path}: not valid YAML: {exc}") from None


def _field_defs(reader: _Reader, key: str) -> dict[str, FieldDef]:
    defs = reader.sub(key)
    return {
        name: FieldDef(name, str(d.get("label", str, "")), d.get("type", str))
        for name, d in ((n, _Reader(v, f"{defs.where}.{n}")) for n, v in defs.data.items())
    }


def load_source_api(path: Path) -> SourceApi:
    r = _Reader(_read_yaml(path), str(path))
    return SourceApi(
        method=r.get("method", str),
        label=r.get("label", str, ""),
        list_key=r.get("list_key", str),
        total_key=r.get("total_key", str),
        order_key=r.get("order_key", str),
        line_list_key=r.get("line_list_key", str),
        line_key=r.get("line_key", str),
        max_window_days=r.get("max_window_days", int),
        max_page_size=r.get("max_page_size", int),
        request=_field_defs(r, "request"),
        order_fields=_field_defs(r, "order_fields"),
        line_fields=_field_defs(r, "line_fields"),
    )


def load_target_form(path: Path) -> TargetForm:
    r = _Reader(_read_yaml(path), str(path))
    entities = {name: _Reader(v, f"{path}.entities.{name}").get("kind", str) for name, v in r.sub("entities").data.items()}
    if list(entities.values()).count("entry") != 1:
        raise SchemeError(f"{path}: entities must name exactly one entry entity")
    fields: dict[str, FormField] = {}
    groups = r.sub("fields")
    for group, members in groups.data.items():
        entity = "header" if group == "header" else group
        if entity != "header" and entity not in entities:
            raise SchemeError(f"{path}.fields.{group}: not an entity declared under 'entities'")
        for key, spec in _Reader(members, f"{groups.where}.{group}").data.items():
            d = _Reader(spec, f"{groups.where}.{group}.{key}")
            fields[key.lower()] = FormField(
                key=key,
                entity=entity,
                kind=d.get("kind", str),
                label=d.get("label", str, ""),
                lookup=d.get("lookup", str, "FNumber"),
                form=d.get("form", str, ""),
            )
    options = {name: dict(spec) for name, spec in r.sub("request_options").data.items()}
    return TargetForm(r.get("form_id", str), r.get("label", str, ""), entities, fields, options)


def _request_params(reader: _Reader, api: SourceApi) -> tuple[RequestParam, ...]:
    params = []
    for row in reader.items("request"):
        param = RequestParam(
            field=row.get("field", str),
            label=row.get("label", str, ""),
            type=row.get("type", str, "string"),
            value=row.get("value", str, ""),
            example=row.get("example", str, ""),
        )
        if param.field not in api.request:
            raise SchemeError(f"{row.where}: '{param.field}' is not a request parameter of {api.method}")
        params.append(param)
    return tuple(params)


def _mapping_rows(reader: _Reader) -> tuple[MappingRow, ...]:
    rows = []
    for row in reader.items("mapping"):
        rows.append(
            MappingRow(
                field=row.get("field", str),
                label=row.get("label", str, ""),
                type=row.get("type", str, "string"),
                value=row.get("value", str, ""),
            )
        )
    return tuple(rows)


def _collections(reader: _Reader, api: SourceApi) -> dict[str, Collection]:
    found = {}
    block = reader.get("collections", Mapping, {})
    for name, spec in block.items():
        d = _Reader(spec, f"{reader.where}.collections.{name}")
        source = d.get("from", str)
        if source != api.line_list_key:
            raise SchemeError(f"{d.where}: 'from' must be {api.line_list_key!r}, the order's line list")
        aliases = {str(k): str(v) for k, v in d.get("aliases", Mapping, {}).items()}
        for alias, field in aliases.items():
            if field not in api.line_fields:
                raise SchemeError(f"{d.where}.aliases.{alias}: '{field}' is not a line field of {api.method}")
        found[name] = Collection(name, source, aliases)
    return found


def load_scheme(path: Path, include_dir: Path = INCLUDE_DIR) -> Scheme:
    """Read and check a scheme file; the mapping itself is checked when it is compiled."""
    path = Path(path)
    r = _Reader(_read_yaml(path), str(path))
    src, tgt, st = r.sub("source"), r.sub("target"), r.sub("settings")

    api = load_source_api(include_dir / "apis" / f"{src.get('api', str)}.yaml")
    pagination = src.sub("pagination")
    page_size = pagination.get("page_size", int)
    if not 1 <= page_size <= api.max_page_size:
        raise SchemeError(f"{pagination.where}.page_size: must be 1..{api.max_page_size}, got {page_size}")
    source = Source(
        system=src.get("system", str),
        connection=src.get("connection", str),
        api=api,
        label=src.get("label", str, ""),
        request=_request_params(src, api),
        page_size=page_size,
        start_page=pagination.get("start_page", int),
        by_modified=src.get("by_modified", bool, False),
        lookback=_duration(src.get("lookback", str, "0"), f"{src.where}.lookback"),
    )

    form = load_target_form(include_dir / "apis" / f"kingdee.{tgt.get('form', str)}.yaml")
    target = Target(
        system=tgt.get("system", str),
        connection=tgt.get("connection", str),
        api=tgt.get("api", str),
        label=tgt.get("label", str, ""),
        form=form,
        bill_key=tgt.get("bill_key", str),
        check_base_data=tgt.get("check_base_data", bool, True),
        collections=_collections(tgt, api),
        mapping=_mapping_rows(tgt),
    )

    schedule = st.sub("schedule")
    load = _load_settings(st.sub("load"))
    retries = st.get("retries", int)
    if retries < 0:
        raise SchemeError(f"{st.where}.retries: must not be negative, got {retries}")
    settings = Settings(
        cron=schedule.get("cron", str),
        timezone=schedule.get("timezone", str, "Asia/Shanghai"),
        retries=retries,
        retry_delay_seconds=st.get("retry_delay_seconds", int, 60),
        enabled=st.get("enabled", bool),
        preconditions=tuple(str(p) for p in st.get("preconditions", list, [])),
        max_active_runs=st.get("max_active_runs", int, 1),
        load=load,
    )
    _check_cron(settings.cron, f"{schedule.where}.cron")
    return Scheme(
        name=r.get("name", str),
        dag_id=r.get("dag_id", str),
        description=r.get("description", str, ""),
        tags=tuple(str(t) for t in r.get("tags", list, [])),
        source=source,
        target=target,
        settings=settings,
        path=path,
    )


_DURATION = re.compile(r"^\s*(\d+)\s*([mhd]?)\s*$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def _duration(text: str, where: str) -> timedelta:
    """``30m``, ``2h``, ``2d`` or ``0``."""
    match = _DURATION.match(text)
    if match is None or (match.group(2) == "" and match.group(1) != "0"):
        raise SchemeError(f"{where}: expected a duration such as 30m, 2h or 2d, got {text!r}")
    return timedelta(**{_UNITS.get(match.group(2), "minutes"): int(match.group(1))})


def _load_settings(reader: _Reader) -> LoadSettings:
    default = LoadSettings()
    numbers = {
        key: reader.get(key, int, getattr(default, key)) for key in ("chunk_size", "concurrency", "rounds")
    }
    for key, value in numbers.items():
        if value < 1:
            raise SchemeError(f"{reader.where}.{key}: must be at least 1, got {value}")
    on_problem = reader.get("on_problem", str, default.on_problem)
    if on_problem not in ON_PROBLEM:
        raise SchemeError(f"{reader.where}.on_problem: must be one of {', '.join(ON_PROBLEM)}, got {on_problem!r}")
    return LoadSettings(
        **numbers, on_problem=on_problem, asynchronous=reader.get("asynchronous", bool, default.asynchronous)
    )


def _check_cron(expression: str, where: str) -> None:
    from croniter import croniter

    if not croniter.is_valid(expression):
        raise SchemeError(f"{where}: not a valid cron expression: {expression!r}")


def scheme_paths(include_dir: Path = INCLUDE_DIR) -> list[Path]:
    return sorted((include_dir / "schemes").glob("*.yaml"))
