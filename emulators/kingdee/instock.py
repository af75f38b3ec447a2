"""STK_InStock (采购入库单): the form's definition (kingdee-returnstock-instock.md §3, §5, §6).

How a Model is read, checked and priced is the same for every bill form (``bills``). Decisions
([INF]/[UNCONFIRMED] points of the spec):
- Layout (spec §3.1): header keys, ``FInStockFin`` (财务信息, an object, not ``SubHeadEntity``) and
  ``FInStockEntry`` (明细信息, an array) at the top level; ``STK_InStock__FInStockFin``/
  ``STK_InStock__FInStockEntry`` are taken as aliases. ``FInStockEntry`` inside ``FInStockFin`` is an
  unknown sub-head field (MsgCode 9). Keys keep the template's spelling (``FMaterialId``, ``FStockId``,
  ``FStockStatusId``, ``FBaseUnitQty``, the gift flag ``FGiveAway`` — not ``FIsFree``); any case is accepted.
- Metadata: the fields below (spec §3.2) and the other template fields, kept as sent (``HEAD_STANDARD``
  …). The entry link table ``FInStockEntry_Link`` is checked by ``links``: its rules
  (``PUR_PurchaseOrder-STK_InStock``, ``PUR_ReceiveBill-STK_InStock``, tenant rules) name purchase orders
  and receipts, which the emulator does not have, so a link row's source is always missing and the bill
  is refused (post unlinked, as the spec's WDT mapping does, §3.4).
- Required (spec §3.2 [INF]): FBillTypeID, FDate, FStockOrgId (收料组织), FPurchaseOrgId (采购组织),
  FSupplierId (``字段“供应商”是必填项``), FOwnerIdHead, FInStockFin.FSettleCurrId, FInStockFin.FSettleOrgId;
  per row FMaterialId, FUnitID, FRealQty, FStockId (``【仓库】字段必录``), FStockStatusId, FOwnerId, and FLot
  for a batch-managed material.
- Organisations: FSupplierId and FSupplyId/FSettleId/FChargeId are looked up in FPurchaseOrgId (every
  seeded supplier is allocated to every organisation, ``emulators.dataset``), FMaterialId and FStockId in
  FStockOrgId.
- Defaults (spec §6.3), only for keys not sent: FBillTypeID ``RKD01_SYS`` 标准采购入库, FBusinessType ``CG``,
  FDate today, FOwnerTypeIdHead ``BD_OwnerOrg``, FOwnerIdHead = FStockOrgId, FDemandOrgId = FStockOrgId,
  FSupplyId/FSettleId/FChargeId = FSupplierId, FCancelStatus ``A``; FInStockFin FSettleOrgId =
  FPurchaseOrgId [INF: the purchasing organisation settles], FLocalCurrId = FSettleCurrId, FExchangeRate 1,
  FIsIncludedTax true, FIsPriceExcludeTax true; per row FRowType ``Standard``, FUnitID = the material's base
  unit, FPriceUnitID = FUnitID, FStockStatusId ``KCZT01_SYS``, FOwnerTypeId ``BD_OwnerOrg``, FOwnerId =
  FOwnerIdHead, FKeeperTypeId ``BD_KeeperOrg``, FKeeperId = FStockOrgId, FEntryTaxRate 13, FGiveAway false,
  FPriceBaseQty/FBaseUnitQty = FRealQty.
- Quantities are positive: FRealQty 0 fails ``【实收数量】字段必录``, a negative one
  ``单据体实体【明细信息】第【n】行分录，【实收数量】必须大于0`` — **invented text** (unconfirmed, §8.2).
- Auto-numbers: ``CGRK`` + 6 digits (``CGRK000001``, the spec's §6.7 pattern [INF]). Auditing receives
  the quantity into stock (``inventory``), without the negative-stock check.
- Operations' messages name the form 采购入库单; View answers the sub-head as ``InStockFin`` and the rows as
  ``InStockEntry`` (the form's entity names without the F) [?].
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from .form import BILL_TOTALS, RECORD_DATES, ROW_AMOUNTS, ROW_KEYS, BillForm, HeadContext, RowContext
from .master import BILL_TYPE_FORM, DEFAULT_STOCK_STATUS, LOT_FORM, ORG_FORM, STOCK_STATUS_FORM, SUPPLIER_FORM
from .schema import Field, Kind

FORM_ID = "STK_InStock"
DEFAULT_BILL_TYPE = "RKD01_SYS"  # 标准采购入库

HEAD_FIELDS: tuple[Field, ...] = (
    Field("FID", "实体主键", Kind.INT),
    Field("FBillTypeID", "单据类型", Kind.BASE, BILL_TYPE_FORM, FORM_ID),
    Field("FBusinessType", "业务类型", Kind.ENUM),
    Field("FBillNo", "单据编号", Kind.TEXT),
    Field("FDate", "入库日期", Kind.DATE),
    Field("FDocumentStatus", "单据状态", Kind.ENUM),
    Field("FCancelStatus", "作废状态", Kind.ENUM),
    Field("FStockOrgId", "收料组织", Kind.BASE, ORG_FORM),
    Field("FStockDeptId", "收料部门", Kind.BASE, "BD_Department"),
    Field("FDemandOrgId", "需求组织", Kind.BASE, ORG_FORM),
    Field("FPurchaseOrgId", "采购组织", Kind.BASE, ORG_FORM),
    Field("FPurchaseDeptId", "采购部门", Kind.BASE, "BD_Department"),
    Field("FSupplierId", "供应商", Kind.BASE, SUPPLIER_FORM),
    Field("FSupplyId", "供货方", Kind.BASE, SUPPLIER_FORM),
    Field("FSettleId", "结算方", Kind.BASE, SUPPLIER_FORM),
    Field("FChargeId", "收款方", Kind.BASE, SUPPLIER_FORM),
    Field("FOwnerTypeIdHead", "货主类型", Kind.ENUM),
    Field("FOwnerIdHead", "货主", Kind.BASE, ORG_FORM),
    Field("FDeliveryBill", "送货单号", Kind.TEXT),
    Field("FTakeDeliveryBill", "提货单号", Kind.TEXT),
    *RECORD_DATES,
)
SUBHEAD_FIELDS: tuple[Field, ...] = (
    Field("FSettleOrgId", "结算组织", Kind.BASE, ORG_FORM),
    Field("FSettleCurrId", "结算币别", Kind.BASE, "BD_Currency"),
    Field("FLocalCurrId", "本位币", Kind.BASE, "BD_Currency"),
    Field("FExchangeRate", "汇率", Kind.DECIMAL),
    Field("FIsIncludedTax", "是否含税", Kind.BOOL),
    Field("FIsPriceExcludeTax", "价外税", Kind.BOOL),
    *BILL_TOTALS,
)
ENTRY_FIELDS: tuple[Field, ...] = (
    *ROW_KEYS,
    Field("FRowType", "行类型", Kind.ENUM),
    Field("FMaterialId", "物料编码", Kind.BASE, "BD_MATERIAL"),
    Field("FUnitID", "库存单位", Kind.BASE, "BD_UNIT"),
    Field("FRealQty", "实收数量", Kind.DECIMAL),
    Field("FPriceUnitID", "计价单位", Kind.BASE, "BD_UNIT"),
    Field("FPrice", "单价", Kind.DECIMAL),
    Field("FTaxPrice", "含税单价", Kind.DECIMAL),
    Field("FGiveAway", "是否赠品", Kind.BOOL),
    Field("FEntryTaxRate", "税率%", Kind.DECIMAL),
    *ROW_AMOUNTS,
    Field("FLot", "批号", Kind.BASE, LOT_FORM),
    Field("FStockId", "仓库", Kind.BASE, "BD_STOCK"),
    Field("FStockStatusId", "库存状态", Kind.BASE, STOCK_STATUS_FORM),
    Field("FOwnerTypeId", "货主类型", Kind.ENUM),
    Field("FOwnerId", "货主", Kind.BASE, ORG_FORM),
    Field("FKeeperTypeId", "保管者类型", Kind.ENUM),
    Field("FKeeperId", "保管者", Kind.BASE, ORG_FORM),
    Field("FProduceDate", "生产日期", Kind.DATE),
    Field("FExpiryDate", "有效期至", Kind.DATE),
    Field("FMtoNo", "计划跟踪号", Kind.TEXT),
    Field("FNote", "备注", Kind.TEXT),
    Field("FPriceBaseQty", "计价基本数量", Kind.DECIMAL),
    Field("FBaseUnitQty", "基本单位数量", Kind.DECIMAL),
    Field("FSRCBILLTYPEID", "源单类型", Kind.TEXT),
    Field("FSRCBillNo", "源单编号", Kind.TEXT),
    Field("FPOOrderNo", "订单单号", Kind.TEXT),
)

# The template's other fields (spec §3.2), kept as sent.
HEAD_STANDARD = (
    "FStockerGroupId",
    "FStockerId",
    "FCorrespondOrgId",
    "FPurchaserGroupId",
    "FPurchaserId",
    "FSupplyAddress",
    "FConfirmerId",
    "FConfirmDate",
    "FScanBox",
    "FCDateOffsetUnit",
    "FCDateOffsetValue",
    "FProviderContactID",
    "FSplitBillType",
    "FSalOutStockOrgId",
)
SUBHEAD_STANDARD = (
    "FSettleTypeId",
    "FPayConditionId",
    "FPriceTimePoint",
    "FPriceListId",
    "FDiscountListId",
    "FExchangeTypeId",
    "FAllDisCount",
    "FHSExchangeRate",
)
ENTRY_STANDARD = (
    "FWWInType",
    "FAuxPropId",
    "FParentMatId",
    "FTaxCombination",
    "FStockLocId",
    "FSupplierLot",
    "FExtAuxUnitId",
    "FExtAuxUnitQty",
    "FAuxUnitQty",
    "FCheckInComing",
    "FProjectNo",
    "FSampleDamageQty",
    "FSampleDamageBaseQty",
    "FIsReceiveUpdateStock",
    "FInvoicedJoinQty",
    "FSetPriceUnitID",
    "FRemainInStockUnitId",
    "FRemainInStockQty",
    "FRemainInStockBaseQty",
    "FBILLINGCLOSE",
    "FAPNotJoinQty",
    "FDiscountRate",
    "FCostPrice",
    "FBOMId",
    "FBeforeDisPriceQty",
    "FDisPriceQty",
    "FPOORDERENTRYID",
    # sub-entities of a row (purchase costs, tax details, serial numbers, link table)
    "FEntryPruCost",
    "FTaxDetailSubEntity",
    "FSerialSubEntity",
    "FInStockEntry_Link",
)


def _head_defaults(c: HeadContext) -> dict[str, Any]:
    head = c.head
    return {
        "FBillTypeID": c.preset(BILL_TYPE_FORM, DEFAULT_BILL_TYPE),
        "FBusinessType": "CG",
        "FDate": c.today,
        "FCancelStatus": "A",
        "FOwnerTypeIdHead": "BD_OwnerOrg",
        "FOwnerIdHead": head.get("FStockOrgId"),
        "FDemandOrgId": head.get("FStockOrgId"),
        "FSupplyId": head.get("FSupplierId"),
        "FSettleId": head.get("FSupplierId"),
        "FChargeId": head.get("FSupplierId"),
        "FSettleOrgId": head.get("FPurchaseOrgId"),
        "FLocalCurrId": head.get("FSettleCurrId"),
        "FExchangeRate": Decimal(1),
        "FIsIncludedTax": True,
        "FIsPriceExcludeTax": True,
    }


def _row_defaults(c: RowContext) -> dict[str, Any]:
    qty = c.sent_or("FRealQty", Decimal(0))
    return {
        "FRowType": "Standard",
        "FUnitID": c.unit,
        "FPriceUnitID": c.sent_or("FUnitID", c.unit),
        "FStockStatusId": c.preset(STOCK_STATUS_FORM, DEFAULT_STOCK_STATUS),
        "FOwnerTypeId": "BD_OwnerOrg",
        "FOwnerId": c.head.get("FOwnerIdHead"),
        "FKeeperTypeId": "BD_KeeperOrg",
        "FKeeperId": c.head.get("FStockOrgId"),
        "FEntryTaxRate": Decimal(13),
        "FGiveAway": False,
        "FRealQty": Decimal(0),
        "FTaxPrice": Decimal(0),
        "FPrice": Decimal(0),
        "FPriceBaseQty": qty,
        "FBaseUnitQty": qty,
    }


INSTOCK = BillForm(
    form_id=FORM_ID,
    name="采购入库单",
    subhead_key="FInStockFin",
    entry_key="FInStockEntry",
    subhead_orm="InStockFin",
    entry_orm="InStockEntry",
    head_fields=HEAD_FIELDS,
    subhead_fields=SUBHEAD_FIELDS,
    entry_fields=ENTRY_FIELDS,
    head_standard=HEAD_STANDARD,
    subhead_standard=SUBHEAD_STANDARD,
    entry_standard=ENTRY_STANDARD,
    head_required=(
        "FBillTypeID",
        "FDate",
        "FStockOrgId",
        "FPurchaseOrgId",
        "FSupplierId",
        "FOwnerIdHead",
        "FSettleCurrId",
        "FSettleOrgId",
    ),
    entry_required=("FMaterialId", "FUnitID", "FRealQty", "FStockId", "FStockStatusId", "FOwnerId"),
    org_of={
        "FSupplierId": "FPurchaseOrgId",
        "FSupplyId": "FPurchaseOrgId",
        "FSettleId": "FPurchaseOrgId",
        "FChargeId": "FPurchaseOrgId",
        "FMaterialId": "FStockOrgId",
        "FStockId": "FStockOrgId",
    },
    head_defaults=_head_defaults,
    row_defaults=_row_defaults,
    number_prefix="CGRK",
    number_digits=6,
    number_counter="billno:STK_InStock",
    negative_qty="【{caption}】必须大于0",
    roles={"gift": "FGiveAway"},
    entity_aliases=True,
    link_key="FInStockEntry_Link",
    link_rules={},  # no purchase orders or receipts in the emulator: every link's source is missing
    stock_sign=+1,
)
