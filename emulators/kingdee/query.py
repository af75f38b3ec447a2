"""ExecuteBillQuery / BillQuery (spec §4.3) over the bill forms (SAL_OUTSTOCK, SAL_RETURNSTOCK,
STK_InStock) and the master-data forms.

Decisions ([INF]/[?] points of the spec):
- FieldKeys are matched case-insensitively. A bill form's keys are its metadata (``form.BillForm``),
  whatever the saved bills carry: header and sub-head field keys (no entity prefix), row field keys,
  ``<entry key>_FEntryID`` / ``<entry key>_FSeq`` (``FEntity_FEntryID``, ``FInStockEntry_FEntryId``), the
  other standard fields of its spec and the tenant's custom fields of that form (``forms.CustomFields``,
  by default ``F_ora_Text_ysdh`` and ``F_ora_Text_ckdh`` on SAL_OUTSTOCK), and ``<base-data key>.<key of
  the referenced form>`` such as ``FMaterialID.FNumber``, ``FMaterialID.FName``,
  ``FMaterialID.FIsBatchManage``, ``FLot.FNumber``, ``FReturnType.FDataValue``. Any other key (an ``F_…``
  key the tenant does not have included) answers MsgCode 9, in FieldKeys, FilterString and OrderString
  alike. Master forms know their own fields (``master``), FForbidStatus and, for organisation-controlled
  forms, FCreateOrgId/FUseOrgId included.
- A bare base-data key returns the internal id (0 when empty); ``.FNumber``/``.FName`` of an empty
  reference return null; empty text is ``""``; unset decimals 0; dates ``yyyy-MM-ddTHH:mm:ss`` or null.
- One row per entry row as soon as FieldKeys, FilterString or OrderString name a row field (the query
  joins the entry table); otherwise one row per bill. Default order FID, then FSeq (masters: id).
- FilterString as a string: ``=``, ``<>``/``!=``, ``>``, ``<``, ``>=``, ``<=``, ``[NOT] IN (…)``,
  ``[NOT] LIKE`` (``%``, ``_``, ``[…]``), ``IS [NOT] NULL``, ``BETWEEN … AND …``, ``AND``/``OR``/``NOT``,
  parentheses, ``'quoted'``/``N'quoted'`` strings (``''`` escapes a quote) and numbers. Text compares
  case-insensitively ignoring trailing blanks (SQL Server); a date field compares as a date
  (``FDate >= '2024-12-01'``); numbers compare as exact decimals.
- FilterString as an array of ``{Left, FieldName, Compare, Value, Right, Logic}``: Compare ``67``/``105``
  (equals, seen in real clients), ``17`` (contains), ``60`` (starts with), or an operator written out
  (``=``, ``<>``, ``like``, ``in`` with comma-separated Value, …); Logic ``0``/``AND`` or ``1``/``OR``
  joins an item to the next. Other numeric codes answer MsgCode 4.
- Errors (wrapped by the caller): unknown form MsgCode 4 ``标识为“X”的业务对象不存在，或者被删除。``;
  unknown key in FieldKeys, FilterString or OrderString MsgCode 9 ``元数据中标识为X的字段不存在``;
  empty FieldKeys MsgCode 8 ``data数据包中的参数FieldKeys的值不能为空。`` (FormId likewise); a filter
  that does not parse MsgCode 4 ``GetRealExpress error: …``.
- FieldKeys is a comma-separated string (spec §4.3); a JSON array answers MsgCode 8
  ``data数据包中的参数FieldKeys必须是以逗号分隔的字符串，不能是数组。`` [text INF: the server binds FieldKeys to
  a string and cannot read an array into it].
- Paging: TopRowCount (> 0) caps the result first, then StartRow (0-based) and Limit apply. Limit 0 (or
  not sent) means the maximum, 10000; a Limit above 10000 ("最大行数，整型，不能超过10000") answers
  MsgCode 8 ``data数据包中的参数Limit的值不能超过10000。`` [text INF] instead of being capped silently.
- Index: when the filter pins an indexed key (``FNumber`` on master forms; on bill forms ``FBillNo`` and
  every header or sub-head field kept as sent — standard and custom fields such as ``F_ora_Text_ckdh``) to
  literal texts, through ``=`` or ``IN (…)`` alone or ANDed with anything (or ORed with other conditions
  pinning the same key), only the records with those values are read, through a dict keyed like the text
  comparison (trailing blanks off, casefolded; ``store``); the full filter still runs on them, so the
  result is the same as a scan.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import Any

from .bills import parse_date
from .envelopes import MSG_EXCEPTION, MSG_NO_SUCH_FIELD, MSG_PARAMETER
from .form import BillForm
from .forms import DEFAULT_CUSTOM, BillForms, CustomFields, FormCustomFields
from .master import MasterData, MasterForm, master_id
from .schema import Field, Kind
from .store import Store
from .wire import decimal_text, lower_keys

MAX_LIMIT = 10000
Ctx = tuple[dict[str, Any], dict[str, Any] | None]  # (bill or master record, entry row or None)
Getter = Callable[[Ctx], Any]
NO_CUSTOM = FormCustomFields()
Pin = tuple[str, frozenset[str]]  # (lower-cased indexed key, the texts a matching record's value is one of)


class QueryError(Exception):
    def __init__(self, message: str, msg_code: int) -> None:
        super().__init__(message)
        self.message = message
        self.msg_code = msg_code


def unknown_field(key: str) -> QueryError:
    return QueryError(f"元数据中标识为{key}的字段不存在", MSG_NO_SUCH_FIELD)


@dataclass(frozen=True)
class Column:
    get: Getter
    entry: bool = False
    kind: Kind | None = None


# ------------------------------------------------------------------------------------------- values
def output(spec: Field, value: Any) -> Any:
    """A stored value as the query returns it."""
    if spec.kind is Kind.BASE:
        return value["Id"] if value else (0 if spec.ref_form != "BOS_BillType" else "")
    if spec.kind in (Kind.TEXT, Kind.ENUM):
        return "" if value is None else value
    if spec.kind is Kind.DECIMAL:
        return Decimal(0) if value is None else value
    if spec.kind is Kind.BOOL:
        return bool(value)
    return value


def _raw_property(value: Any, prop: str) -> Any:
    """``X.FNumber`` on a value stored as sent (e.g. ``{"FNumber": "03"}``)."""
    if isinstance(value, dict):
        return lower_keys(value).get(prop.lower())
    return None


# ------------------------------------------------------------------------------------------ schemas
class MasterSchema:
    def __init__(self, form: MasterForm, master: MasterData) -> None:
        self.form = form
        self.master = master

    def column(self, key: str) -> Column:
        name, _, rest = key.partition(".")
        spec = self.form.fields.get(name.lower())
        if spec is None:
            raise unknown_field(key)
        if name.lower() == "fmasterid":  # shared by a record's copies in several organisations
            id_key = self.form.id_key
            raw: Getter = lambda ctx: master_id(ctx[0], id_key)  # noqa: E731
        else:
            raw = lambda ctx: ctx[0].get(spec.key)  # noqa: E731
        if not rest:
            return Column(lambda ctx: output(spec, raw(ctx)), kind=spec.kind)
        return reference_column(self.master, spec, raw, rest, key, entry=False)

    def indexed(self, key: str) -> bool:
        return key == "fnumber"

    def contexts(self, entry_level: bool, pin: Pin | None = None) -> Iterator[Ctx]:
        if pin is None:
            records = list(self.form.records.values())
        else:  # an index look-up, in id order like a scan
            ids = sorted({rid for t in pin[1] for rid in self.form.by_text.get(t, ())}, key=_id_order)
            records = [self.form.records[rid] for rid in ids]
        for record in records:
            yield record, None


class BillSchema:
    """A bill form: header (+ sub-head) and entry rows."""

    def __init__(self, form: BillForm, store: Store, master: MasterData, custom: FormCustomFields = NO_CUSTOM) -> None:
        self.form = form
        self.store = store
        self.master = master
        self.head_keys = form.head_standard_keys | form.subhead_standard_keys | custom.head | custom.subhead
        self.entry_keys = form.entry_standard_keys | custom.entry

    def column(self, key: str) -> Column:
        lower = key.lower()
        entry_key = self.form.entry_key.lower()
        if lower in (f"{entry_key}_fentryid", f"{entry_key}_fseq"):
            stored = self.form.k.entry_id if lower.endswith("fentryid") else self.form.k.seq
            return Column(lambda ctx: ctx[1]["fields"].get(stored) if ctx[1] else None, True, Kind.INT)
        name, _, rest = key.partition(".")
        name_lower = name.lower()
        if name_lower in self.form.field_by_key:
            return self._known(self.form.field_by_key[name_lower], rest, key, entry=False)
        if name_lower in self.form.entry_field_by_key:
            return self._known(self.form.entry_field_by_key[name_lower], rest, key, entry=True)
        return self._extra(name_lower, rest, key)

    def _known(self, spec: Field, rest: str, key: str, *, entry: bool) -> Column:
        if entry:
            raw: Getter = lambda ctx: ctx[1]["fields"].get(spec.key) if ctx[1] else None  # noqa: E731
        else:
            raw = lambda ctx: ctx[0]["head"].get(spec.key)  # noqa: E731
        if not rest:
            return Column(lambda ctx: output(spec, raw(ctx)), entry, spec.kind)
        return reference_column(self.master, spec, raw, rest, key, entry=entry)

    def _extra(self, name_lower: str, rest: str, key: str) -> Column:
        if name_lower in self.entry_keys:
            raw: Getter = lambda ctx: _ci_get(ctx[1]["extra"], name_lower) if ctx[1] else None  # noqa: E731
            entry = True
        elif name_lower in self.head_keys:
            raw = lambda ctx: _head_extra(ctx[0], name_lower)  # noqa: E731
            entry = False
        else:
            raise unknown_field(key)
        if not rest:
            return Column(raw, entry)
        return Column(lambda ctx: _raw_property(raw(ctx), rest), entry)

    def indexed(self, key: str) -> bool:
        """FBillNo and the header and sub-head fields kept as sent (``store`` indexes their text values)."""
        return key == "fbillno" or (key in self.head_keys and key not in self.entry_keys)

    def contexts(self, entry_level: bool, pin: Pin | None = None) -> Iterator[Ctx]:
        form_id = self.form.form_id
        bills = self.store.bills(form_id) if pin is None else self.store.bills_matching(form_id, *pin)
        for bill in bills:
            if not entry_level:
                yield bill, None
            elif not bill["entries"]:
                yield bill, None  # the entry table is outer-joined
            else:
                for entry in bill["entries"]:
                    yield bill, entry


def _id_order(rid: Any) -> tuple[int, Any]:
    return (0, rid) if isinstance(rid, int) else (1, str(rid))


def _column_in(master: MasterData, form_id: str, key: str) -> Column | None:
    form = master.form(form_id)
    try:
        return MasterSchema(form, master).column(key) if form else None
    except QueryError:
        return None


def _head_extra(bill: dict[str, Any], lower: str) -> Any:
    value = _ci_get(bill["extra"], lower)
    return value if value is not None else _ci_get(bill["sub_extra"], lower)


def _ci_get(values: dict[str, Any], lower: str) -> Any:
    """A key stored as the client spelled it, looked up case-insensitively."""
    for key, value in values.items():
        if key.lower() == lower:
            return value
    return None


def reference_column(
    master: MasterData,
    spec: Field,
    raw: Getter,
    rest: str,
    key: str,
    *,
    entry: bool,
) -> Column:
    """``<base key>.<key of the referenced form>``, recursively."""
    if spec.kind is not Kind.BASE:
        raise unknown_field(key)
    prop = rest.partition(".")[0].lower()
    if prop == "fnumber" and "." not in rest:
        return Column(lambda ctx: (raw(ctx) or {}).get("Number"), entry, Kind.TEXT)
    target = master.form(spec.ref_form or "")
    if target is None:
        raise unknown_field(key)
    inner = MasterSchema(target, master).column(rest)

    def get(ctx: Ctx) -> Any:
        ref = raw(ctx)
        if not ref:
            return None
        form_id = ref.get("Form", target.form_id)  # an owner may live in another form than usual
        column = inner if form_id == target.form_id else _column_in(master, form_id, rest)
        record = master.get(form_id, ref["Id"])
        return column.get((record, None)) if record is not None and column is not None else None

    return Column(get, entry, inner.kind)


# ------------------------------------------------------------------------------------------- filter
_TOKEN = re.compile(
    r"""
    \s*(?:
      (?P<str>N?'(?:[^']|'')*')
    | (?P<num>-?\d+(?:\.\d+)?)(?![\w.])
    | (?P<op><>|!=|>=|<=|=|<|>)
    | (?P<punct>[(),])
    | (?P<ident>[A-Za-z_\u4e00-\u9fff][\w.]*)
    )""",
    re.VERBOSE,
)
_BLANKS = re.compile(r"\s*")
_KEYWORDS = {"and", "or", "not", "in", "like", "is", "null", "between"}


@dataclass(frozen=True)
class Token:
    kind: str  # str | num | op | punct | ident | kw
    text: str
    value: Any = None


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while True:
        pos = _BLANKS.match(text, pos).end()  # type: ignore[union-attr]
        if pos >= len(text):
            break
        match = _TOKEN.match(text, pos)
        if not match:
            raise _bad_filter(text, f"无法识别的字符“{text[pos:].strip()[:10]}”")
        pos = match.end()
        kind = match.lastgroup or ""
        raw = match.group(kind)
        if kind == "str":
            tokens.append(Token("str", raw, raw[raw.index("'") + 1 : -1].replace("''", "'")))
        elif kind == "num":
            tokens.append(Token("num", raw, Decimal(raw)))
        elif kind == "ident" and raw.lower() in _KEYWORDS:
            tokens.append(Token("kw", raw.lower()))
        else:
            tokens.append(Token(kind, raw))
    return tokens


def _bad_filter(text: str, detail: str) -> QueryError:
    return QueryError(f"GetRealExpress error: 过滤条件“{text}”无法解析，{detail}", MSG_EXCEPTION)


Predicate = Callable[[Ctx], bool]


@dataclass(frozen=True)
class Cond:
    """A parsed condition and, when it pins an indexed key to literal texts, that key and those texts."""

    test: Predicate
    pin: Pin | None = None  # a matching record's value of the key (as ``_as_text``) is one of the texts


@dataclass(frozen=True)
class Operand:
    get: Getter
    kind: Kind | None
    is_literal: bool = False
    literal: Any = None
    ident: str = ""  # the field key, lower-cased, when the operand is a field


class FilterParser:
    """Recursive descent over the token list; builds a predicate and notes the columns it uses."""

    def __init__(
        self, text: str, resolve: Callable[[str], Column], indexed: Callable[[str], bool] = lambda key: False
    ) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.pos = 0
        self.resolve = resolve
        self.indexed = indexed
        self.columns: list[Column] = []

    def parse(self) -> Cond:
        cond = self._or()
        if self.pos != len(self.tokens):
            raise _bad_filter(self.text, f"多余的内容“{self.tokens[self.pos].text}”")
        return cond

    # -- helpers --------------------------------------------------------------------------------
    def _peek(self, offset: int = 0) -> Token | None:
        index = self.pos + offset
        return self.tokens[index] if index < len(self.tokens) else None

    def _next(self) -> Token:
        token = self._peek()
        if token is None:
            raise _bad_filter(self.text, "条件不完整")
        self.pos += 1
        return token

    def _accept(self, kind: str, text: str | None = None) -> bool:
        token = self._peek()
        if token and token.kind == kind and (text is None or token.text.lower() == text):
            self.pos += 1
            return True
        return False

    def _expect(self, kind: str, text: str) -> None:
        if not self._accept(kind, text):
            found = self._peek()
            raise _bad_filter(self.text, f"缺少“{text}”" + (f"，遇到“{found.text}”" if found else ""))

    # -- grammar --------------------------------------------------------------------------------
    def _or(self) -> Cond:
        parts = [self._and()]
        while self._accept("kw", "or"):
            parts.append(self._and())
        if len(parts) == 1:
            return parts[0]
        tests = [p.test for p in parts]
        # Every branch must pin the same key for the union to bound the result.
        pins = [p.pin for p in parts if p.pin is not None]
        pin = None
        if len(pins) == len(parts) and len({key for key, _ in pins}) == 1:
            pin = (pins[0][0], frozenset().union(*(texts for _, texts in pins)))
        return Cond(lambda ctx: any(t(ctx) for t in tests), pin)

    def _and(self) -> Cond:
        parts = [self._not()]
        while self._accept("kw", "and"):
            parts.append(self._not())
        if len(parts) == 1:
            return parts[0]
        tests = [p.test for p in parts]
        pinned = [p.pin for p in parts if p.pin is not None]  # one pinned branch bounds the result
        pin = None
        if pinned:
            key = pinned[0][0]  # the first pinned key; other pins of that key narrow it
            pin = (key, frozenset.intersection(*(texts for k, texts in pinned if k == key)))
        return Cond(lambda ctx: all(t(ctx) for t in tests), pin)

    def _not(self) -> Cond:
        if self._accept("kw", "not"):
            inner = self._not().test
            return Cond(lambda ctx: not inner(ctx))
        if self._accept("punct", "("):
            group = self._or()
            self._expect("punct", ")")
            return group
        return self._comparison()

    def _comparison(self) -> Cond:
        left_operand = self._operand()
        left, left_kind = left_operand.get, left_operand.kind
        negate = self._accept("kw", "not")
        if self._accept("kw", "in"):
            return self._in(left_operand, negate)
        if self._accept("kw", "like"):
            pattern, _ = self._operand_getter()
            return Cond(_like(left, pattern, negate))
        if self._accept("kw", "between"):
            low, _ = self._operand_getter()
            self._expect("kw", "and")
            high, _ = self._operand_getter()

            def test(ctx: Any) -> bool:
                return bool(
                    _compare(left(ctx), low(ctx), left_kind, ">=") and _compare(left(ctx), high(ctx), left_kind, "<=")
                )

            return Cond((lambda ctx: not test(ctx)) if negate else test)
        if negate:
            raise _bad_filter(self.text, "NOT 之后缺少 IN、LIKE 或 BETWEEN")
        if self._accept("kw", "is"):
            is_not = self._accept("kw", "not")
            self._expect("kw", "null")
            return Cond(lambda ctx: (left(ctx) is not None) == is_not)
        token = self._next()
        if token.kind != "op":
            raise _bad_filter(self.text, f"缺少比较运算符，遇到“{token.text}”")
        right_operand = self._operand()
        right, right_kind = right_operand.get, right_operand.kind
        op = "<>" if token.text == "!=" else token.text
        pin = None
        if op == "=":
            pin = self._pins(left_operand, [right_operand]) or self._pins(right_operand, [left_operand])
        return Cond(lambda ctx: _compare(left(ctx), right(ctx), left_kind or right_kind, op), pin)

    def _pins(self, field: Operand, literals: list[Operand]) -> Pin | None:
        """The indexed key and the texts an ``=``/``IN`` pins it to (compared as ``_as_text``), if it does."""
        if not field.ident or "." in field.ident or not self.indexed(field.ident):
            return None
        if not all(o.is_literal and isinstance(o.literal, str) for o in literals):
            return None
        return field.ident, frozenset(_as_text(o.literal) for o in literals)

    def _in(self, left_operand: Operand, negate: bool) -> Cond:
        left, kind = left_operand.get, left_operand.kind
        self._expect("punct", "(")
        values = [self._operand()]
        while self._accept("punct", ","):
            values.append(self._operand())
        self._expect("punct", ")")
        # Literal text lists (the usual `FBillNo in (...)` look-up) are matched through a set.
        texts = {_as_text(o.literal) for o in values if o.is_literal and isinstance(o.literal, str)}
        text_only = kind not in (Kind.DATE, Kind.BOOL) and len(texts) == len(values)

        def test(ctx: Ctx) -> bool:
            value = left(ctx)
            if value is None:
                return False
            if text_only and isinstance(value, str):
                return (_as_text(value) in texts) != negate
            found = any(_compare(value, o.get(ctx), kind, "=") for o in values)
            return found != negate

        return Cond(test, None if negate else self._pins(left_operand, values))

    def _operand_getter(self) -> tuple[Getter, Kind | None]:
        operand = self._operand()
        return operand.get, operand.kind

    def _operand(self) -> Operand:
        token = self._next()
        if token.kind in ("str", "num"):
            return Operand(lambda ctx: token.value, None, True, token.value)
        if token.kind == "kw" and token.text == "null":
            return Operand(lambda ctx: None, None, True, None)
        if token.kind == "ident":
            column = self.resolve(token.text)
            self.columns.append(column)
            return Operand(column.get, column.kind, ident=token.text.lower())
        raise _bad_filter(self.text, f"此处不应出现“{token.text}”")


def _comparable(value: Any, other: Any, kind: Kind | None) -> tuple[Any, Any] | None:
    """Bring both sides to one type the way SQL Server's implicit conversions would."""
    if isinstance(value, bool) or isinstance(other, bool):
        return _as_bool(value), _as_bool(other)
    if kind is Kind.DATE:
        return _as_datetime(value), _as_datetime(other)
    if isinstance(value, (int, Decimal)) or isinstance(other, (int, Decimal)):
        try:
            return Decimal(str(value).strip()), Decimal(str(other).strip())
        except InvalidOperation:
            pass
    return _as_text(value), _as_text(other)


def _compare(value: Any, other: Any, kind: Kind | None, op: str) -> bool:
    if value is None or other is None:
        return False
    pair = _comparable(value, other, kind)
    if pair is None or pair[0] is None or pair[1] is None:
        return False
    a, b = pair
    return {"=": a == b, "<>": a != b, ">": a > b, "<": a < b, ">=": a >= b, "<=": a <= b}[op]


def _as_bool(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    text = str(value).strip().lower()
    return {"true": 1, "1": 1, "false": 0, "0": 0}.get(text, text)


def _as_datetime(value: Any) -> str | None:
    text = str(value).strip()
    if re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$", text):
        return text
    try:
        day = parse_date(text)
    except ValueError:
        return None
    time_match = re.search(r"[ T](\d{1,2}):(\d{2})(?::(\d{2}))?", text)
    if day and time_match:
        hh, mm, ss = time_match.group(1), time_match.group(2), time_match.group(3) or "00"
        return f"{day[:10]}T{int(hh):02d}:{mm}:{ss}"
    return day


def _as_text(value: Any) -> str:
    if isinstance(value, Decimal):
        value = decimal_text(value)
    elif isinstance(value, dict):
        value = lower_keys(value).get("fnumber", "")
    return str(value).rstrip().casefold()


def _like(left: Getter, pattern: Getter, negate: bool) -> Predicate:
    def test(ctx: Ctx) -> bool:
        value, pat = left(ctx), pattern(ctx)
        if value is None or pat is None:
            return False
        return bool(_like_regex(str(pat)).match(_as_text(value))) != negate

    return test


def _like_regex(pattern: str) -> re.Pattern[str]:
    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "%":
            out.append(".*")
        elif ch == "_":
            out.append(".")
        elif ch == "[" and "]" in pattern[i + 1 :]:
            end = pattern.index("]", i + 1)
            body = pattern[i + 1 : end]
            negated = body.startswith("^")
            out.append(("[^" if negated else "[") + re.escape(body[1:] if negated else body) + "]")
            i = end
        else:
            out.append(re.escape(ch))
        i += 1
    return re.compile("".join(out) + r"\Z", re.DOTALL | re.IGNORECASE)


# Compare codes seen in real clients' array filters; written-out operators are accepted as well.
_COMPARE_CODES = {"67": "=", "105": "=", "17": "contains", "60": "starts"}
_COMPARE_WORDS = {"=", "<>", "!=", ">", "<", ">=", "<=", "like", "not like", "in", "not in", "is null", "is not null"}


def array_filter_text(items: list[Any]) -> str:
    """The array form of FilterString rewritten as the string form."""
    parts: list[str] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise QueryError("FilterString数组的元素必须是JSON对象", MSG_PARAMETER)
        view = lower_keys(item)
        condition = _array_condition(view)
        parts.append(f"{view.get('left') or ''}{condition}{view.get('right') or ''}")
        if i < len(items) - 1:
            logic = str(view.get("logic", "0")).strip().lower()
            parts.append(" OR " if logic in ("1", "or") else " AND ")
    return "".join(parts)


def _array_condition(view: dict[str, Any]) -> str:
    name = str(view.get("fieldname") or "").strip()
    code = str(view.get("compare") or "=").strip().lower()
    op = _COMPARE_CODES.get(code, code if code in _COMPARE_WORDS else "")
    if not name or not op:
        raise QueryError(f"GetRealExpress error: 不支持的比较符“{view.get('compare')}”", MSG_EXCEPTION)
    value = view.get("value")
    text = "" if value is None else (decimal_text(value) if isinstance(value, Decimal) else str(value))
    if op == "contains":
        return f"{name} LIKE {_quote('%' + text + '%')}"
    if op == "starts":
        return f"{name} LIKE {_quote(text + '%')}"
    if op in ("in", "not in"):
        values = ",".join(_quote(v.strip()) for v in text.split(",")) or "''"
        return f"{name} {op.upper()} ({values})"
    if op.startswith("is"):
        return f"{name} {op.upper()}"
    return f"{name} {op} {_quote(text)}"


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# ----------------------------------------------------------------------------------------- executor
@dataclass(frozen=True)
class QueryRequest:
    form_id: str
    field_keys: list[str]
    filter_text: str
    order: list[tuple[str, bool]]  # (key, descending)
    top: int
    start: int
    limit: int


def read_request(data: dict[str, Any]) -> QueryRequest:
    view = lower_keys(data)
    form_id = str(view.get("formid") or "").strip()
    if not form_id:
        raise QueryError("data数据包中的参数FormId的值不能为空。", MSG_PARAMETER)
    keys = view.get("fieldkeys")
    if isinstance(keys, (list, dict)):
        raise QueryError("data数据包中的参数FieldKeys必须是以逗号分隔的字符串，不能是数组。", MSG_PARAMETER)
    field_keys = [k.strip() for k in str(keys or "").split(",") if k.strip()]
    if not field_keys:
        raise QueryError("data数据包中的参数FieldKeys的值不能为空。", MSG_PARAMETER)
    raw_filter = view.get("filterstring")
    if isinstance(raw_filter, list):
        filter_text = array_filter_text(raw_filter)
    elif raw_filter is None or isinstance(raw_filter, str):
        filter_text = (raw_filter or "").strip()
    else:
        raise QueryError("data数据包中的参数FilterString必须是字符串或数组。", MSG_PARAMETER)
    limit = _int(view.get("limit"), "Limit")
    if limit > MAX_LIMIT:
        raise QueryError(f"data数据包中的参数Limit的值不能超过{MAX_LIMIT}。", MSG_PARAMETER)
    return QueryRequest(
        form_id=form_id,
        field_keys=field_keys,
        filter_text=filter_text,
        order=_order(str(view.get("orderstring") or "")),
        top=max(0, _int(view.get("toprowcount"), "TopRowCount")),
        start=max(0, _int(view.get("startrow"), "StartRow")),
        limit=MAX_LIMIT if limit <= 0 else limit,
    )


def _int(value: Any, name: str) -> int:
    if value is None or value == "":
        return 0
    try:
        return int(Decimal(str(value).strip()))
    except (InvalidOperation, ValueError):
        raise QueryError(f"data数据包中的参数{name}必须是整数。", MSG_PARAMETER) from None


def _order(text: str) -> list[tuple[str, bool]]:
    order: list[tuple[str, bool]] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        words = part.split()
        if len(words) > 2 or (len(words) == 2 and words[1].lower() not in ("asc", "desc")):
            raise QueryError(f"GetRealExpress error: 排序条件“{text}”无法解析", MSG_EXCEPTION)
        order.append((words[0], len(words) == 2 and words[1].lower() == "desc"))
    return order


class QueryEngine:
    def __init__(
        self, store: Store, master: MasterData, forms: BillForms, custom: CustomFields = DEFAULT_CUSTOM
    ) -> None:
        self.store = store
        self.master = master
        self.forms = forms
        self.custom = custom

    def schema(self, form_id: str) -> BillSchema | MasterSchema:
        bill_form = self.forms.get(form_id)
        if bill_form is not None:
            return BillSchema(bill_form, self.store, self.master, self.custom.of(bill_form.form_id))
        form = self.master.form(form_id)
        if form is None:
            raise QueryError(f"标识为“{form_id}”的业务对象不存在，或者被删除。", MSG_EXCEPTION)
        return MasterSchema(form, self.master)

    def run(self, data: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
        """(field keys as requested, rows of values in that order)."""
        request = read_request(data)
        schema = self.schema(request.form_id)
        columns = [schema.column(k) for k in request.field_keys]
        parser = None
        if request.filter_text:
            parser = FilterParser(request.filter_text, schema.column, schema.indexed)
        cond = parser.parse() if parser else None
        order = [(schema.column(k), desc) for k, desc in request.order]
        used = columns + (parser.columns if parser else []) + [c for c, _ in order]
        candidates = schema.contexts(any(c.entry for c in used), cond.pin if cond else None)
        contexts = [c for c in candidates if not cond or cond.test(c)]
        for column, desc in reversed(order):
            contexts.sort(key=partial(_sort_of, column), reverse=desc)
        if request.top:
            contexts = contexts[: request.top]
        contexts = contexts[request.start : request.start + request.limit]
        return request.field_keys, [[col.get(ctx) for col in columns] for ctx in contexts]


def _sort_of(column: Column, ctx: Ctx) -> tuple[int, Any]:
    return _sort_key(column.get(ctx))


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, 0)
    if isinstance(value, bool):
        return (1, Decimal(int(value)))
    if isinstance(value, (int, Decimal)):
        return (1, Decimal(value))
    return (2, _as_text(value))
