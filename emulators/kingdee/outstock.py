"""SAL_OUTSTOCK (销售出库单): the form's definition (kingdee-webapi.md §3.3).

How a Model is read, checked and priced is the same for every bill form (``bills``); this module says
what is particular to the sales stock-out. Decisions ([INF]/[?] points of spec §3):
- Metadata: the fields listed below (header, ``SubHeadEntity``, ``FEntity``), the other standard fields
  of spec §3.3 (``HEAD_STANDARD``/``SUBHEAD_STANDARD``/``ENTRY_STANDARD``: e.g. ``FSalesManID``,
  ``FExchangeTypeID``, the flex field ``FAuxPropId``, a row's ``FSerialSubEntity``/``FEntity_Link``), which
  are stored exactly as sent and can be queried, and the tenant's custom fields (``forms.CustomFields``:
  by default ``F_ora_Text_ysdh`` and ``F_ora_Text_ckdh`` on the header, what the user's tenant has).
  ``FEntity_Link`` rows are kept as sent, not checked (the sales orders they would name are not emulated).
  ``SAL_OUTSTOCK__FEntity``-style aliases are not taken (none was seen for this form).
- Required: FBillTypeID, FDate, FSaleOrgId, FCustomerID, FStockOrgId, FOwnerIdHead,
  SubHeadEntity.FSettleCurrID, SubHeadEntity.FSettleOrgID; per row FMaterialID, FUnitID, FRealQty,
  FStockID, FStockStatusID, FOwnerID, and FLot for a batch-managed material. FBillTypeID, FDate,
  FOwnerIdHead, FUnitID, FStockStatusID and FOwnerID are defaulted (below), as the bill template does, so
  they fail only when sent with a value that matches nothing (an unknown bill type, or one of another
  form, stays refused) or when what they default from is empty.
- Organisations: FCustomerID (and FReceiverID/FSettleID/FPayerID) are looked up in FSaleOrgId,
  FMaterialID and FStockID in FStockOrgId.
- Defaults: FBillTypeID ``XSCKD01_SYS`` (标准销售出库单), FDate today (the server's local date),
  FOwnerTypeIdHead ``BD_OwnerOrg``, FOwnerIdHead = FStockOrgId, FReceiverID/FSettleID/FPayerID =
  FCustomerID, FBussinessType ``NORMAL``, SubHeadEntity FLocalCurrID = FSettleCurrID, FExchangeRate 1,
  FIsIncludedTax true, FIsPriceExcludeTax true; per row FRowType ``Standard``, FUnitID = the material's
  base unit (``Pcs``), FStockStatusID ``KCZT01_SYS``, FOwnerTypeID ``BD_OwnerOrg``, FOwnerID = FOwnerIdHead,
  FKeeperTypeID ``BD_KeeperOrg``, FKeeperID = FStockOrgId, FEntryTaxRate 13 (%), FIsFree false, FMustQty 0.
- A negative FRealQty fails with ``单据体实体【明细信息】第【n】行分录，【实发数量】不能小于0`` (returns use
  SAL_RETURNSTOCK).
- Auto-numbers: ``XSCKD`` + 8 digits (``XSCKD00000001``). Auditing issues stock (``inventory``), with the
  negative-stock check.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from .form import BILL_TOTALS, RECORD_DATES, ROW_AMOUNTS, ROW_KEYS, BillForm, HeadContext, RowContext
from .master import BILL_TYPE_FORM, DEFAULT_STOCK_STATUS, LOT_FORM, ORG_FORM, STOCK_STATUS_FORM
from .schema import Field, Kind

FORM_ID = "SAL_OUTSTOCK"
DEFAULT_TAX_RATE = Decimal("13")
DEFAULT_BILL_TYPE = "XSCKD01_SYS"  # 标准销售出库单, the template's own type
# The custom fields of the user's tenant (include/schemes/sales_outstock.yaml), on the header.
DEFAULT_CUSTOM_FIELDS = ("F_ora_Text_ysdh", "F_ora_Text_ckdh")

HEAD_FIELDS: tuple[Field, ...] = (
    Field("FID", "实体主键", Kind.INT),
    Field("FBillTypeID", "单据类型", Kind.BASE, BILL_TYPE_FORM, FORM_ID),
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
    *RECORD_DATES,
)
SUBHEAD_FIELDS: tuple[Field, ...] = (
    Field("FSettleCurrID", "结算币别", Kind.BASE, "BD_Currency"),
    Field("FSettleOrgID", "结算组织", Kind.BASE, ORG_FORM),
    Field("FLocalCurrID", "本位币", Kind.BASE, "BD_Currency"),
    Field("FExchangeRate", "汇率", Kind.DECIMAL),
    Field("FIsIncludedTax", "是否含税", Kind.BOOL),
    Field("FIsPriceExcludeTax", "价外税", Kind.BOOL),
    *BILL_TOTALS,
)
ENTRY_FIELDS: tuple[Field, ...] = (
    *ROW_KEYS,
    Field("FRowType", "产品类型", Kind.ENUM),
    Field("FMaterialID", "物料编码", Kind.BASE, "BD_MATERIAL"),
    Field("FUnitID", "库存单位", Kind.BASE, "BD_UNIT"),
    Field("FMustQty", "应发数量", Kind.DECIMAL),
    Field("FRealQty", "实发数量", Kind.DECIMAL),
    Field("FPrice", "单价", Kind.DECIMAL),
    Field("FTaxPrice", "含税单价", Kind.DECIMAL),
    Field("FIsFree", "是否赠品", Kind.BOOL),
    Field("FEntryTaxRate", "税率(%)", Kind.DECIMAL),
    *ROW_AMOUNTS,
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

# Standard fields of the form (spec §3.3) that the emulator keeps as sent, without meaning.
HEAD_STANDARD = (
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
SUBHEAD_STANDARD = (
    "FSettleTypeID",
    "FReceiptConditionID",
    "FPriceListId",
    "FDiscountListId",
    "FExchangeTypeID",
    "FThirdBillNo",
    "FThirdBillId",
    "FThirdSrcType",
)
ENTRY_STANDARD = (
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


def _head_defaults(c: HeadContext) -> dict[str, Any]:
    head = c.head
    return {
        "FBillTypeID": c.preset(BILL_TYPE_FORM, DEFAULT_BILL_TYPE),
        "FDate": c.today,
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


def _row_defaults(c: RowContext) -> dict[str, Any]:
    return {
        "FRowType": "Standard",
        "FUnitID": c.unit,
        "FStockStatusID": c.preset(STOCK_STATUS_FORM, DEFAULT_STOCK_STATUS),
        "FOwnerTypeID": "BD_OwnerOrg",
        "FOwnerID": c.head.get("FOwnerIdHead"),
        "FKeeperTypeID": "BD_KeeperOrg",
        "FKeeperID": c.head.get("FStockOrgId"),
        "FEntryTaxRate": DEFAULT_TAX_RATE,
        "FIsFree": False,
        "FMustQty": Decimal(0),
        "FRealQty": Decimal(0),
        "FTaxPrice": Decimal(0),
        "FPrice": Decimal(0),
    }


OUTSTOCK = BillForm(
    form_id=FORM_ID,
    name="销售出库单",
    subhead_key="SubHeadEntity",
    entry_key="FEntity",
    subhead_orm="SAL_OUTSTOCKFIN",
    entry_orm="SAL_OUTSTOCKENTRY",
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
        "FCustomerID",
        "FStockOrgId",
        "FOwnerIdHead",
        "FSettleCurrID",
        "FSettleOrgID",
    ),
    entry_required=("FMaterialID", "FUnitID", "FRealQty", "FStockID", "FStockStatusID", "FOwnerID"),
    org_of={
        "FCustomerID": "FSaleOrgId",
        "FReceiverID": "FSaleOrgId",
        "FSettleID": "FSaleOrgId",
        "FPayerID": "FSaleOrgId",
        "FMaterialID": "FStockOrgId",
        "FStockID": "FStockOrgId",
    },
    head_defaults=_head_defaults,
    row_defaults=_row_defaults,
    number_prefix="XSCKD",
    number_digits=8,
    number_counter="billno",  # the counter's name from before other forms existed: data dirs stay valid
    negative_qty="【{caption}】不能小于0",
    stock_sign=-1,
)
