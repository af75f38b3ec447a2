"""SAL_OUTSTOCK (销售出库单): reading a Model, Kingdee's defaults, must-input checks and amounts.

Decisions ([INF]/[?] points of spec §3, each one chosen to follow the real server where it is known):
- Field keys match case-insensitively (``FSETTLECURRID`` = ``FSettleCurrID``); the model layout is the
  real one: header keys, ``SubHeadEntity`` (object) and ``FEntity`` (array) at the top level of each Model.
- The form's metadata: the fields listed below (header, SubHeadEntity, FEntity), the other standard
  fields of spec §3.3 (``HEAD_STANDARD``/``SUBHEAD_STANDARD``/``ENTRY_STANDARD``: e.g. ``FSalesManID``,
  ``FExchangeTypeID``, the flex field ``FAuxPropId``, a row's ``FSerialSubEntity``/``FEntity_Link``),
  which are stored exactly as sent and can be queried, and the tenant's custom fields
  (``CustomFields``: the server's ``custom_fields`` option, by default ``F_ora_Text_ysdh`` and
  ``F_ora_Text_ckdh`` on the header, what the user's tenant has), stored and queried the same way.
- A key a Model sends that is not in the metadata of the entity it is sent in (a misspelt or foreign
  key, a custom field the tenant does not have, a header field inside ``SubHeadEntity`` or a row, a
  sub-head field such as ``FSettleCurrID`` at the top level, ``FEntity`` nested inside
  ``SubHeadEntity``) fails that bill as a whole, before any other check: one error per unknown key,
  FieldName = the key as sent, Message ``元数据中标识为X的字段不存在`` (the MsgCode 9 text of spec §4.3),
  the bill's DIndex; the other bills of the batch are saved or refused on their own, and the answer's
  MsgCode is 9 (``server``). [INF: the real server maps the JSON onto the form's metadata before it
  validates, so an unknown field refuses that bill's packet; keeping it silently would let a client's
  misspelt key pass here and fail in production.] ``FEntity`` that is not an array counts as no rows.
- Base data is looked up by ``FNumber`` (any key case), else ``FName``, else an id key (``FID``,
  ``FMasterId``, the form's id key); a bare number/string is read as the internal id, as the real server
  does. Only enabled records are found: a disabled one (FForbidStatus ``B``) counts as not existing
  (spec §3.1 "禁用也是不存在"). Organisation-controlled base data (``master``) is looked up among the
  records of the organisation the bill uses it in: FCustomerID (and FReceiverID/FSettleID/FPayerID) in
  FSaleOrgId, FMaterialID and FStockID in FStockOrgId; a number whose records all belong to other
  organisations is not found there [INF: the lookup of a real multi-organisation tenant is filtered by
  the field's organisation]. When that organisation field is empty itself, any organisation's record
  is found (its own must-input error names the cause, once). A missing, empty, unknown, disabled or
  not-usable reference leaves the field empty, so required fields fail the must-input check with the
  verbatim formats ``字段“客户”是必填项`` (header and SubHeadEntity) and
  ``单据体实体【明细信息】第【n】行分录，【物料编码】字段必录`` (rows); FieldName is the field key.
- Required: FBillTypeID, FDate, FSaleOrgId, FCustomerID, FStockOrgId, FOwnerIdHead,
  SubHeadEntity.FSettleCurrID, SubHeadEntity.FSettleOrgID; per row FMaterialID, FUnitID, FRealQty,
  FStockID, FStockStatusID, FOwnerID, and FLot for a batch-managed material. FBillTypeID, FDate,
  FOwnerIdHead, FUnitID, FStockStatusID and FOwnerID are defaulted (below), as the bill template does, so
  they fail only when sent with a value that matches nothing (an unknown bill type stays refused) or
  when what they default from is empty. The unit is derived
  from the material, so a row with an empty material reports the material alone, not also its unit
  [INF: one message per cause, as the spec's captured errors show].
- Defaults, only when the key is not sent at all (a key sent with an unknown number stays empty, as
  when Kingdee applies the JSON value after the field's change events): FBillTypeID ``XSCKD01_SYS``
  (标准销售出库单), FDate today (the server's local date), FOwnerTypeIdHead ``BD_OwnerOrg``,
  FOwnerIdHead = FStockOrgId, FReceiverID/FSettleID/FPayerID = FCustomerID, FBussinessType ``NORMAL``,
  SubHeadEntity FLocalCurrID = FSettleCurrID, FExchangeRate 1, FIsIncludedTax true,
  FIsPriceExcludeTax true; per row FRowType ``Standard``, FUnitID = the material's base unit (``Pcs``),
  FStockStatusID ``KCZT01_SYS``, FOwnerTypeID ``BD_OwnerOrg``, FOwnerID = FOwnerIdHead, FKeeperTypeID
  ``BD_KeeperOrg``, FKeeperID = FStockOrgId, FEntryTaxRate 13 (%), FIsFree false, FMustQty 0.
- FRealQty: 0 (or missing) fails the must-input check like any empty numeric field; a negative quantity
  fails with ``单据体实体【明细信息】第【n】行分录，【实发数量】不能小于0`` (returns use SAL_RETURNSTOCK).
- Lots: a batch-managed material (BD_MATERIAL.FIsBatchManage) needs FLot; the lot (per material and
  number) is created in BD_BatchMainFile when the bill is saved. A non-batch material ignores FLot.
  FLot is written ``{"FNumber": "<lot no>"}`` (spec §3.2). Anything else (a bare ``"20250822"``,
  ``{"FLOTID": n}``) names an existing lot by its internal id, like any base-data field: a lot number sent
  bare is no lot's id, so the lot stays empty and the batch-managed row fails the must-input check
  ``单据体实体【明细信息】第【n】行分录，【批号】字段必录`` (FieldName ``FLot``; with IsVerifyBaseDataField also
  ``字段“批号”(FLot)的值“20250822”在系统中不存在，或者未审核、已禁用``). The id of an existing lot of that
  material is accepted.
- Owner type picks the owner's form: BD_OwnerOrg → ORG_Organizations, BD_Customer → BD_Customer,
  anything else (BD_Supplier) → no seeded records, so the owner stays empty.
- Values: decimals are exact (JSON numbers or strings; ``""`` is 0); a string that is not a number fails
  with ``输入字符串的格式不正确。``. Booleans: JSON bools, ``"true"/"false"`` in any case, 1/0. Dates:
  ``yyyy-MM-dd``, ``yyyy/MM/dd``, optionally with `` HH:mm[:ss[.fff]]`` or ``T``; FDate, FProduceDate
  and FExpiryDate are date fields, so the time is dropped (queries return ``2024-12-04T00:00:00``). A
  value that cannot be converted (e.g. ``0000-00-00 00:00:00``) fails the bill, FieldName = the key,
  ``字段“生产日期”(FProduceDate)的值“…”转换失败：该字符串未被识别为有效的 DateTime。`` (rows prefixed
  ``单据体实体【明细信息】第【n】行分录，``). A Model element that is not an object fails with
  ``Model中第n个数据包不是JSON对象。``.
- Amounts are computed and any sent FAmount/FAllAmount/FEntryTaxAmount is overwritten, with r =
  FEntryTaxRate/100 and half-up rounding: tax-inclusive (default) FAllAmount = round(FRealQty × FTaxPrice,
  2), FEntryTaxAmount = round(FAllAmount × r / (1 + r), 2), FAmount = FAllAmount − FEntryTaxAmount,
  FPrice = round(FTaxPrice / (1 + r), 6); with SubHeadEntity.FIsIncludedTax false the same from FPrice
  (FAmount = round(FRealQty × FPrice, 2), FEntryTaxAmount = round(FAmount × r, 2)). A free row
  (FIsFree) has prices and amounts 0. SubHeadEntity FBillAmount/FBillTaxAmount/FBillAllAmount are the
  row sums. FDiscountRate and other pricing keys are stored but not applied.
- ``ValidateFlag`` false skips the must-input, lot, quantity and row-count checks (the bill is saved with
  empty fields); value conversion errors and the FBillNo uniqueness check always apply.
- ``IsVerifyBaseDataField`` true adds, for each non-empty reference that matches no usable record,
  ``字段“物料编码”(FMaterialID)的值“X”在系统中不存在，或者未审核、已禁用`` (text [?]); rows are prefixed
  ``单据体实体【明细信息】第【n】行分录，``.
- ``FID`` other than 0 asks for an update, which the emulator does not do: the bill fails with
  ``FID为n的单据不存在，或者已被删除。`` or, for a stored bill,
  ``FID为n的单据已存在，模拟器只支持新增单据（FID=0）。``
  FEntryID values sent on rows of a new bill are ignored.
- Errors of a batch are ordered by rule, then by DIndex, then by row (the real grouping of BATCHERR).
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from .envelopes import Problem
from .master import BILL_TYPE_FORM, DEFAULT_STOCK_STATUS, LOT_FORM, STOCK_STATUS_FORM, MasterData, usable
from .schema import Field, Kind, field_index
from .wire import decimal_text, lower_keys

FORM_ID = "SAL_OUTSTOCK"
FORM_NAME = "销售出库单"
ENTRY_KEY = "FEntity"
ENTRY_CAPTION = "明细信息"
SUBHEAD_KEY = "SubHeadEntity"
ORG_FORM = "ORG_Organizations"
DEFAULT_TAX_RATE = Decimal("13")
DEFAULT_BILL_TYPE = "XSCKD01_SYS"  # 标准销售出库单, the template's own type
_CENT = Decimal("0.01")
_PRICE = Decimal("0.000001")

HEAD_FIELDS: tuple[Field, ...] = (
    Field("FID", "实体主键", Kind.INT),
    Field("FBillTypeID", "单据类型", Kind.BASE, "BOS_BillType"),
    Field("FBillNo", "单据编号", Kind.TEXT),
    Field("FDate", "日期", Kind.DATE),
    Field("FDocumentStatus", "单据状态", Kind.ENUM),
    Field("FSaleOrgId", "销售组织", Kind.BASE, ORG_FORM),
    Field("FCustomerID", "客户", Kind.BASE, "BD_Customer"),
    Field("FStockOrgId", "发货组织", Kind.BASE, ORG_FORM),
    Field("FSaleDeptID", "销售部门", Kind.BASE, "BD_Department"),
    Field("FDeliveryDeptID", "发货部门", Kind.BASE, "BD_Department"),
    Field("FReceiverID", "收货方", Kind.BASE, "BD_Customer"),
    Field("FSettleID", "结算方", Kind.BASE, "BD_Customer"),
    Field("FPayerID", "付款方", Kind.BASE, "BD_Customer"),
    Field("FOwnerTypeIdHead", "货主类型", Kind.ENUM),
    Field("FOwnerIdHead", "货主", Kind.BASE, ORG_FORM),
    Field("FBussinessType", "业务类型", Kind.ENUM),
    Field("FNote", "备注", Kind.TEXT),
    Field("FReceiveAddress", "收货方地址", Kind.TEXT),
    Field("FLinkMan", "收货方联系人", Kind.TEXT),
    Field("FLinkPhone", "收货方联系电话", Kind.TEXT),
    Field("FCarriageNO", "运输单号", Kind.TEXT),
    Field("FCreateDate", "创建日期", Kind.DATE),
    Field("FModifyDate", "最后修改日期", Kind.DATE),
    Field("FApproveDate", "审核日期", Kind.DATE),
)
SUBHEAD_FIELDS: tuple[Field, ...] = (
    Field("FSettleCurrID", "结算币别", Kind.BASE, "BD_Currency"),
    Field("FSettleOrgID", "结算组织", Kind.BASE, ORG_FORM),
    Field("FLocalCurrID", "本位币", Kind.BASE, "BD_Currency"),
    Field("FExchangeRate", "汇率", Kind.DECIMAL),
    Field("FIsIncludedTax", "是否含税", Kind.BOOL),
    Field("FIsPriceExcludeTax", "价外税", Kind.BOOL),
    Field("FBillAmount", "金额", Kind.DECIMAL),
    Field("FBillTaxAmount", "税额", Kind.DECIMAL),
    Field("FBillAllAmount", "价税合计", Kind.DECIMAL),
)
ENTRY_FIELDS: tuple[Field, ...] = (
    Field("FEntryID", "实体主键", Kind.INT),
    Field("FSeq", "序号", Kind.INT),
    Field("FRowType", "产品类型", Kind.ENUM),
    Field("FMaterialID", "物料编码", Kind.BASE, "BD_MATERIAL"),
    Field("FUnitID", "库存单位", Kind.BASE, "BD_UNIT"),
    Field("FMustQty", "应发数量", Kind.DECIMAL),
    Field("FRealQty", "实发数量", Kind.DECIMAL),
    Field("FPrice", "单价", Kind.DECIMAL),
    Field("FTaxPrice", "含税单价", Kind.DECIMAL),
    Field("FIsFree", "是否赠品", Kind.BOOL),
    Field("FEntryTaxRate", "税率(%)", Kind.DECIMAL),
    Field("FEntryTaxAmount", "税额", Kind.DECIMAL),
    Field("FAmount", "金额", Kind.DECIMAL),
    Field("FAllAmount", "价税合计", Kind.DECIMAL),
    Field("FLot", "批号", Kind.BASE, LOT_FORM),
    Field("FProduceDate", "生产日期", Kind.DATE),
    Field("FExpiryDate", "有效期至", Kind.DATE),
    Field("FOwnerTypeID", "货主类型", Kind.ENUM),
    Field("FOwnerID", "货主", Kind.BASE, ORG_FORM),
    Field("FKeeperTypeID", "保管者类型", Kind.ENUM),
    Field("FKeeperID", "保管者", Kind.BASE, ORG_FORM),
    Field("FStockID", "仓库", Kind.BASE, "BD_STOCK"),
    Field("FStockStatusID", "库存状态", Kind.BASE, STOCK_STATUS_FORM),
    Field("FMtoNo", "计划跟踪号", Kind.TEXT),
    Field("FEntrynote", "备注", Kind.TEXT),
)
FIELD_BY_KEY = field_index(HEAD_FIELDS + SUBHEAD_FIELDS)  # header and sub-head share one namespace
ENTRY_FIELD_BY_KEY = field_index(ENTRY_FIELDS)
_HEAD_ONLY = field_index(HEAD_FIELDS)
_SUBHEAD_ONLY = field_index(SUBHEAD_FIELDS)

# Standard fields of the form (spec §3.3) that the emulator keeps as sent, without meaning; with the
# fields above and the tenant's custom fields they are the form's metadata. Lower-cased.
HEAD_STANDARD = frozenset(
    k.lower()
    for k in (
        "FStockerGroupID",
        "FStockerID",
        "FSalesGroupID",
        "FSalesManID",
        "FCarrierID",
        "FHeadLocationId",
        "FCorrespondOrgId",
        "FReceiverContactID",
        "FCDateOffsetValue",
        "FIsTotalServiceOrCost",
    )
)
SUBHEAD_STANDARD = frozenset(
    k.lower()
    for k in (
        "FSettleTypeID",
        "FReceiptConditionID",
        "FPriceListId",
        "FDiscountListId",
        "FExchangeTypeID",
        "FThirdBillNo",
        "FThirdBillId",
        "FThirdSrcType",
    )
)
ENTRY_STANDARD = frozenset(
    k.lower()
    for k in (
        "FInventoryQty",
        "FParentMatId",
        "FDisPriceQty",
        "FBomID",
        "FAuxUnitQty",
        "FExtAuxUnitId",
        "FExtAuxUnitQty",
        "FStockLocId",
        "FQualifyType",
        "FDiscountRate",
        "FActQty",
        "FSalUnitID",
        "FSALUNITQTY",
        "FSALBASEQTY",
        "FPRICEBASEQTY",
        "FOUTCONTROL",
        "FARNOTJOINQTY",
        "FQmEntryID",
        "FConvertEntryID",
        "FSOEntryId",
        "FThirdEntryId",
        "FBeforeDisPriceQty",
        "FSignQty",
        "FAuxPropId",
        "FSrcBillNo",
        "FSrcType",
        # sub-entities of a row (serial numbers, link table, tax details)
        "FSerialSubEntity",
        "FEntity_Link",
        "FTaxDetailSubEntity",
    )
)
# The custom fields of the user's tenant (include/schemes/sales_outstock.yaml), on the header.
DEFAULT_CUSTOM_FIELDS = ("F_ora_Text_ysdh", "F_ora_Text_ckdh")
MSG_UNKNOWN_FIELD = "元数据中标识为{}的字段不存在"


@dataclass(frozen=True)
class CustomFields:
    """The tenant's custom fields (扩展字段), lower-cased keys per entity."""

    head: frozenset[str] = frozenset()
    subhead: frozenset[str] = frozenset()
    entry: frozenset[str] = frozenset()

    @staticmethod
    def parse(specs: Any) -> CustomFields:
        """``F_x`` (header), ``SubHeadEntity.F_x`` or ``FEntity.F_x``; a string is comma-separated."""
        items = specs.split(",") if isinstance(specs, str) else list(specs)
        found: dict[str, set[str]] = {"": set(), SUBHEAD_KEY.lower(): set(), ENTRY_KEY.lower(): set()}
        for item in (str(i).strip() for i in items):
            if not item:
                continue
            entity, _, key = item.rpartition(".")
            if entity.lower() not in found or not key.strip():
                raise ValueError(f"custom field {item!r}: write KEY, SubHeadEntity.KEY or FEntity.KEY")
            found[entity.lower()].add(key.strip().lower())
        return CustomFields(
            frozenset(found[""]), frozenset(found[SUBHEAD_KEY.lower()]), frozenset(found[ENTRY_KEY.lower()])
        )

    def head_keys(self) -> frozenset[str]:
        """Keys a query may name without an entity: header and sub-head, standard and custom."""
        return HEAD_STANDARD | SUBHEAD_STANDARD | self.head | self.subhead

    def entry_keys(self) -> frozenset[str]:
        return ENTRY_STANDARD | self.entry


DEFAULT_CUSTOM = CustomFields.parse(DEFAULT_CUSTOM_FIELDS)
# Set by the server, whatever the client sends.
_SYSTEM = {
    "fid",
    "fdocumentstatus",
    "fcreatedate",
    "fmodifydate",
    "fapprovedate",
    "fbillamount",
    "fbilltaxamount",
    "fbillallamount",
    "fentryid",
    "fseq",
    "famount",
    "fallamount",
    "fentrytaxamount",
}

HEAD_REQUIRED = (
    "FBillTypeID",
    "FDate",
    "FSaleOrgId",
    "FCustomerID",
    "FStockOrgId",
    "FOwnerIdHead",
    "FSettleCurrID",
    "FSettleOrgID",
)
ENTRY_REQUIRED = ("FMaterialID", "FUnitID", "FRealQty", "FStockID", "FStockStatusID", "FOwnerID")
# Organisation-controlled base data is looked up among the records of the organisation the bill uses
# it in: customers in the sales organisation, materials and stocks in the stock organisation.
_ORG_OF = {
    "fcustomerid": "FSaleOrgId",
    "freceiverid": "FSaleOrgId",
    "fsettleid": "FSaleOrgId",
    "fpayerid": "FSaleOrgId",
    "fmaterialid": "FStockOrgId",
    "fstockid": "FStockOrgId",
}
_OWNER_FORMS = {"bd_ownerorg": ORG_FORM, "bd_customer": "BD_Customer", "bd_supplier": "BD_Supplier"}

# Rank of each rule in the error list: errors are grouped by rule, as the real server does.
_RANK_METADATA, _RANK_CONVERT, _RANK_FID, _RANK_VERIFY = -1, 0, 1, 2
_RANK_HEAD = 10
_RANK_NO_ROWS = 30
_RANK_ENTRY = 40
_RANK_LOT, _RANK_NEGATIVE, _RANK_UNIQUE, _RANK_INTERACTION = 60, 61, 90, 95


@dataclass(frozen=True)
class SaveOptions:
    """The ``data`` options of spec §3.1 that change what the emulator does."""

    validate: bool = True  # ValidateFlag
    verify_base_data: bool = False  # IsVerifyBaseDataField
    auto_audit: bool = False  # IsAutoSubmitAndAudit
    need_return_fields: tuple[str, ...] = ()


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

    def fail(self, rank: int, message: str, field_name: str | None, row: int = 0) -> None:
        self.problems.append(RankedProblem(rank, self.dindex, row, Problem(message, field_name, self.dindex)))

    def unknown(self, key: Any) -> None:
        self.unknown_keys.setdefault(str(key).lower(), str(key))

    @property
    def bill_no(self) -> str:
        return str(self.head.get("FBillNo") or "")


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
) -> tuple[dict[str, Any] | None, bool]:
    """(``{"Id", "Number"}`` or None, whether a non-empty reference matched nothing usable).

    Only enabled records count, and for organisation-controlled base data only the record of the use
    organisation ``org`` (an ORG_Organizations id; None: any organisation), see ``master.usable``."""
    if value is None or value == "" or value == {}:
        return None, False
    form = master.form(form_id)
    if form is None:
        return None, not _is_blank_reference(value)
    record = next((r for r in _candidates(master, form_id, form.id_key, value) if usable(r, org)), None)
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
    """Turns one Model object into a Draft: values, references, defaults, checks."""

    def __init__(self, master: MasterData, options: SaveOptions, custom: CustomFields = DEFAULT_CUSTOM) -> None:
        self.master = master
        self.options = options
        self.custom = custom

    def read(self, model: Any, dindex: int) -> Draft:
        draft = Draft(dindex)
        if not isinstance(model, dict):
            draft.fail(_RANK_CONVERT, f"Model中第{dindex + 1}个数据包不是JSON对象。", None)
            return draft
        sent_head: set[str] = set()
        rows: Any = None
        later: list[tuple[Field, Any]] = []
        for key, value in model.items():
            lower = str(key).lower()
            if lower == SUBHEAD_KEY.lower():
                self._read_subhead(draft, value, sent_head)
            elif lower == ENTRY_KEY.lower():
                rows = value
            elif lower == "fid":
                draft.fid = self._read_fid(draft, value)
            elif lower == "fowneridhead" or (lower in _ORG_OF and lower in _HEAD_ONLY):
                # the owner's form depends on FOwnerTypeIdHead; a customer is looked up in FSaleOrgId
                later.append((_HEAD_ONLY[lower], value))
            elif lower in _HEAD_ONLY:
                self._set_head(draft, _HEAD_ONLY[lower], value, sent_head)
            elif lower in HEAD_STANDARD or lower in self.custom.head:
                draft.extra[str(key)] = value
            else:
                draft.unknown(key)
        for spec, value in later:
            self._set_head(draft, spec, value, sent_head)
        self._default_head(draft, sent_head)
        for seq, row in enumerate(rows if isinstance(rows, list) else [], start=1):
            draft.entries.append(self._read_row(draft, row, seq))
        if draft.unknown_keys:  # the packet does not fit the form's metadata: nothing else is checked
            draft.problems = [
                RankedProblem(_RANK_METADATA, dindex, 0, Problem(MSG_UNKNOWN_FIELD.format(key), key, dindex))
                for key in draft.unknown_keys.values()
            ]
            return draft
        compute_amounts(draft)
        if self.options.validate:
            self._check(draft)
        return draft

    # -- header ---------------------------------------------------------------------------------
    def _read_fid(self, draft: Draft, value: Any) -> int:
        try:
            fid = parse_decimal(value)
        except ConversionError as exc:
            draft.fail(_RANK_CONVERT, str(exc), "FID")
            return 0
        return int(fid)

    def _read_subhead(self, draft: Draft, value: Any, sent: set[str]) -> None:
        if not isinstance(value, dict):
            return  # the one-to-one sub-head is an object; anything else carries no fields
        for key, item in value.items():
            lower = str(key).lower()
            if lower in _SUBHEAD_ONLY:
                self._set_head(draft, _SUBHEAD_ONLY[lower], item, sent)
            elif lower in SUBHEAD_STANDARD or lower in self.custom.subhead:
                draft.sub_extra[str(key)] = item
            else:
                draft.unknown(key)  # FEntity included: the rows are not part of the sub-head

    def _set_head(self, draft: Draft, spec: Field, value: Any, sent: set[str]) -> None:
        if spec.key.lower() in _SYSTEM:
            return
        sent.add(spec.key)
        draft.head[spec.key] = self._convert(
            draft, spec, value, self._ref_form(spec, draft.head), row=0, org=_org_id(spec, draft.head)
        )

    def _default_head(self, draft: Draft, sent: set[str]) -> None:
        head = draft.head
        defaults: dict[str, Any] = {
            "FBillTypeID": self._preset(BILL_TYPE_FORM, DEFAULT_BILL_TYPE),
            "FDate": _dt.date.today().isoformat() + "T00:00:00",
            "FOwnerTypeIdHead": "BD_OwnerOrg",
            "FOwnerIdHead": head.get("FStockOrgId"),
            "FReceiverID": head.get("FCustomerID"),
            "FSettleID": head.get("FCustomerID"),
            "FPayerID": head.get("FCustomerID"),
            "FBussinessType": "NORMAL",
            "FLocalCurrID": head.get("FSettleCurrID"),
            "FExchangeRate": Decimal(1),
            "FIsIncludedTax": True,
            "FIsPriceExcludeTax": True,
        }
        for key, value in defaults.items():
            if key not in sent:
                head[key] = value

    # -- rows -----------------------------------------------------------------------------------
    def _read_row(self, draft: Draft, row: Any, seq: int) -> DraftEntry:
        entry = DraftEntry(fields={"FSeq": seq}, extra={})
        if not isinstance(row, dict):
            draft.fail(_RANK_CONVERT, f"{_row_prefix(seq)}数据包不是JSON对象。", ENTRY_KEY, seq)
            return entry
        sent: set[str] = set()
        lot_value: Any = None
        owner: list[tuple[Field, Any]] = []
        for key, value in row.items():
            lower = str(key).lower()
            spec = ENTRY_FIELD_BY_KEY.get(lower)
            if spec is None:
                if lower in ENTRY_STANDARD or lower in self.custom.entry:
                    entry.extra[str(key)] = value
                else:
                    draft.unknown(key)
            elif spec.key == "FLot":
                lot_value = value  # read once the material is known
            elif spec.key == "FOwnerID":
                owner.append((spec, value))  # its form depends on FOwnerTypeID
            elif spec.key.lower() not in _SYSTEM:
                sent.add(spec.key)
                entry.fields[spec.key] = self._convert(
                    draft, spec, value, spec.ref_form, row=seq, org=_org_id(spec, draft.head)
                )
        for spec, value in owner:
            sent.add(spec.key)
            form = self._ref_form(spec, entry.fields)
            entry.fields[spec.key] = self._convert(draft, spec, value, form, row=seq)
        self._default_row(draft, entry, sent)
        self._read_lot(draft, entry, lot_value)
        return entry

    def _default_row(self, draft: Draft, entry: DraftEntry, sent: set[str]) -> None:
        fields, head = entry.fields, draft.head
        material = self._material(entry)
        defaults: dict[str, Any] = {
            "FRowType": "Standard",
            "FUnitID": dict(material["FBaseUnitId"]) if material else None,
            "FStockStatusID": self._preset(STOCK_STATUS_FORM, DEFAULT_STOCK_STATUS),
            "FOwnerTypeID": "BD_OwnerOrg",
            "FOwnerID": head.get("FOwnerIdHead"),
            "FKeeperTypeID": "BD_KeeperOrg",
            "FKeeperID": head.get("FStockOrgId"),
            "FEntryTaxRate": DEFAULT_TAX_RATE,
            "FIsFree": False,
            "FMustQty": Decimal(0),
            "FRealQty": Decimal(0),
            "FTaxPrice": Decimal(0),
            "FPrice": Decimal(0),
        }
        for key, value in defaults.items():
            if key not in sent:
                fields[key] = value

    def _read_lot(self, draft: Draft, entry: DraftEntry, value: Any) -> None:
        material = self._material(entry)
        entry.fields["FLot"] = None
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
        if lot is not None and lot["FMaterialID"]["Id"] == entry.fields["FMaterialID"]["Id"]:
            entry.lot_number = lot["FNumber"]
        elif (unknown or lot is not None) and self.options.verify_base_data:
            spec = ENTRY_FIELD_BY_KEY["flot"]
            draft.fail(
                _RANK_VERIFY,
                _row_prefix(entry.fields["FSeq"]) + _not_in_system(spec, value),
                spec.key,
                entry.fields["FSeq"],
            )

    def _material(self, entry: DraftEntry) -> dict[str, Any] | None:
        ref = entry.fields.get("FMaterialID")
        return self.master.get("BD_MATERIAL", ref["Id"]) if ref else None

    def _preset(self, form_id: str, number: str) -> dict[str, Any] | None:
        record = self.master.find(form_id, number)
        return self.master.ref(form_id, record).as_json() if record else None

    # -- values ---------------------------------------------------------------------------------
    @staticmethod
    def _ref_form(spec: Field, siblings: dict[str, Any]) -> str | None:
        if spec.key in ("FOwnerIdHead", "FOwnerID"):
            owner_type = siblings.get("FOwnerTypeIdHead" if spec.key == "FOwnerIdHead" else "FOwnerTypeID")
            return _OWNER_FORMS.get(str(owner_type or "BD_OwnerOrg").lower(), str(owner_type))
        return spec.ref_form

    def _convert(self, draft: Draft, spec: Field, value: Any, ref_form: str | None, row: int, org: Any = None) -> Any:
        try:
            if spec.kind is Kind.BASE:
                ref, unknown = resolve_reference(self.master, ref_form or "", value, org)
                if ref is not None and ref_form != spec.ref_form:
                    ref["Form"] = ref_form  # an owner of another type: remember where it lives
                if unknown and self.options.verify_base_data:
                    draft.fail(_RANK_VERIFY, _row_prefix(row) + _not_in_system(spec, value), spec.key, row)
                return ref
            return _CONVERTERS[spec.kind](value)
        except ConversionError as exc:
            draft.fail(
                _RANK_CONVERT,
                _row_prefix(row) + f"字段“{spec.caption}”({spec.key})的值“{reference_text(value)}”转换失败：{exc}",
                spec.key,
                row,
            )
            return None

    # -- checks ---------------------------------------------------------------------------------
    def _check(self, draft: Draft) -> None:
        for rank, key in enumerate(HEAD_REQUIRED, start=_RANK_HEAD):
            if _is_empty(draft.head.get(key)):
                draft.fail(rank, f"字段“{FIELD_BY_KEY[key.lower()].caption}”是必填项", key)
        if not draft.entries:
            draft.fail(_RANK_NO_ROWS, f"单据体实体【{ENTRY_CAPTION}】至少需要录入一行分录", ENTRY_KEY)
        for entry in draft.entries:
            self._check_row(draft, entry)

    def _check_row(self, draft: Draft, entry: DraftEntry) -> None:
        seq = entry.fields["FSeq"]
        for rank, key in enumerate(ENTRY_REQUIRED, start=_RANK_ENTRY):
            if key == "FUnitID" and entry.fields.get("FMaterialID") is None:
                continue  # the unit comes from the material: an empty material is reported once, as itself
            if _is_empty(entry.fields.get(key)):
                draft.fail(rank, _must_input_row(seq, key), key, seq)
        material = self._material(entry)
        if material and material.get("FIsBatchManage") and not entry.lot_number:
            draft.fail(_RANK_LOT, _must_input_row(seq, "FLot"), "FLot", seq)
        qty = entry.fields.get("FRealQty")
        if isinstance(qty, Decimal) and qty < 0:
            draft.fail(_RANK_NEGATIVE, f"{_row_prefix(seq)}【实发数量】不能小于0", "FRealQty", seq)


_CONVERTERS = {
    Kind.TEXT: parse_text,
    Kind.ENUM: parse_text,
    Kind.DECIMAL: parse_decimal,
    Kind.BOOL: parse_bool,
    Kind.DATE: parse_date,
    Kind.INT: lambda v: int(parse_decimal(v)),
}


def _org_id(spec: Field, head: dict[str, Any]) -> Any:
    """The organisation (id) whose records ``spec`` is looked up in; None: any (or none sent yet)."""
    org_field = _ORG_OF.get(spec.key.lower())
    org = head.get(org_field) if org_field else None
    return org["Id"] if org else None


def _not_in_system(spec: Field, value: Any) -> str:
    return f"字段“{spec.caption}”({spec.key})的值“{reference_text(value)}”在系统中不存在，或者未审核、已禁用"


def _row_prefix(seq: int) -> str:
    return f"单据体实体【{ENTRY_CAPTION}】第【{seq}】行分录，" if seq else ""


def _must_input_row(seq: int, key: str) -> str:
    return f"{_row_prefix(seq)}【{ENTRY_FIELD_BY_KEY[key.lower()].caption}】字段必录"


def _is_empty(value: Any) -> bool:
    # Kingdee's must-input rule treats 0 in a numeric field as not entered.
    return value is None or value == "" or (isinstance(value, Decimal) and value == 0)


# ------------------------------------------------------------------------------------------ amounts
def compute_amounts(draft: Draft) -> None:
    """Row amounts and header totals the way Kingdee derives them (see module docstring)."""
    included = draft.head.get("FIsIncludedTax") is not False
    totals = [Decimal(0), Decimal(0), Decimal(0)]
    for entry in draft.entries:
        _row_amounts(entry.fields, included)
        totals[0] += entry.fields["FAmount"]
        totals[1] += entry.fields["FEntryTaxAmount"]
        totals[2] += entry.fields["FAllAmount"]
    draft.head["FBillAmount"], draft.head["FBillTaxAmount"], draft.head["FBillAllAmount"] = totals


def _row_amounts(fields: dict[str, Any], included: bool) -> None:
    qty = fields.get("FRealQty") or Decimal(0)
    rate = (fields.get("FEntryTaxRate") or Decimal(0)) / 100
    if fields.get("FIsFree"):
        fields["FTaxPrice"] = fields["FPrice"] = Decimal(0)
    if included:
        tax_price = fields.get("FTaxPrice") or Decimal(0)
        all_amount = _round(qty * tax_price, _CENT)
        tax = _round(all_amount * rate / (1 + rate), _CENT)
        fields["FPrice"] = _round(tax_price / (1 + rate), _PRICE)
        fields["FAllAmount"], fields["FEntryTaxAmount"] = all_amount, tax
        fields["FAmount"] = all_amount - tax
    else:
        price = fields.get("FPrice") or Decimal(0)
        amount = _round(qty * price, _CENT)
        tax = _round(amount * rate, _CENT)
        fields["FTaxPrice"] = _round(price * (1 + rate), _PRICE)
        fields["FAmount"], fields["FEntryTaxAmount"] = amount, tax
        fields["FAllAmount"] = amount + tax


def _round(value: Decimal, places: Decimal) -> Decimal:
    return value.quantize(places, rounding=ROUND_HALF_UP)


def duplicate_problem(draft: Draft) -> None:
    """The verbatim uniqueness error of a real server (spec §5, DUPERR)."""
    message = f"违反字段唯一性要求：编码唯一。[{draft.bill_no}]在当前系统中已经被使用。"
    draft.fail(_RANK_UNIQUE, message, "FBillNo")


def fid_problem(draft: Draft, exists: bool) -> None:
    if exists:
        message = f"FID为{draft.fid}的单据已存在，模拟器只支持新增单据（FID=0）。"
    else:
        message = f"FID为{draft.fid}的单据不存在，或者已被删除。"
    draft.fail(_RANK_FID, message, "FID")


def interaction_problem(draft: Draft, message: str) -> None:
    """An interaction the client did not answer (e.g. the negative-stock prompt), see ``envelopes``."""
    draft.fail(_RANK_INTERACTION, message, None)


def ordered_problems(drafts: list[Draft]) -> list[Problem]:
    ranked = [p for d in drafts for p in d.problems]
    ranked.sort(key=lambda p: (p.rank, p.dindex, p.row))
    return [p.problem for p in ranked]
