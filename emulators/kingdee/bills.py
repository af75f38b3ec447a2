"""Reading a bill's Model by its form (``form.BillForm``): values, references, defaults, checks, amounts.

What each form requires and defaults is in its definition (``outstock``, ``returnstock``, ``instock``);
the rules below hold for every bill form. They were decided for SAL_OUTSTOCK (kingdee-webapi.md §3)
and apply as they are to SAL_RETURNSTOCK and STK_InStock (kingdee-returnstock-instock.md §6.4, which
asks for the same formats).

Decisions ([INF]/[?] points of the specs, each one chosen to follow the real server where it is known):
- Field keys match case-insensitively (``FSETTLECURRID`` = ``FSettleCurrID``); the model layout is the
  real one: header keys, the sub-head (``SubHeadEntity``/``FInStockFin``, an object) and the entry array
  (``FEntity``/``FInStockEntry``) at the top level of each Model. Forms that allow it
  (``BillForm.entity_aliases``: SAL_RETURNSTOCK, STK_InStock) also take ``<FormId>__<EntityKey>``
  (``SAL_RETURNSTOCK__FEntity``, seen in one client) for the sub-head and the entries.
- The form's metadata: its modelled fields, the other standard fields of its spec (stored exactly as
  sent and queryable, e.g. ``FSalesManID``, the flex field ``FAuxPropId``, a row's ``FSerialSubEntity``)
  and the tenant's custom fields of that form (``forms.CustomFields``).
- A key a Model sends that is not in the metadata of the entity it is sent in (a misspelt or foreign
  key, a custom field the tenant does not have, a header field inside the sub-head or a row, a sub-head
  field at the top level, the entries nested inside the sub-head) fails that bill as a whole, before
  any other check: one error per unknown key, FieldName = the key as sent, Message
  ``元数据中标识为X的字段不存在`` (the MsgCode 9 text of spec §4.3), the bill's DIndex; the other bills
  of the batch are saved or refused on their own, and the answer's MsgCode is 9 (``server``). [INF: the
  real server maps the JSON onto the form's metadata before it validates, so an unknown field refuses
  that bill's packet; keeping it silently would let a client's misspelt key pass here and fail in
  production.] An entry value that is not an array counts as no rows.
- Base data is looked up by ``FNumber`` (any key case), else ``FName``, else an id key (``FID``,
  ``FMasterId``, the form's id key); a bare number/string is read as the internal id, as the real server
  does. Only enabled records are found: a disabled one (FForbidStatus ``B``) counts as not existing
  (spec §3.1 "禁用也是不存在"). Organisation-controlled base data (``master``) is looked up among the
  records of the organisation the bill uses it in (``BillForm.org_of``: e.g. the customer in the sales
  organisation, the supplier in the purchasing organisation, materials and stocks in the stock
  organisation); a number whose records all belong to other organisations is not found there [INF: the
  lookup of a real multi-organisation tenant is filtered by the field's organisation]. When that
  organisation field is empty itself, any organisation's record is found (its own must-input error names
  the cause, once). Scoped base data (bill types of the bill's form, assistant data of the field's
  category, ``master.in_scope``) is found only in its scope. A missing, empty, unknown, disabled or
  not-usable reference leaves the field empty, so required fields fail the must-input check with the
  verbatim formats ``字段“客户”是必填项`` (header and sub-head) and
  ``单据体实体【明细信息】第【n】行分录，【物料编码】字段必录`` (rows); FieldName is the field key.
- Defaults (each form's ``head_defaults``/``row_defaults``) apply only when the key is not sent at all (a
  key sent with an unknown number stays empty, as when Kingdee applies the JSON value after the field's
  change events). A unit derived from the material is not reported when the material is empty: one
  message per cause, as the spec's captured errors show.
- Quantity: 0 (or missing) fails the must-input check like any empty numeric field (Kingdee's
  must-input rule treats 0 in a numeric field as not entered); a negative quantity fails with the form's
  ``negative_qty`` message.
- Lots: a batch-managed material (BD_MATERIAL.FIsBatchManage) needs FLot; the lot (per material and
  number) is created in BD_BatchMainFile when the bill is saved. A non-batch material ignores FLot.
  FLot is written ``{"FNumber": "<lot no>"}`` (spec §3.2). Anything else (a bare ``"20250822"``,
  ``{"FLOTID": n}``) names an existing lot by its internal id, like any base-data field: a lot number sent
  bare is no lot's id, so the lot stays empty and the batch-managed row fails the must-input check
  ``单据体实体【明细信息】第【n】行分录，【批号】字段必录`` (FieldName ``FLot``; with IsVerifyBaseDataField also
  ``字段“批号”(FLot)的值“20250822”在系统中不存在，或者未审核、已禁用``). The id of an existing lot of that
  material is accepted. Shelf-life dates are stored as sent (the catalog has no 保质期管理 flag).
- Owner type picks the owner's form: BD_OwnerOrg → ORG_Organizations, BD_Customer → BD_Customer,
  BD_Supplier → BD_Supplier, anything else → no records, so the owner stays empty.
- Values: decimals are exact (JSON numbers or strings; ``""`` is 0); a string that is not a number fails
  with ``输入字符串的格式不正确。``. Booleans: JSON bools, ``"true"/"false"`` in any case, 1/0. Dates:
  ``yyyy-MM-dd``, ``yyyy/MM/dd``, optionally with `` HH:mm[:ss[.fff]]`` or ``T``; date fields drop the
  time (queries return ``2024-12-04T00:00:00``). A value that cannot be converted (e.g.
  ``0000-00-00 00:00:00``) fails the bill, FieldName = the key,
  ``字段“生产日期”(FProduceDate)的值“…”转换失败：该字符串未被识别为有效的 DateTime。`` (rows prefixed
  ``单据体实体【明细信息】第【n】行分录，``). A Model element that is not an object fails with
  ``Model中第n个数据包不是JSON对象。``.
- Amounts are computed and any sent FAmount/FAllAmount/FEntryTaxAmount is overwritten, with r =
  FEntryTaxRate/100 and half-up rounding: tax-inclusive (default) FAllAmount = round(FRealQty × FTaxPrice,
  2), FEntryTaxAmount = round(FAllAmount × r / (1 + r), 2), FAmount = FAllAmount − FEntryTaxAmount,
  FPrice = round(FTaxPrice / (1 + r), 6); with the sub-head's FIsIncludedTax false the same from FPrice
  (FAmount = round(FRealQty × FPrice, 2), FEntryTaxAmount = round(FAmount × r, 2)). A gift row (FIsFree,
  STK_InStock's FGiveAway) has prices and amounts 0. The sub-head's FBillAmount/FBillTaxAmount/
  FBillAllAmount are the row sums. FDiscountRate and other pricing keys are stored but not applied.
- ``ValidateFlag`` false skips the must-input, lot, quantity and row-count checks (the bill is saved with
  empty fields); value conversion errors, links and the FBillNo uniqueness check always apply.
- ``IsVerifyBaseDataField`` true adds, for each non-empty reference that matches no usable record,
  ``字段“物料编码”(FMaterialID)的值“X”在系统中不存在，或者未审核、已禁用`` (text [?]); rows are prefixed
  ``单据体实体【明细信息】第【n】行分录，``.
- ``FID`` other than 0 asks for an update of that stored bill (``updates``: NeedUpDateFields,
  IsDeleteEntry, FEntryID, refusals); ``FID为n的单据不存在，或者已被删除。`` when the form has no such bill.
  The Model is merged onto the stored bill and the merged bill is read and checked like a new one (the
  rules above, amounts and totals recomputed). FEntryID values sent on rows of a new bill are ignored.
- Errors of a batch are ordered by rule, then by DIndex, then by row (the real grouping of BATCHERR).
"""

from __future__ import annotations

import copy
import datetime as _dt
import re
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from .envelopes import Problem
from .form import BillForm, HeadContext, RowContext
from .master import LOT_FORM, ORG_FORM, SUPPLIER_FORM, MasterData, in_scope, usable
from .schema import Field, Kind
from .wire import decimal_text, lower_keys

MSG_UNKNOWN_FIELD = "元数据中标识为{}的字段不存在"
_CENT = Decimal("0.01")
_PRICE = Decimal("0.000001")
# Set by the server, whatever the client sends.
SYSTEM_KEYS = frozenset(
    {
        "fid",
        "fdocumentstatus",
        "fcreatedate",
        "fmodifydate",
        "fapprovedate",
        "fcancelstatus",
        "fbillamount",
        "fbilltaxamount",
        "fbillallamount",
        "fentryid",
        "fseq",
        "famount",
        "fallamount",
        "fentrytaxamount",
    }
)
_OWNER_FORMS = {"bd_ownerorg": ORG_FORM, "bd_customer": "BD_Customer", "bd_supplier": SUPPLIER_FORM}

# Rank of each rule in the error list: errors are grouped by rule, as the real server does.
RANK_METADATA, RANK_CONVERT, RANK_FID, RANK_VERIFY = -1, 0, 1, 2
RANK_HEAD = 10
RANK_NO_ROWS = 30
RANK_ENTRY = 40
RANK_LOT, RANK_NEGATIVE, RANK_LINK, RANK_UNIQUE, RANK_INTERACTION = 60, 61, 70, 90, 95


@dataclass(frozen=True)
class SaveOptions:
    """The ``data`` options of spec §3.1 that change what the emulator does."""

    validate: bool = True  # ValidateFlag
    verify_base_data: bool = False  # IsVerifyBaseDataField
    auto_audit: bool = False  # IsAutoSubmitAndAudit
    need_return_fields: tuple[str, ...] = ()
    need_update_fields: tuple[str, ...] = ()  # NeedUpDateFields (updates only)
    delete_entry: bool = True  # IsDeleteEntry (updates only)


@dataclass(frozen=True)
class RankedProblem:
    rank: int
    dindex: int
    row: int
    problem: Problem


@dataclass
class DraftEntry:
    fields: dict[str, Any]
    extra: dict[str, Any]
    lot_number: str | None = None  # created or found in BD_BatchMainFile when the bill is saved
    entry_id: int = 0  # an update's stored row (its FEntryID is kept); 0: a new row


@dataclass
class Draft:
    """One Model read and checked; saved only when ``problems`` stays empty."""

    dindex: int
    head: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    sub_extra: dict[str, Any] = field(default_factory=dict)
    entries: list[DraftEntry] = field(default_factory=list)
    problems: list[RankedProblem] = field(default_factory=list)
    fid: int = 0
    unknown_keys: dict[str, str] = field(default_factory=dict)  # lower -> key as sent: not in the metadata
    stored: dict[str, Any] | None = None  # an update: the stored bill's document the draft replaces

    def fail(self, rank: int, message: str, field_name: str | None, row: int = 0) -> None:
        self.problems.append(RankedProblem(rank, self.dindex, row, Problem(message, field_name, self.dindex)))

    def unknown(self, key: Any) -> None:
        self.unknown_keys.setdefault(str(key).lower(), str(key))

    def refuse_unknown(self) -> None:
        """The packet does not fit the form's metadata: its unknown keys are the bill's only errors."""
        self.problems = [
            RankedProblem(RANK_METADATA, self.dindex, 0, Problem(MSG_UNKNOWN_FIELD.format(key), key, self.dindex))
            for key in self.unknown_keys.values()
        ]

    @property
    def bill_no(self) -> str:
        return str(self.head.get("FBillNo") or "")


@dataclass(frozen=True)
class Kept:
    """A stored field value an update keeps (``updates``): read as it is, neither converted nor looked up."""

    value: Any


class ConversionError(ValueError):
    """A value that cannot be converted to the field's type (.NET's own message)."""


# ------------------------------------------------------------------------------------- value parsing
_DATE_RE = re.compile(
    r"^(\d{4})[-/](\d{1,2})[-/](\d{1,2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?)?"
    r"(?:Z|[+-]\d{2}:?\d{2})?$"
)


def parse_date(value: Any) -> str | None:
    """A date field value as ``yyyy-MM-ddT00:00:00`` (the time part of a date field is dropped)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    match = _DATE_RE.match(str(value).strip()) if isinstance(value, str) else None
    if not match:
        raise ConversionError("该字符串未被识别为有效的 DateTime。")
    year, month, day = (int(g) for g in match.groups()[:3])
    try:
        date = _dt.date(year, month, day)
    except ValueError:
        raise ConversionError("该字符串未被识别为有效的 DateTime。") from None
    return date.isoformat() + "T00:00:00"


def parse_decimal(value: Any) -> Decimal:
    if value is None:
        return Decimal(0)
    if isinstance(value, bool):
        raise ConversionError("输入字符串的格式不正确。")
    if isinstance(value, (int, Decimal)):
        number = Decimal(value)
    elif isinstance(value, str):
        if not value.strip():
            return Decimal(0)
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            raise ConversionError("输入字符串的格式不正确。") from None
    else:
        raise ConversionError("输入字符串的格式不正确。")
    if not number.is_finite():
        raise ConversionError("输入字符串的格式不正确。")
    return number


def parse_bool(value: Any) -> bool:
    if value is None or value == "":
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, Decimal)) and value in (0, 1):
        return value == 1
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    raise ConversionError("该字符串未被识别为有效的布尔值。")


def parse_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, Decimal):
        return decimal_text(value)
    if isinstance(value, (str, int)):
        return str(value)
    raise ConversionError("无法将JSON对象或数组转换为文本。")


def reference_text(value: Any) -> str:
    """How a reference was written, for messages (its number when it has one)."""
    if isinstance(value, dict):
        view = lower_keys(value)
        for key in ("fnumber", "fname"):
            if key in view:
                return parse_text(view[key]) if not isinstance(view[key], (dict, list)) else str(view[key])
        return str(value)
    return parse_text(value) if not isinstance(value, list) else str(value)


def resolve_reference(
    master: MasterData,
    form_id: str,
    value: Any,
    org: Any = None,
    scope: str | None = None,
) -> tuple[dict[str, Any] | None, bool]:
    """(``{"Id", "Number"}`` or None, whether a non-empty reference matched nothing usable).

    Only enabled records count, for organisation-controlled base data only the record of the use
    organisation ``org`` (an ORG_Organizations id; None: any organisation), see ``master.usable``, and
    for scoped forms only the records of ``scope`` (``master.in_scope``)."""
    if value is None or value == "" or value == {}:
        return None, False
    form = master.form(form_id)
    if form is None:
        return None, not _is_blank_reference(value)
    candidates = _candidates(master, form_id, form.id_key, value)
    record = next((r for r in candidates if usable(r, org) and in_scope(form, r, scope)), None)
    if record is None:
        return None, not _is_blank_reference(value)
    return {"Id": record[form.id_key], "Number": record["FNumber"]}, False


def _is_blank_reference(value: Any) -> bool:
    if isinstance(value, dict):
        return all(v in (None, "", 0) for v in value.values())
    return value in (None, "", 0)


def _candidates(master: MasterData, form_id: str, id_key: str, value: Any) -> list[dict[str, Any]]:
    """The records a reference names: by number or name (every organisation's record), else by id."""
    if isinstance(value, dict):
        view = lower_keys(value)
        if "fnumber" in view:
            number = view["fnumber"]
            if isinstance(number, (dict, list, bool)) or number in (None, ""):
                return []
            return master.find_all(form_id, parse_text(number))
        if "fname" in view and isinstance(view["fname"], str):
            return master.find_all_by_name(form_id, view["fname"])
        if "fmasterid" in view:
            record = _by_id(master, form_id, view["fmasterid"])
            return master.copies(form_id, record[id_key]) if record else []
        for key in ("fid", id_key.lower()):
            if key in view:
                record = _by_id(master, form_id, view[key])
                return [record] if record else []
        return []
    record = _by_id(master, form_id, value)
    return [record] if record else []


def _by_id(master: MasterData, form_id: str, value: Any) -> dict[str, Any] | None:
    if isinstance(value, bool) or not isinstance(value, (int, str, Decimal)):
        return None
    record = master.get(form_id, value)
    if record is None and isinstance(value, (str, Decimal)) and str(value).strip().isdigit():
        record = master.get(form_id, int(str(value).strip()))
    return record


# ---------------------------------------------------------------------------------------- the reader
class DraftReader:
    """Turns one Model object of ``form`` into a Draft: values, references, defaults, checks."""

    def __init__(
        self,
        form: BillForm,
        master: MasterData,
        options: SaveOptions,
        custom_head: frozenset[str] = frozenset(),
        custom_subhead: frozenset[str] = frozenset(),
        custom_entry: frozenset[str] = frozenset(),
    ) -> None:
        self.form = form
        self.master = master
        self.options = options
        self.head_extra = form.head_standard_keys | custom_head
        self.subhead_extra = form.subhead_standard_keys | custom_subhead
        self.entry_extra = form.entry_standard_keys | custom_entry

    def read(self, model: Any, dindex: int) -> Draft:
        form = self.form
        draft = Draft(dindex)
        if not isinstance(model, dict):
            draft.fail(RANK_CONVERT, f"Model中第{dindex + 1}个数据包不是JSON对象。", None)
            return draft
        sent_head: set[str] = set()
        rows: Any = None
        later: list[tuple[Field, Any]] = []
        owner_head = form.k.owner_head.lower()
        for key, value in model.items():
            lower = str(key).lower()
            entity = form.entity_of(lower)
            if entity == "subhead":
                self._read_subhead(draft, value, sent_head)
            elif entity == "entry":
                rows = value
            elif lower == "fid":
                draft.fid = self._read_fid(draft, value)
            elif lower == owner_head or (lower in form.org_fields and lower in form.head_only):
                # the owner's form depends on the owner type; a customer is looked up in its organisation
                later.append((form.head_only[lower], value))
            elif lower in form.head_only:
                self._set_head(draft, form.head_only[lower], value, sent_head)
            elif lower in self.head_extra:
                draft.extra[str(key)] = value
            else:
                draft.unknown(key)
        for spec, value in later:
            self._set_head(draft, spec, value, sent_head)
        self._default_head(draft, sent_head)
        for seq, row in enumerate(rows if isinstance(rows, list) else [], start=1):
            draft.entries.append(self._read_row(draft, row, seq))
        if draft.unknown_keys:  # the packet does not fit the form's metadata: nothing else is checked
            draft.refuse_unknown()
            return draft
        compute_amounts(form, draft)
        if self.options.validate:
            self._check(draft)
        return draft

    # -- header ---------------------------------------------------------------------------------
    def _read_fid(self, draft: Draft, value: Any) -> int:
        try:
            fid = parse_decimal(value)
        except ConversionError as exc:
            draft.fail(RANK_CONVERT, str(exc), "FID")
            return 0
        return int(fid)

    def _read_subhead(self, draft: Draft, value: Any, sent: set[str]) -> None:
        if not isinstance(value, dict):
            return  # the one-to-one sub-head is an object; anything else carries no fields
        for key, item in value.items():
            lower = str(key).lower()
            if lower in self.form.subhead_only:
                self._set_head(draft, self.form.subhead_only[lower], item, sent)
            elif lower in self.subhead_extra:
                draft.sub_extra[str(key)] = item
            else:
                draft.unknown(key)  # the entries included: the rows are not part of the sub-head

    def _set_head(self, draft: Draft, spec: Field, value: Any, sent: set[str]) -> None:
        if spec.key.lower() in SYSTEM_KEYS:
            return
        sent.add(spec.key)
        draft.head[spec.key] = self._convert(
            draft, spec, value, self._ref_form(spec, draft.head), row=0, org=self._org_id(spec, draft.head)
        )

    def _default_head(self, draft: Draft, sent: set[str]) -> None:
        today = _dt.date.today().isoformat() + "T00:00:00"
        defaults = self.form.head_defaults(HeadContext(dict(draft.head), self._preset, today))
        for key, value in defaults.items():
            if key not in sent:
                draft.head[key] = value

    # -- rows -----------------------------------------------------------------------------------
    def _read_row(self, draft: Draft, row: Any, seq: int) -> DraftEntry:
        k = self.form.k
        entry = DraftEntry(fields={k.seq: seq}, extra={})
        if not isinstance(row, dict):
            draft.fail(RANK_CONVERT, f"{self._row_prefix(seq)}数据包不是JSON对象。", self.form.entry_key, seq)
            return entry
        sent: set[str] = set()
        lot_value: Any = None
        owner: list[tuple[Field, Any]] = []
        for key, value in row.items():
            lower = str(key).lower()
            spec = self.form.entry_field_by_key.get(lower)
            if spec is None:
                if lower in self.entry_extra:
                    entry.extra[str(key)] = value
                else:
                    draft.unknown(key)
            elif spec.key == k.lot:
                lot_value = value  # read once the material is known
            elif spec.key == k.owner:
                owner.append((spec, value))  # its form depends on the owner type
            elif spec.key.lower() not in SYSTEM_KEYS:
                sent.add(spec.key)
                entry.fields[spec.key] = self._convert(
                    draft, spec, value, spec.ref_form, row=seq, org=self._org_id(spec, draft.head)
                )
        for spec, value in owner:
            sent.add(spec.key)
            form_id = self._ref_form(spec, entry.fields)
            entry.fields[spec.key] = self._convert(draft, spec, value, form_id, row=seq)
        self._default_row(draft, entry, sent)
        self._read_lot(draft, entry, lot_value)
        return entry

    def _default_row(self, draft: Draft, entry: DraftEntry, sent: set[str]) -> None:
        material = self._material(entry)
        unit = dict(material["FBaseUnitId"]) if material and material.get("FBaseUnitId") else None
        context = RowContext(draft.head, dict(entry.fields), frozenset(sent), unit, self._preset)
        for key, value in self.form.row_defaults(context).items():
            if key not in sent:
                entry.fields[key] = value

    def _read_lot(self, draft: Draft, entry: DraftEntry, value: Any) -> None:
        k = self.form.k
        material = self._material(entry)
        entry.fields[k.lot] = None
        if isinstance(value, Kept):  # an update keeps the stored lot (its number: the row may change material)
            value = {"FNumber": value.value["Number"]} if value.value else None
        if not material or not material.get("FIsBatchManage"):
            return  # a material without lot management ignores FLot
        view = lower_keys(value) if isinstance(value, dict) else {}
        if "fnumber" in view:
            number = view["fnumber"]
            try:
                text = parse_text(number).strip() if not isinstance(number, (dict, list)) else ""
            except ConversionError:
                text = ""
            entry.lot_number = text or None  # found or created when the bill is saved
            return
        # Anything else names an existing lot by its internal id (FLOTID), as any base-data field does:
        # a lot number sent bare ("20250822") is no lot's id.
        ref, unknown = resolve_reference(self.master, LOT_FORM, value)
        lot = self.master.get(LOT_FORM, ref["Id"]) if ref else None
        if lot is not None and lot["FMaterialID"]["Id"] == entry.fields[k.material]["Id"]:
            entry.lot_number = lot["FNumber"]
        elif (unknown or lot is not None) and self.options.verify_base_data:
            spec = self.form.entry_field_by_key[k.lot.lower()]
            seq = entry.fields[k.seq]
            draft.fail(RANK_VERIFY, self._row_prefix(seq) + _not_in_system(spec, value), spec.key, seq)

    def _material(self, entry: DraftEntry) -> dict[str, Any] | None:
        ref = entry.fields.get(self.form.k.material)
        return self.master.get("BD_MATERIAL", ref["Id"]) if ref else None

    def _preset(self, form_id: str, number: str) -> dict[str, Any] | None:
        record = self.master.find(form_id, number)
        return self.master.ref(form_id, record).as_json() if record else None

    # -- values ---------------------------------------------------------------------------------
    def _ref_form(self, spec: Field, siblings: dict[str, Any]) -> str | None:
        k = self.form.k
        if spec.key in (k.owner_head, k.owner):
            owner_type = siblings.get(k.owner_type_head if spec.key == k.owner_head else k.owner_type)
            return _OWNER_FORMS.get(str(owner_type or "BD_OwnerOrg").lower(), str(owner_type))
        return spec.ref_form

    def _org_id(self, spec: Field, head: dict[str, Any]) -> Any:
        """The organisation (id) whose records ``spec`` is looked up in; None: any (or none sent yet)."""
        org_field = self.form.org_fields.get(spec.key.lower())
        org = head.get(org_field) if org_field else None
        return org["Id"] if org else None

    def _convert(self, draft: Draft, spec: Field, value: Any, ref_form: str | None, row: int, org: Any = None) -> Any:
        if isinstance(value, Kept):
            return copy.deepcopy(value.value)
        try:
            if spec.kind is Kind.BASE:
                ref, unknown = resolve_reference(self.master, ref_form or "", value, org, spec.scope)
                if ref is not None and ref_form != spec.ref_form:
                    ref["Form"] = ref_form  # an owner of another type: remember where it lives
                if unknown and self.options.verify_base_data:
                    draft.fail(RANK_VERIFY, self._row_prefix(row) + _not_in_system(spec, value), spec.key, row)
                return ref
            return _CONVERTERS[spec.kind](value)
        except ConversionError as exc:
            draft.fail(
                RANK_CONVERT,
                self._row_prefix(row) + f"字段“{spec.caption}”({spec.key})的值“{reference_text(value)}”转换失败：{exc}",
                spec.key,
                row,
            )
            return None

    # -- checks ---------------------------------------------------------------------------------
    def _check(self, draft: Draft) -> None:
        form, k = self.form, self.form.k
        for rank, key in enumerate(form.head_required, start=RANK_HEAD):
            if is_empty(draft.head.get(key)):
                draft.fail(rank, f"字段“{form.field_by_key[key.lower()].caption}”是必填项", key)
        if not draft.entries:
            draft.fail(RANK_NO_ROWS, f"单据体实体【{form.entry_caption}】至少需要录入一行分录", form.entry_key)
        for entry in draft.entries:
            seq = entry.fields[k.seq]
            for rank, key in enumerate(form.entry_required, start=RANK_ENTRY):
                if key == k.unit and entry.fields.get(k.material) is None:
                    continue  # the unit comes from the material: an empty material is reported once, as itself
                if is_empty(entry.fields.get(key)):
                    draft.fail(rank, self._must_input_row(seq, key), key, seq)
            material = self._material(entry)
            if material and material.get("FIsBatchManage") and not entry.lot_number:
                draft.fail(RANK_LOT, self._must_input_row(seq, k.lot), k.lot, seq)
            qty = entry.fields.get(k.qty)
            if isinstance(qty, Decimal) and qty < 0:
                caption = form.entry_field_by_key[k.qty.lower()].caption
                message = self._row_prefix(seq) + form.negative_qty.format(caption=caption)
                draft.fail(RANK_NEGATIVE, message, k.qty, seq)

    def _row_prefix(self, seq: int) -> str:
        return row_prefix(self.form, seq)

    def _must_input_row(self, seq: int, key: str) -> str:
        return f"{self._row_prefix(seq)}【{self.form.entry_field_by_key[key.lower()].caption}】字段必录"


_CONVERTERS = {
    Kind.TEXT: parse_text,
    Kind.ENUM: parse_text,
    Kind.DECIMAL: parse_decimal,
    Kind.BOOL: parse_bool,
    Kind.DATE: parse_date,
    Kind.INT: lambda v: int(parse_decimal(v)),
}


def row_prefix(form: BillForm, seq: int) -> str:
    return f"单据体实体【{form.entry_caption}】第【{seq}】行分录，" if seq else ""


def _not_in_system(spec: Field, value: Any) -> str:
    return f"字段“{spec.caption}”({spec.key})的值“{reference_text(value)}”在系统中不存在，或者未审核、已禁用"


def is_empty(value: Any) -> bool:
    # Kingdee's must-input rule treats 0 in a numeric field as not entered.
    return value is None or value == "" or (isinstance(value, Decimal) and value == 0)


# ------------------------------------------------------------------------------------------ amounts
def compute_amounts(form: BillForm, draft: Draft) -> None:
    """Row amounts and sub-head totals the way Kingdee derives them (see module docstring)."""
    k = form.k
    included = draft.head.get(k.included_tax) is not False
    totals = [Decimal(0), Decimal(0), Decimal(0)]
    for entry in draft.entries:
        fields = entry.fields
        _row_amounts(form, fields, included)
        totals[0] += fields[k.amount]
        totals[1] += fields[k.tax_amount]
        totals[2] += fields[k.all_amount]
    draft.head[k.bill_amount], draft.head[k.bill_tax_amount], draft.head[k.bill_all_amount] = totals


def _row_amounts(form: BillForm, fields: dict[str, Any], included: bool) -> None:
    k = form.k
    qty = fields.get(k.qty) or Decimal(0)
    rate = (fields.get(k.tax_rate) or Decimal(0)) / 100
    if fields.get(k.gift):
        fields[k.tax_price] = fields[k.price] = Decimal(0)
    if included:
        tax_price = fields.get(k.tax_price) or Decimal(0)
        all_amount = _round(qty * tax_price, _CENT)
        tax = _round(all_amount * rate / (1 + rate), _CENT)
        fields[k.price] = _round(tax_price / (1 + rate), _PRICE)
        fields[k.all_amount], fields[k.tax_amount] = all_amount, tax
        fields[k.amount] = all_amount - tax
    else:
        price = fields.get(k.price) or Decimal(0)
        amount = _round(qty * price, _CENT)
        tax = _round(amount * rate, _CENT)
        fields[k.tax_price] = _round(price * (1 + rate), _PRICE)
        fields[k.amount], fields[k.tax_amount] = amount, tax
        fields[k.all_amount] = amount + tax


def _round(value: Decimal, places: Decimal) -> Decimal:
    return value.quantize(places, rounding=ROUND_HALF_UP)


# ----------------------------------------------------------------------------- problems of the store
def duplicate_problem(draft: Draft) -> None:
    """The verbatim uniqueness error of a real server (spec §5, DUPERR)."""
    message = f"违反字段唯一性要求：编码唯一。[{draft.bill_no}]在当前系统中已经被使用。"
    draft.fail(RANK_UNIQUE, message, "FBillNo")


def fid_problem(draft: Draft) -> None:
    """An update of a bill the form does not have."""
    draft.fail(RANK_FID, f"FID为{draft.fid}的单据不存在，或者已被删除。", "FID")


def interaction_problem(draft: Draft, message: str) -> None:
    """An interaction the client did not answer (e.g. the negative-stock prompt), see ``envelopes``."""
    draft.fail(RANK_INTERACTION, message, None)


def ordered_problems(drafts: list[Draft]) -> list[Problem]:
    ranked = [p for d in drafts for p in d.problems]
    ranked.sort(key=lambda p: (p.rank, p.dindex, p.row))
    return [p.problem for p in ranked]
