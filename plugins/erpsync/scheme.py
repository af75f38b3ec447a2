"""Schemes: the user's integration document as data (source API, target mapping, settings).

A scheme file in ``include/schemes/`` holds the three steps of the document; the API definitions it
names live in ``include/apis/``. Every file is read by a strict pydantic model: an unknown key
(``retry_delay_second``, ``max_active_run``) is an error, not a silent default; every scalar is read
as the text written (``03`` stays ``"03"``, see ``yaml_text``); each error names ``file:line``, the
path of the key and what was expected. ``include/schemes/scheme.schema.json`` is the JSON Schema of
these models, so editors complete and check scheme files (``python -m erpsync schema`` writes it).
"""

from __future__ import annotations

import difflib
import re
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, WithJsonSchema, field_validator

from erpsync.windows import SHANGHAI
from erpsync.yaml_text import Location, YamlText, YamlTextError, read_yaml_text

INCLUDE_DIR = Path(__file__).resolve().parents[2] / "include"
SCHEMA_FILE = "scheme.schema.json"  # in include/schemes/


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a scheme or definition file, where it is written."""

    path: Path
    line: int
    where: str  # the key path, e.g. settings.load.concurrency or target.mapping[3] (FDate 日期)
    message: str

    def __str__(self) -> str:
        return (
            f"{self.path}:{self.line}: {self.where}: {self.message}"
            if self.where
            else f"{self.path}:{self.line}: {self.message}"
        )


class SchemeError(ValueError):
    """A scheme or API definition that cannot be run as written; ``problems`` lists each one."""

    def __init__(self, message: str | Sequence[Problem]) -> None:
        self.problems: tuple[Problem, ...] = () if isinstance(message, str) else tuple(message)
        super().__init__(message if isinstance(message, str) else "\n".join(map(str, self.problems)))


# ---------------------------------------------------------------------------------------------------
# The models: what a file may say. Text where the document has text; numbers and flags where a
# setting is one (pydantic reads "3" and "true" written in YAML as 3 and True there).


def _none_as_empty(value: Any) -> Any:
    return "" if value is None else value


Text = Annotated[str, BeforeValidator(_none_as_empty)]  # `value:` left empty means ""
Name = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$")]
ConnectionId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]+$", description="An Airflow connection id")]
FieldType = Literal["string", "int", "decimal", "datetime", "date", "bool"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FieldDef(_Model):
    """A request parameter or response field of a source API."""

    label: Text = ""
    type: FieldType


class SearchDef(_Model):
    """What the order search (the UI's 订单查询) matches and shows, besides the order's id and number."""

    numbers: list[str] = Field(default_factory=list, description="Order fields holding other numbers of the order")
    number_lists: list[str] = Field(default_factory=list, description="Order fields holding comma-separated numbers")
    line_numbers: list[str] = Field(default_factory=list, description="Line fields holding an original order number")
    shown: list[str] = Field(default_factory=list, description="Order fields shown beside each window of the order")


class SourceApiFile(_Model):
    """``include/apis/<method>.yaml``: a WDT query API, its request and response fields."""

    method: str
    label: Text = ""
    list_key: str = Field(description="The response list of orders")
    total_key: str = Field(description="The response's total row count")
    order_key: str = Field(description="The order's id: the key of a staged order, carried by its lines")
    number_key: str = Field(description="The order's document number, the one people search for")
    number_param: str = Field(
        default="", description="The request parameter that asks for one order by its number (empty: none)"
    )
    line_list_key: str = Field(description="The order's list of lines")
    line_key: str = Field(description="A line's id; lines are ordered by it")
    max_window_days: int = Field(ge=1)
    max_page_size: int = Field(ge=1)
    window_inclusive_end: bool = Field(
        description="true: the API's end time is inclusive, so a window [start, end) is sent as end - 1 s"
    )
    time_format: str = Field(
        default="YYYY-MM-DD HH:mm:ss", description="How the API writes a window's times (pendulum tokens)"
    )
    timezone: str = Field(default="Asia/Shanghai", description="The zone of the API's times")
    by_modified_params: dict[str, str] = Field(
        default_factory=dict,
        description="Request parameters that put the window on last-modified time (sent when the scheme's "
        "source.by_modified is true)",
    )
    always_by_modified: bool = Field(
        default=False, description="true: the API's window is always on last-modified time (no parameter switches it)"
    )
    page_no_param: str = Field(default="page_no", description="The request parameter of the page number")
    page_size_param: str = Field(default="page_size", description="The request parameter of the page size")
    search: SearchDef = SearchDef()
    request: dict[str, FieldDef]
    order_fields: dict[str, FieldDef]
    line_fields: dict[str, FieldDef]


FormKind = Literal["basedata", "lot", "text", "enum", "date", "decimal", "int", "bool"]


class FormFieldDef(_Model):
    kind: FormKind
    label: Text = ""
    lookup: str = Field(default="FNumber", description="The key a base-data reference is sent under")
    form: str = Field(default="", description="basedata: the form its numbers live in, checked before posting")


class EntityDef(_Model):
    kind: Literal["subhead", "entry"]
    label: Text = ""


class RequestOptionDef(_Model):
    kind: Literal["text", "bool", "int"]
    values: list[str] = Field(default_factory=list, description="The only values allowed (empty: any)")


class ReconcileFields(_Model):
    """What a reconciliation (对账) compares bill by bill: header fields, then entry fields."""

    date: str = Field(description="The header field of the bill's business date")
    party: str = Field(description="The header field of the customer or supplier")
    material: str = Field(description="The entry field of the material")
    warehouse: str = Field(description="The entry field of the warehouse (stock)")
    quantity: str = Field(description="The entry field of the quantity")
    amount: str = Field(description="The entry field of the tax-inclusive amount")
    price: str = Field(
        default="",
        description="The entry field of the tax-inclusive price: where the mapping sends no amount, the target "
        "computes it as round(quantity x price, 2), and so does the reconciliation",
    )

    @property
    def header(self) -> dict[str, str]:
        return {"date": self.date, "party": self.party}

    @property
    def lines(self) -> dict[str, str]:
        return {
            "material": self.material,
            "warehouse": self.warehouse,
            "quantity": self.quantity,
            "amount": self.amount,
        }


class TargetFormFile(_Model):
    """``include/apis/kingdee.<form>.yaml``: a Kingdee form as Save/BatchSave reads it."""

    form_id: str
    label: Text = ""
    entities: dict[str, EntityDef]
    fields: dict[str, dict[str, FormFieldDef]] = Field(description="header, or an entity key -> field key -> field")
    request_options: dict[str, RequestOptionDef]
    reconcile: ReconcileFields | None = Field(default=None, description="What 对账 compares (none: not reconciled)")


class Pagination(_Model):
    page_size: int = Field(ge=1, description="{{PAGINATION_PAGE_SIZE}}: rows per page")
    start_page: int = Field(ge=0, description="{{PAGINATION_START_PAGE}}: the first page's number")


class RequestParam(_Model):
    """A row of the document's 请求参数 table."""

    field: str
    label: Text = ""
    type: FieldType = "string"
    value: Text = Field(
        default="", description="A constant, {{WINDOW_START}}/{{WINDOW_END}}/{{PAGINATION_…}}, or empty: not sent"
    )
    example: Text = Field(default="", description="The document's sample value; a run may pass it as a filter")


MappingType = Literal["string", "int", "decimal", "number", "datetime", "date", "bool", "object", "array"]


class MappingRow(_Model):
    """A row of the document's Kingdee mapping: target field path, label, type and value."""

    field: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
    label: Text = ""
    type: MappingType = "string"
    value: Text = Field(
        default="",
        description="constant | {{field}} / {{list.field}} / {{maps.<map>.<column>}} | _function <expression> | empty",
    )


class CollectionDef(_Model):
    """A named list the mapping iterates, drawn from a list of the source order."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    source: str = Field(alias="from", description="The order's line list")
    aliases: dict[str, str] = Field(default_factory=dict, description="name used in the mapping -> line field")


_DURATION = re.compile(r"^\s*(\d+)\s*([mhd]?)\s*$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def _duration(text: Any) -> Any:
    """``30m``, ``2h``, ``2d`` or ``0``."""
    match = _DURATION.match(str(text))
    if match is None or (match.group(2) == "" and match.group(1) != "0"):
        raise ValueError(f"expected a duration such as 30m, 2h or 2d, got {text!r}")
    return timedelta(**{_UNITS.get(match.group(2), "minutes"): int(match.group(1))})


Duration = Annotated[
    timedelta,
    BeforeValidator(_duration),
    WithJsonSchema({"type": "string", "pattern": r"^\s*(0|\d+\s*[mhd])\s*$", "examples": ["0", "30m", "2h", "2d"]}),
]


class SourceSettings(_Model):
    system: Literal["wdt"] = Field(description="The source connector; its API definitions are include/apis/<api>.yaml")
    connection: ConnectionId
    api: str = Field(description="The API method, e.g. wdt.stockout.order.query.trade")
    label: Text = ""
    method: Literal["POST"] = "POST"
    pagination: Pagination
    by_modified: bool = Field(default=False, description="Send is_by_modified=1: the window is on last-modified time")
    lookback: Duration = Field(
        default="0", validate_default=True, description="Each run also re-reads this much before its window"
    )
    expectations: dict[Literal["orders", "lines"], Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")]] = Field(
        default_factory=dict,
        description="Great Expectations suites, include/expectations/<name>.json, run on the staged orders and lines",
    )
    request: list[RequestParam]


class RequirementDef(_Model):
    """A bill of another form that must be in the target before this scheme's bill may be saved (the
    return's original sale): a bill whose requirement is missing is held, with this reason, and is
    saved by a later run once the other bill is there."""

    form: str = Field(pattern=r"^[A-Za-z0-9_]+$", description="The form the required bill is in, e.g. SAL_OUTSTOCK")
    field: str = Field(
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="Its header field that holds the value, e.g. F_ora_Text_ysdh"
    )
    value: str = Field(
        pattern=r"^\{\{\s*[A-Za-z_][A-Za-z0-9_]*\s*\}\}$",
        description="The source order field whose value the required bill holds, e.g. {{tid}}",
    )
    list: bool = Field(default=False, description="true: the field holds several values joined with ','")
    label: Text = Field(default="", description="What the required bill is, for the held reason (原销售出库单)")

    @property
    def source_field(self) -> str:
        return self.value.strip()[2:-2].strip()


class TargetSettings(_Model):
    system: Literal["kingdee"] = Field(
        description="The target connector; its forms are include/apis/kingdee.<form>.yaml"
    )
    connection: ConnectionId
    api: Literal["batchSave"] = Field(
        description="Bills are sent with BatchSave (BatchSaveQuery when settings.load.asynchronous)"
    )
    label: Text = ""
    method: Literal["POST"] = "POST"
    form: str = Field(pattern=r"^[A-Za-z0-9_]+$", description="The Kingdee form id, e.g. SAL_OUTSTOCK")
    bill_key: str = Field(description="The header field that numbers a bill: one bill per number")
    check_base_data: bool = Field(
        default=True, description="Look the bills' base-data numbers up in Kingdee before posting"
    )
    requires: list[RequirementDef] = Field(
        default_factory=list, description="Bills of other forms that must be in the target first (a return's sale)"
    )
    collections: dict[str, CollectionDef] = Field(default_factory=dict)
    mapping: list[MappingRow]


def _valid_cron(value: str) -> str:
    from croniter import croniter

    if not croniter.is_valid(value):
        raise ValueError(f"not a valid cron expression: {value!r}")
    return value


class Schedule(_Model):
    cron: str = Field(description="传递时间: one run per window of this cron")
    timezone: str = Field(
        default=SHANGHAI, description="The zone of the cron, the windows, params without an offset and folder names"
    )

    _cron = field_validator("cron")(classmethod(lambda cls, value: _valid_cron(value)))

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        import pendulum

        try:
            pendulum.timezone(value)
        except Exception:  # pendulum raises its own InvalidTimezone
            raise ValueError(f"not a time zone: {value!r}") from None
        return value


class LoadSettings(_Model):
    """``settings.load``: how bills reach Kingdee."""

    chunk_size: int = Field(default=100, ge=1, description="Bills per BatchSave call")
    concurrency: int = Field(
        default=1, ge=1, description="BatchSave calls in flight at once; slots of the connection's pool"
    )
    rounds: int = Field(default=5, ge=1, description="Look-up-and-resend rounds after unknown outcomes, per chunk")
    on_problem: Literal["fail", "warn"] = Field(
        default="fail", description="An order that did not reach Kingdee: red run or warning"
    )
    asynchronous: bool = Field(
        default=False, description="BatchSaveQuery polled with QueryAsyncResult instead of BatchSave"
    )
    max_request_bytes: int = Field(
        default=4_000_000,
        ge=1000,
        description="Largest BatchSave request body, in bytes; a chunk is split to stay under it, and a bill that "
        "cannot is rejected unsent. The default stays under IIS/ASP.NET's default maxRequestLength (4 MB)",
    )


class ReconcileSettings(_Model):
    """``settings.reconcile``: the daily reconciliation (对账) of the scheme's documents against the target."""

    days: int = Field(default=7, ge=1, le=92, description="Days each daily run checks again, yesterday included")
    cron: str = Field(
        default="0 7 * * *", description="When the daily DAG <dag_id>_reconcile runs, in the scheme's zone"
    )
    date: str = Field(
        default="",
        description="The source field of a document's business date (empty: the one the mapping sends to the "
        "form's date field, e.g. consign_time)",
    )

    _cron = field_validator("cron")(classmethod(lambda cls, value: _valid_cron(value)))


class Settings(_Model):
    schedule: Schedule
    retries: int = Field(ge=0, description="重试次数: Airflow retries of each task")
    retry_delay_seconds: int = Field(default=60, ge=0)
    enabled: bool = Field(description="是否启动: false skips every run; new DAGs start paused")
    preconditions: list[str] = Field(
        default_factory=list,
        description="前置条件: dag_ids of other schemes whose windows must have loaded up to this window's end",
    )
    max_active_runs: int = Field(default=1, ge=1)
    load: LoadSettings = LoadSettings()
    alerts: list[ConnectionId] = Field(
        default_factory=list,
        description="Airflow connections of chat robots (DingTalk, WeCom, Feishu) told of a failed run or of "
        "orders that did not reach Kingdee",
    )
    reconcile: ReconcileSettings = ReconcileSettings()

    @property
    def cron(self) -> str:
        return self.schedule.cron

    @property
    def timezone(self) -> str:
        return self.schedule.timezone


class SchemeFile(_Model):
    """A scheme: the user's integration document in its three steps."""

    model_config = ConfigDict(extra="forbid", frozen=True, title="erpsync scheme")

    name: Name
    dag_id: Name
    description: Text = ""
    tags: list[str] = Field(default_factory=list)
    source: SourceSettings
    target: TargetSettings
    settings: Settings


def scheme_json_schema() -> dict[str, Any]:
    """The JSON Schema of scheme files, as published in include/schemes/scheme.schema.json."""
    schema = SchemeFile.model_json_schema(mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


# ---------------------------------------------------------------------------------------------------
# Resolved objects: a scheme with the definitions it names.


SourceApi = SourceApiFile


@dataclass(frozen=True)
class SourceKeys:
    """The columns that identify staged rows, named by the API definition (WDT: stockout_id, order_no,
    rec_id). Reports call them order_id, order_no and line_id whatever the API."""

    order: str  # the order's id, carried by its lines
    number: str  # the order's document number, the one people search for
    line: str  # a line's id

    @classmethod
    def of(cls, api: SourceApiFile) -> SourceKeys:
        return cls(api.order_key, api.number_key, api.line_key)


def _delegate(owner: Any, model: str, name: str) -> Any:
    """The resolved objects read through to the model they wrap (never for private names: copy/pickle)."""
    if name.startswith("_") or name == model:
        raise AttributeError(name)
    return getattr(object.__getattribute__(owner, model), name)


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
    """A Kingdee form as Save/BatchSave reads it."""

    form_id: str
    label: str
    entities: Mapping[str, str]  # entity key -> "subhead" | "entry"
    fields: Mapping[str, FormField]  # lower-cased key -> field
    request_options: Mapping[str, RequestOptionDef]
    path: Path
    reconcile: ReconcileFields | None = None

    @property
    def entry_entity(self) -> str:
        return next(key for key, kind in self.entities.items() if kind == "entry")

    def field(self, key: str) -> FormField | None:
        return self.fields.get(key.lower())

    def option(self, key: str) -> tuple[str, RequestOptionDef] | None:
        for name, definition in self.request_options.items():
            if name.lower() == key.lower():
                return name, definition
        return None


@dataclass(frozen=True)
class Collection:
    name: str
    source: str
    aliases: Mapping[str, str]


# A run's `filters` value: one document number or code. Letters (CJK included), digits and - _ . : #;
# nothing that could name a path or change a query's meaning.
FILTER_VALUE = r"^[\w.:#-]{1,64}$"


@dataclass(frozen=True)
class Source:
    settings: SourceSettings
    api: SourceApi
    suites: Mapping[str, Path]  # "orders"/"lines" -> the expectation suite file

    @property
    def keys(self) -> SourceKeys:
        return SourceKeys.of(self.api)

    def __getattr__(self, name: str) -> Any:  # connection, request, by_modified, lookback, …
        return _delegate(self, "settings", name)

    @property
    def page_size(self) -> int:
        return self.settings.pagination.page_size

    @property
    def start_page(self) -> int:
        return self.settings.pagination.start_page

    @property
    def filter_fields(self) -> tuple[str, ...]:
        """Request parameters a run may set (``filters``): those the scheme leaves empty."""
        return tuple(p.field for p in self.settings.request if not p.value.strip())

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
                raise SchemeError(
                    f"filter {key}={value!r} is not a document number or code (letters, digits, - _ . : #; 1-64)"
                )
            checked[key] = value
        return checked


@dataclass(frozen=True)
class Target:
    settings: TargetSettings
    form: TargetForm
    collections: Mapping[str, Collection]

    def __getattr__(self, name: str) -> Any:  # connection, api, bill_key, check_base_data, mapping, …
        return _delegate(self, "settings", name)


@dataclass(frozen=True)
class Scheme:
    file: SchemeFile
    source: Source
    target: Target
    path: Path
    text: YamlText = field(repr=False, compare=False)

    def __getattr__(self, name: str) -> Any:  # name, dag_id, description, tags, settings
        return _delegate(self, "file", name)

    def edited(self, key: str, value: Any) -> Scheme:
        """A copy with one setting changed, e.g. ``edited("source.pagination.page_size", 3)`` (not
        re-checked: for tests and benchmarks)."""

        def update(model: _M, parts: list[str]) -> _M:
            new = value if len(parts) == 1 else update(getattr(model, parts[0]), parts[1:])
            return model.model_copy(update={parts[0]: new})

        file = update(self.file, key.split("."))
        return Scheme(
            file,
            Source(file.source, self.source.api, self.source.suites),
            Target(file.target, self.target.form, self.target.collections),
            self.path,
            self.text,
        )

    def line_of(self, location: Location) -> int:
        return self.text.line_of(location)

    def problem(self, location: Location, message: str, where: str | None = None) -> Problem:
        return Problem(self.path, self.line_of(location), where if where is not None else dotted(location), message)


# ---------------------------------------------------------------------------------------------------
# Loading.


def dotted(location: Sequence[str | int]) -> str:
    """("target", "mapping", 3, "value") -> target.mapping[3].value"""
    text = ""
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _known_keys(model: type[BaseModel], location: Sequence[str | int]) -> list[str]:
    """The keys a mapping at ``location`` may have (for "did you mean")."""
    current: Any = model
    for part in location:
        origin = typing.get_origin(current)
        if origin in (list, dict):
            current = typing.get_args(current)[-1]
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)) or part not in current.model_fields:
            return []
        current = current.model_fields[part].annotation
        while typing.get_origin(current) is Annotated:
            current = typing.get_args(current)[0]
    while typing.get_origin(current) is Annotated:
        current = typing.get_args(current)[0]
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [f.alias or name for name, f in current.model_fields.items()]
    return []


def _problems(exc: ValidationError, text: YamlText, model: type[BaseModel]) -> list[Problem]:
    problems = []
    for error in exc.errors(include_url=False):
        location = tuple(error["loc"])
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            known = _known_keys(model, location[:-1])
            close = difflib.get_close_matches(str(location[-1]), known, n=1)
            message = f"unknown key{f'; did you mean {close[0]!r}?' if close else ''} (allowed: {', '.join(known)})"
        elif error["type"] == "missing":
            message = "missing"
        elif error["type"] not in ("value_error",):
            message = f"{message}, got {error['input']!r}" if not isinstance(error["input"], (dict, list)) else message
        problems.append(
            Problem(text.path, text.line_of(location), dotted(location), message.removeprefix("Value error, "))
        )
    return sorted(problems, key=lambda p: p.line)


_M = typing.TypeVar("_M", bound=BaseModel)


def read_model(path: Path, model: type[_M]) -> tuple[_M, YamlText]:
    """Read ``path`` into ``model``; a ``SchemeError`` lists every problem with its file:line."""
    try:
        text = read_yaml_text(path)
    except YamlTextError as exc:
        raise SchemeError(str(exc)) from None
    if not isinstance(text.data, dict):
        raise SchemeError([Problem(path, 1, "", f"expected a mapping of keys, got {type(text.data).__name__}")])
    try:
        return model.model_validate(text.data), text
    except ValidationError as exc:
        raise SchemeError(_problems(exc, text, model)) from None


def load_source_api(path: Path) -> SourceApi:
    definition, text = read_model(path, SourceApiFile)
    problems = []
    for key, fields, where in (
        ("order_key", definition.order_fields, "order_fields"),
        ("number_key", definition.order_fields, "order_fields"),
        ("line_key", definition.line_fields, "line_fields"),
    ):
        if getattr(definition, key) not in fields:
            problems.append(
                Problem(path, text.line_of((key,)), key, f"{getattr(definition, key)!r} is not one of {where}")
            )
    for group in ("numbers", "number_lists", "shown"):
        for name in getattr(definition.search, group):
            if name not in definition.order_fields:
                problems.append(
                    Problem(
                        path, text.line_of(("search", group)), f"search.{group}", f"{name!r} is not one of order_fields"
                    )
                )
    for name in definition.search.line_numbers:
        if name not in definition.line_fields:
            problems.append(
                Problem(
                    path,
                    text.line_of(("search", "line_numbers")),
                    "search.line_numbers",
                    f"{name!r} is not one of line_fields",
                )
            )
    if definition.number_param and definition.number_param not in definition.request:
        problems.append(
            Problem(
                path,
                text.line_of(("number_param",)),
                "number_param",
                f"{definition.number_param!r} is not a request parameter",
            )
        )
    if problems:
        raise SchemeError(problems)
    return definition


def load_target_form(path: Path) -> TargetForm:
    definition, text = read_model(path, TargetFormFile)
    entities = {name: e.kind for name, e in definition.entities.items()}
    problems = []
    if list(entities.values()).count("entry") != 1:
        problems.append(Problem(path, text.line_of(("entities",)), "entities", "must name exactly one entry entity"))
    fields: dict[str, FormField] = {}
    for group, members in definition.fields.items():
        entity = "header" if group == "header" else group
        if entity != "header" and entity not in entities:
            problems.append(
                Problem(
                    path, text.line_of(("fields", group)), f"fields.{group}", "not an entity declared under 'entities'"
                )
            )
        for key, spec in members.items():
            fields[key.lower()] = FormField(key, entity, spec.kind, spec.label, spec.lookup, spec.form)
    if definition.reconcile is not None:
        entry = next((name for name, kind in entities.items() if kind == "entry"), "")
        for name, key in definition.reconcile.model_dump().items():
            found = fields.get(key.lower()) if key else None
            if key and (found is None or (found.entity == entry) != (name not in ("date", "party"))):
                where = "an entry field" if name not in ("date", "party") else "a header field"
                problems.append(
                    Problem(path, text.line_of(("reconcile", name)), f"reconcile.{name}", f"{key!r} is not {where}")
                )
    if problems:
        raise SchemeError(problems)
    return TargetForm(
        definition.form_id, definition.label, entities, fields, definition.request_options, path, definition.reconcile
    )


def _definition(load: Any, path: Path, scheme: YamlText, location: Location) -> Any:
    """A definition the scheme names; a missing file is the scheme's problem, at the naming key."""
    if not path.exists():
        raise SchemeError([Problem(scheme.path, scheme.line_of(location), dotted(location), f"{path}: file not found")])
    return load(path)


def load_scheme(path: Path, include_dir: Path = INCLUDE_DIR) -> Scheme:
    """Read and check a scheme file and the definitions it names; the mapping is checked when compiled."""
    path = Path(path)
    file, text = read_model(path, SchemeFile)
    problems: list[Problem] = []

    def problem(location: Location, message: str) -> None:
        problems.append(Problem(path, text.line_of(location), dotted(location), message))

    src, tgt = file.source, file.target
    if not src.api.startswith(f"{src.system}."):
        problem(("source", "api"), f"a {src.system} API's name starts with '{src.system}.'")
    api = _definition(load_source_api, include_dir / "apis" / f"{src.api}.yaml", text, ("source", "api"))
    if src.by_modified and not (api.by_modified_params or api.always_by_modified):
        problem(
            ("source", "by_modified"),
            f"{api.method} cannot window on last-modified time (its definition has no by_modified_params)",
        )
    if not src.by_modified and api.always_by_modified:
        problem(
            ("source", "by_modified"), f"{api.method} windows on last-modified time always; write by_modified: true"
        )
    if src.pagination.page_size > api.max_page_size:
        problem(
            ("source", "pagination", "page_size"), f"must be 1..{api.max_page_size}, got {src.pagination.page_size}"
        )
    for index, param in enumerate(src.request):
        if param.field not in api.request:
            problem(
                ("source", "request", index, "field"), f"'{param.field}' is not a request parameter of {api.method}"
            )

    suites: dict[str, Path] = {}
    for table, name in src.expectations.items():
        suites[table] = include_dir / "expectations" / f"{name}.json"
        if not suites[table].exists():
            problem(("source", "expectations", table), f"{suites[table]}: file not found")

    form = _definition(
        load_target_form, include_dir / "apis" / f"{tgt.system}.{tgt.form}.yaml", text, ("target", "form")
    )
    for index, requirement in enumerate(tgt.requires):
        if requirement.source_field not in api.order_fields:
            problem(
                ("target", "requires", index, "value"),
                f"'{requirement.source_field}' is not a response field of {api.method}",
            )
    collections = {}
    for name, spec in tgt.collections.items():
        if spec.source != api.line_list_key:
            problem(("target", "collections", name, "from"), f"must be {api.line_list_key!r}, the order's line list")
        for alias, line_field in spec.aliases.items():
            if line_field not in api.line_fields:
                problem(
                    ("target", "collections", name, "aliases", alias),
                    f"'{line_field}' is not a line field of {api.method}",
                )
        collections[name] = Collection(name, spec.source, dict(spec.aliases))
    for index, upstream in enumerate(file.settings.preconditions):
        if upstream == file.dag_id:
            problem(("settings", "preconditions", index), "a scheme cannot wait for itself")
    if problems:
        raise SchemeError(problems)
    return Scheme(file, Source(src, api, suites), Target(tgt, form, collections), path, text)


def scheme_paths(include_dir: Path = INCLUDE_DIR) -> list[Path]:
    return sorted((include_dir / "schemes").glob("*.yaml"))


def load_folder(include_dir: Path = INCLUDE_DIR) -> tuple[list[Scheme], list[Problem | str]]:
    """Every scheme of ``include_dir`` that loads, and the problems of all of them, the ones only the
    schemes together show (a dag_id twice, a precondition naming none) included."""
    schemes: list[Scheme] = []
    problems: list[Problem | str] = []
    for path in scheme_paths(include_dir):
        try:
            schemes.append(load_scheme(path, include_dir))
        except SchemeError as exc:  # one broken file must not hide the others' problems
            problems += list(exc.problems) or [str(exc)]
    return schemes, problems + cross_check(schemes)


def load_schemes(include_dir: Path = INCLUDE_DIR) -> list[Scheme]:
    """Every scheme of ``include_dir``, checked together; a ``SchemeError`` lists every problem."""
    schemes, problems = load_folder(include_dir)
    if problems:
        raise SchemeError("\n".join(map(str, problems)))
    return schemes


def cross_check(schemes: Sequence[Scheme]) -> list[Problem]:
    """What no scheme can see alone: a dag_id used twice, a precondition naming no scheme."""
    problems: list[Problem] = []
    owners: dict[str, Path] = {}
    for scheme in schemes:
        if scheme.dag_id in owners:
            problems.append(
                scheme.problem(("dag_id",), f"{scheme.dag_id!r} is also the dag_id of {owners[scheme.dag_id].name}")
            )
        owners.setdefault(scheme.dag_id, scheme.path)
    for scheme in schemes:
        for index, upstream in enumerate(scheme.settings.preconditions):
            if upstream not in owners:
                problems.append(
                    scheme.problem(
                        ("settings", "preconditions", index),
                        f"{upstream!r} is not the dag_id of a scheme in {scheme.path.parent} (known: {', '.join(owners)})",
                    )
                )
    return problems
