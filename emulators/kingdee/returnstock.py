"""SAL_RETURNSTOCK (销售退货单): the form's definition (kingdee-returnstock-instock.md §2, §5, §6).

How a Model is read, checked and priced is the same for every bill form (``bills``); links are checked
by ``links``. Decisions ([INF]/[UNCONFIRMED] points of the spec):
- Layout (spec §2.1): header keys, ``SubHeadEntity`` (财务信息, an object) and ``FEntity`` (明细信息, an
  array) at the top level; ``SAL_RETURNSTOCK__SubHeadEntity``/``SAL_RETURNSTOCK__FEntity`` are taken as
  aliases (one client writes them, spec §1). ``FEntity`` inside ``SubHeadEntity`` is an unknown sub-head
  field (MsgCode 9), as on SAL_OUTSTOCK. The field keys keep the template's spelling (``FRetcustId``,
  ``FMaterialId``, ``FStockId``, ``FStockstatusId``, ``FSettleCurrId``, ``FBaseunitQty``); any case is
  accepted, FieldNames and View use this spelling.
- Metadata: the fields below (spec §2.2-2.4 with the labels there; labels the spec marks [INF] are the
  ones used in messages) and the other template fields, kept as sent (``HEAD_STANDARD`` …). The system
  fields of a query config (§2.10: FCreatorId, FModifierId, FApproverId, FCancellerId) are not modelled.
  ``FIsIncludedTax``/``FIsPriceExcludeTax`` are accepted in ``SubHeadEntity`` (spec §8.4 unconfirmed:
  the return is priced like the stock-out, so the same switch applies). FThirdBillNo/FThirdBillId/
  FThirdSrcType are typed text fields of the sub-head (the recommended place of the WDT stock-in number).
- Required (spec §2.9, strong and likely [INF]): FBillTypeID, FDate, FSaleOrgId, FRetcustId
  (``字段“退货客户”是必填项``), FStockOrgId, FOwnerIdHead, SubHeadEntity.FSettleCurrId (结算币别),
  SubHeadEntity.FSettleOrgId (结算组织); per row FMaterialId, FUnitID, FRealQty, FReturnType
  (``【退货类型】字段必录``), FStockId (``【仓库】字段必录``), FStockstatusId, FOwnerId, and FLot for a
  batch-managed material.
- FReturnType (退货类型, assistant data of category ``THLX``: ``THLX01_SYS`` 退货, ``THLX02_SYS`` 退货补货) is
  **strict by default**: not defaulted, so a row without it fails the must-input check [INF: whether the
  server defaults it is unconfirmed (§2.5); refusing is the safe side — a client that omits it here is
  told, instead of failing in production]. The server option ``default_return_type`` (CLI
  ``--default-return-type THLX01_SYS``) makes it lenient: rows that do not send it get that value. A
  value of another category (a 退货原因 code) is not found. FReturnReason (header, category ``THYY``, the
  tenant's ``QT``/``PS``) is optional.
- Organisations: FRetcustId and FReceiveCustId/FSettleCustId/FPayCustId are looked up in FSaleOrgId,
  FMaterialId and FStockId in FStockOrgId.
- Defaults (spec §6.3), only for keys not sent: FBillTypeID ``XSTHD01_SYS`` 标准销售退货单, FDate today,
  FOwnerTypeIdHead ``BD_OwnerOrg``, FOwnerIdHead = FStockOrgId, FReceiveCustId/FSettleCustId/FPayCustId =
  FRetcustId, FCancelStatus ``A``; SubHeadEntity FLocalCurrId = FSettleCurrId, FExchangeRate 1,
  FIsIncludedTax true, FIsPriceExcludeTax true; per row FRowType ``Standard``, FUnitID = the material's
  base unit, FStockstatusId ``KCZT01_SYS``, FOwnerTypeId ``BD_OwnerOrg``, FOwnerId = FOwnerIdHead,
  FEntryTaxRate 13, FIsFree false, FSalUnitID = FUnitID, FSalUnitQty/FSalBaseQty/FPriceBaseQty/
  FBaseunitQty = FRealQty (every unit is the base unit ``Pcs``).
- Quantities are positive (spec §2.6): FRealQty 0 fails the must-input check ``【实退数量】字段必录`` (the
  generic rule for an empty numeric field), a negative one fails with
  ``单据体实体【明细信息】第【n】行分录，【实退数量】必须大于0`` — **invented text** (the server's is
  unconfirmed).
- Links (spec §2.7 a, §6.5): ``FEntity_Link`` rows with rule ``OutStock-SalReturnStock`` must name an
  existing SAL_OUTSTOCK (FSBillId = its FID, FSId = one of its FEntryIDs) row of the same material, and
  the quantity returned against a stock-out row over all saved returns may not exceed that row's FRealQty;
  see ``links`` for the (invented) messages. Other rule ids (``SaleOrder-SalReturnStock``,
  ``SalReturnNotice-SalReturnStock``) name forms the emulator does not have: their source is missing.
  Quantities are not written back to the stock-out, and Push is not emulated.
- Auto-numbers: ``XSTHD`` + 6 digits (``XSTHD000001``, the spec's §6.7 pattern [INF]); tenants often have
  their own rules (§1). Auditing receives the returned quantity into stock (``inventory``); a return
  never meets the negative-stock check (spec §2.6).
- Operations' messages name the form 销售退货单 (``单据编号为“X”的销售退货单，单据已经审核！``, §5); View
  answers the sub-head as ``SAL_RETURNSTOCKFIN`` and the rows as ``SAL_RETURNSTOCKENTRY`` [?].
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from .form import BILL_TOTALS, RECORD_DATES, ROW_AMOUNTS, ROW_KEYS, BillForm, HeadContext, LinkRule, RowContext
from .master import (
    ASSISTANT_DETAIL_FORM,
    BILL_TYPE_FORM,
    DEFAULT_STOCK_STATUS,
    LOT_FORM,
    ORG_FORM,
    STOCK_STATUS_FORM,
)
from .schema import Field, Kind

FORM_ID = "SAL_RETURNSTOCK"
DEFAULT_BILL_TYPE = "XSTHD01_SYS"  # 标准销售退货单
RETURN_TYPE_CATEGORY = "THLX"  # 退货类型
RETURN_REASON_CATEGORY = "THYY"  # 退货原因
LINK_KEY = "FEntity_Link"

HEAD_FIELDS: tuple[Field, ...] = (
    Field("FID", "实体主键", Kind.INT),
    Field("FBillTypeID", "单据类型", Kind.BASE, BILL_TYPE_FORM, FORM_ID),
    Field("FBillNo", "单据编号", Kind.TEXT),
    Field("FDate", "日期", Kind.DATE),
    Field("FDocumentStatus", "单据状态", Kind.ENUM),
    Field("FCancelStatus", "作废状态", Kind.ENUM),
    Field("FSaleOrgId", "销售组织", Kind.BASE, ORG_FORM),
    Field("FRetcustId", "退货客户", Kind.BASE, "BD_Customer"),
    Field("FSaledeptid", "销售部门", Kind.BASE, "BD_Department"),
    Field("FReturnReason", "退货原因", Kind.BASE, ASSISTANT_DETAIL_FORM, RETURN_REASON_CATEGORY),
    Field("FStockOrgId", "库存组织", Kind.BASE, ORG_FORM),
    Field("FStockDeptId", "库存部门", Kind.BASE, "BD_Department"),
    Field("FReceiveCustId", "收货方", Kind.BASE, "BD_Customer"),
    Field("FSettleCustId", "结算方", Kind.BASE, "BD_Customer"),
    Field("FPayCustId", "付款方", Kind.BASE, "BD_Customer"),
    Field("FOwnerTypeIdHead", "货主类型", Kind.ENUM),
    Field("FOwnerIdHead", "货主", Kind.BASE, ORG_FORM),
    Field("FHeadNote", "备注", Kind.TEXT),
    Field("FReceiveAddress", "收货方地址", Kind.TEXT),
    *RECORD_DATES,
)
SUBHEAD_FIELDS: tuple[Field, ...] = (
    Field("FSettleOrgId", "结算组织", Kind.BASE, ORG_FORM),
    Field("FSettleCurrId", "结算币别", Kind.BASE, "BD_Currency"),
    Field("FLocalCurrId", "本位币", Kind.BASE, "BD_Currency"),
    Field("FExchangeRate", "汇率", Kind.DECIMAL),
    Field("FIsIncludedTax", "是否含税", Kind.BOOL),
    Field("FIsPriceExcludeTax", "价外税", Kind.BOOL),
    Field("FThirdBillNo", "第三方单据编号", Kind.TEXT),
    Field("FThirdBillId", "第三方单据ID", Kind.TEXT),
    Field("FThirdSrcType", "第三方来源", Kind.TEXT),
    *BILL_TOTALS,
)
ENTRY_FIELDS: tuple[Field, ...] = (
    *ROW_KEYS,
    Field("FRowType", "行类型", Kind.ENUM),
    Field("FMaterialId", "物料编码", Kind.BASE, "BD_MATERIAL"),
    Field("FUnitID", "库存单位", Kind.BASE, "BD_UNIT"),
    Field("FRealQty", "实退数量", Kind.DECIMAL),
    Field("FPrice", "单价", Kind.DECIMAL),
    Field("FTaxPrice", "含税单价", Kind.DECIMAL),
    Field("FIsFree", "是否赠品", Kind.BOOL),
    Field("FEntryTaxRate", "税率%", Kind.DECIMAL),
    *ROW_AMOUNTS,
    Field("FReturnType", "退货类型", Kind.BASE, ASSISTANT_DETAIL_FORM, RETURN_TYPE_CATEGORY),
    Field("FOwnerTypeId", "货主类型", Kind.ENUM),
    Field("FOwnerId", "货主", Kind.BASE, ORG_FORM),
    Field("FStockId", "仓库", Kind.BASE, "BD_STOCK"),
    Field("FStockstatusId", "库存状态", Kind.BASE, STOCK_STATUS_FORM),
    Field("FLot", "批号", Kind.BASE, LOT_FORM),
    Field("FProduceDate", "生产日期", Kind.DATE),
    Field("FExpiryDate", "有效期至", Kind.DATE),
    Field("FDeliveryDate", "退货日期", Kind.DATE),
    Field("FMtoNo", "计划跟踪号", Kind.TEXT),
    Field("FNote", "备注", Kind.TEXT),
    Field("FSalUnitID", "销售单位", Kind.BASE, "BD_UNIT"),
    Field("FSalUnitQty", "销售单位数量", Kind.DECIMAL),
    Field("FSalBaseQty", "销售数量", Kind.DECIMAL),
    Field("FPriceBaseQty", "计价基本数量", Kind.DECIMAL),
    Field("FBaseunitQty", "基本单位数量", Kind.DECIMAL),
    Field("FSrcBillTypeID", "源单类型", Kind.TEXT),
    Field("FSrcBillNo", "源单编号", Kind.TEXT),
    Field("FOrderNo", "订单单号", Kind.TEXT),
)

# The template's other fields (spec §2.2-2.4), kept as sent.
HEAD_STANDARD = (
    "FHeadLocId",
    "FSaleGroupId",
    "FTransferBizType",
    "FCorrespondOrgId",
    "FSalesManId",
    "FStockerGroupId",
    "FStockerId",
    "FReceiveCusContact",
    "FBranchId",
    "FScanBox",
    "FCDateOffsetUnit",
    "FCDateOffsetValue",
    "FIsTotalServiceOrCost",
)
SUBHEAD_STANDARD = (
    "FExchangeTypeId",
    "FSettleTypeId",
    "FChageCondition",
    "FPriceListId",
    "FDiscountListId",
    "FEntryId",
)
ENTRY_STANDARD = (
    "FMapId",
    "FAuxpropId",
    "FInventoryQty",
    "FTaxCombination",
    "FDiscountRate",
    "FPriceDiscount",
    "FStocklocId",
    "FProjectNo",
    "FAuxUnitQty",
    "FExtAuxUnitId",
    "FExtAuxUnitQty",
    "FSalCostPrice",
    "FISCONSUMESUM",
    "FQualifyType",
    "FEOwnerSupplierId",
    "FIsOverLegalOrg",
    "FPriceListEntry",
    "FThirdEntryId",
    "FARNOTJOINQTY",
    "FIsReturnCheck",
    "FBOMId",
    "FParentMatId",
    "FESettleCustomerId",
    "FSOEntryId",
    "FBarcode",
    "FTaxNetPrice",
    "FETHIRDBILLNO",
    # sub-entities of a row (tax details, serial numbers, link table)
    "FTaxDetailSubEntity",
    "FSerialSubEntity",
    LINK_KEY,
)


def _head_defaults(c: HeadContext) -> dict[str, Any]:
    head = c.head
    return {
        "FBillTypeID": c.preset(BILL_TYPE_FORM, DEFAULT_BILL_TYPE),
        "FDate": c.today,
        "FCancelStatus": "A",
        "FOwnerTypeIdHead": "BD_OwnerOrg",
        "FOwnerIdHead": head.get("FStockOrgId"),
        "FReceiveCustId": head.get("FRetcustId"),
        "FSettleCustId": head.get("FRetcustId"),
        "FPayCustId": head.get("FRetcustId"),
        "FLocalCurrId": head.get("FSettleCurrId"),
        "FExchangeRate": Decimal(1),
        "FIsIncludedTax": True,
        "FIsPriceExcludeTax": True,
    }


def row_defaults(return_type: str | None) -> Any:
    """The row defaults; ``return_type``: FReturnType's default (None: strict, FReturnType required)."""

    def defaults(c: RowContext) -> dict[str, Any]:
        qty = c.sent_or("FRealQty", Decimal(0))
        out: dict[str, Any] = {
            "FRowType": "Standard",
            "FUnitID": c.unit,
            "FStockstatusId": c.preset(STOCK_STATUS_FORM, DEFAULT_STOCK_STATUS),
            "FOwnerTypeId": "BD_OwnerOrg",
            "FOwnerId": c.head.get("FOwnerIdHead"),
            "FEntryTaxRate": Decimal(13),
            "FIsFree": False,
            "FRealQty": Decimal(0),
            "FTaxPrice": Decimal(0),
            "FPrice": Decimal(0),
            "FSalUnitID": c.sent_or("FUnitID", c.unit),
            "FSalUnitQty": qty,
            "FSalBaseQty": qty,
            "FPriceBaseQty": qty,
            "FBaseunitQty": qty,
        }
        if return_type is not None:
            out["FReturnType"] = c.preset(ASSISTANT_DETAIL_FORM, return_type)
        return out

    return defaults


def returnstock(default_return_type: str | None = None) -> BillForm:
    """The form; ``default_return_type`` makes FReturnType lenient (see the module docstring)."""
    return BillForm(
        form_id=FORM_ID,
        name="销售退货单",
        subhead_key="SubHeadEntity",
        entry_key="FEntity",
        subhead_orm="SAL_RETURNSTOCKFIN",
        entry_orm="SAL_RETURNSTOCKENTRY",
        head_fields=HEAD_FIELDS,
        subhead_fields=SUBHEAD_FIELDS,
        entry_fields=ENTRY_FIELDS,
        head_standard=HEAD_STANDARD,
        subhead_standard=SUBHEAD_STANDARD,
        entry_standard=ENTRY_STANDARD,
        head_required=(
            "FBillTypeID",
            "FDate",
            "FSaleOrgId",
            "FRetcustId",
            "FStockOrgId",
            "FOwnerIdHead",
            "FSettleCurrId",
            "FSettleOrgId",
        ),
        entry_required=(
            "FMaterialId",
            "FUnitID",
            "FRealQty",
            "FReturnType",
            "FStockId",
            "FStockstatusId",
            "FOwnerId",
        ),
        org_of={
            "FRetcustId": "FSaleOrgId",
            "FReceiveCustId": "FSaleOrgId",
            "FSettleCustId": "FSaleOrgId",
            "FPayCustId": "FSaleOrgId",
            "FMaterialId": "FStockOrgId",
            "FStockId": "FStockOrgId",
        },
        head_defaults=_head_defaults,
        row_defaults=row_defaults(default_return_type),
        number_prefix="XSTHD",
        number_digits=6,
        number_counter="billno:SAL_RETURNSTOCK",
        negative_qty="【{caption}】必须大于0",
        entity_aliases=True,
        link_key=LINK_KEY,
        link_rules={"outstock-salreturnstock": LinkRule("SAL_OUTSTOCK", "T_SAL_OUTSTOCKENTRY")},
        stock_sign=+1,
    )


RETURNSTOCK = returnstock()
