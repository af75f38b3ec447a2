"""One deterministic data set that both emulators derive from.

The catalog (shops, warehouses, SKUs and the Kingdee master data that matches them) depends on the
seed alone, so the Kingdee emulator started with ``--seed N`` knows exactly the base data that the
WDT emulator started with the same seed refers to. Orders additionally depend on how many orders,
the first day and the number of days.

Nothing here is shared with the product code (``plugins/``): the emulators follow the protocol specs,
and a bug in the client must not be mirrored by the same bug in the servers.

Kingdee base data (``build_catalog``, spec kingdee-webapi.md §3.1-3.2) [INF where not stated]:
- Organisations are the shops (sales organisations) and the warehouses (stock organisations), by number.
- Base data is organisation-controlled as in a multi-organisation tenant (``kingdee_orgs``): each shop's
  customer is created in, and used by, the shop's own organisation (the mapping sends shop_no as
  FSaleOrgId and FCustomerID); each warehouse (BD_STOCK) belongs to its own stock organisation (warehouse_no
  is both FStockOrgId and FStockID); every material is created by the first warehouse organisation and
  allocated to the other warehouse organisations, so any warehouse may ship any good; every supplier
  (BD_Supplier, numbered by the WDT provider_no, ``Catalog.suppliers``) is created by the first
  warehouse organisation and allocated to every organisation (shops and warehouses), so any purchasing
  organisation may buy from any supplier. Departments, currencies, bill types, assistant data and
  organisations are shared by all organisations.
- Bill types (BOS_BillType, ``BILL_TYPES``) carry the form they belong to (``BILL_TYPE_FORMS``, field
  FBillFormID): SAL_OUTSTOCK ``XSCKD001`` 电商销售出库单 (the tenant's own) and ``XSCKD01_SYS`` 标准销售出库单;
  SAL_RETURNSTOCK ``XSTHD01_SYS`` 标准销售退货单 and ``XSTHD06_SYS`` 现销退货单; STK_InStock ``RKD01_SYS``
  标准采购入库 … ``RKD09_SYS`` 直运入库单 (names of kingdee-returnstock-instock.md §3.3; RKD02_SYS's meaning is
  unconfirmed there).
- Assistant data (辅助资料, ``ASSISTANT_DATA``): category ``THLX`` 退货类型 with the system values
  ``THLX01_SYS`` 退货 and ``THLX02_SYS`` 退货补货, and the tenant's category ``THYY`` 退货原因 with ``QT`` 其他
  and ``PS`` 破损 (category numbers and the reasons are [INF]; the spec saw QT/PS as tenant codes).
- Disabled records (``kingdee_disabled``, FForbidStatus B): the material ``EOL9001-01`` and the customer
  ``CLOSED005``. No WDT order names them, so the demo data stays valid; they exist so that a base-data
  check meets records that Kingdee has but refuses on a bill ("禁用也是不存在", spec §3.1).

Orders (``build_dataset``) are WDT sales stock-out orders of ``wdt.stockout.order.query.trade``, exactly
as the API returns them. Decisions on points the protocol spec (wdt-qimen-stockout.md) marks [INF]/[?]:
- Types: ids, statuses and enum fields are JSON ints; money, quantities, weights and rates are strings
  with 4 decimals ("19.9000"); datetimes are "yyyy-MM-dd HH:mm:ss" Asia/Shanghai wall-clock strings and
  an unset datetime is "0000-00-00 00:00:00"; everything else is a string ("" when a merchant has none).
- order_no == stockout_no == "CK" + yyyymmdd of the planned day + 5-digit per-day sequence (with gaps,
  because other stock-out types share the sequence); src_order_no == trade_no == "JY" + trade date +
  a global 5-digit counter; src_trade_no == src_tids (comma-joined for merged orders).
- Statuses: ~78% 110 已完成, ~14% 95 已发货, ~4% 113 异常发货, ~4% 5 已取消. Cancelled orders were
  approved (stock_check_time set) but never consigned: consign_time, logistics_no and the print batch
  are empty/zero, refund_status 3 on the order and 5 on the lines.
- Timeline per order: trade_time < pay_time < created < stock_check_time < consign_time <= modified.
  consign_time lies between 09:00:00 and 21:59:59 of its day; 110 orders were modified 2-48 h after
  consignment (completion), 95/113 within 30 min; a cancelled order's modified time is its planned time.
- Money, to the cent: line total_amount = goods_count * sell_price; the order coupon (discount) is
  spread over the lines by amount (line discount), share_amount = total_amount - discount, the order
  post_amount is spread as share_post, line paid = share_amount + share_post. Order goods_count,
  goods_total_amount, discount and paid are the sums of the lines; receivable = paid =
  goods_total_amount - discount + post_amount. Taxes are zero (tax "0.0000", tax_rate "0.0000"),
  as on most e-commerce tenants; currency "CNY".
- 淘系 orders (platform_id 1) carry the privacy fields masked ("张**", "138****5678", "****"), because
  Qimen does not hand them out; other platforms carry plain values.
- Line batch fields exist only as the spec's [UNCONFIRMED] Y-edition names: batch-managed SKUs carry a
  lot batch_no (= production date yyyymmdd), product_date and expire_date ("yyyy-MM-dd 00:00:00");
  others batch_no "" and zero datetimes. The order-level batch_no is the print batch (spec §5.3).
- Ids: stockout_id 300001.., trade_id 500001.., rec_id 700001.., sale_order_id 900001.., in consign
  order; spec_id/goods_id are catalog positions; brand_no "PP001"...; enums the spec cannot confirm get
  fixed values: order_type 1 "销售出库", subtype 0, src_order_type 1, warehouse_type 1, wms_status 0,
  consign_status bits 1 checked | 2 weighed | 4 stocked out | 8 logistics synced (95/113: 7, 110: 15,
  5: 0), logistics_type our own number per carrier, bad_reason 1 on 113 orders.
- Shape: shop and warehouse drawn per order; 1-4 lines of distinct SKUs (so goods_type_count equals the
  line count); ~15% of multi-line orders end with a gift line (gift_type 1, sell_price "0.0000",
  goods_count 1); ~5% are merged from two platform orders, their lines alternating between the two
  src_tid values. UNKNOWN_SKU appears only in "unknown_sku" orders.
- Defects (see _plan_defects): below 10 orders none; from 10 up, max(1, round(orders / 40)) orders of
  each kind, always status 110, never both kinds in one order. The first of each kind is on the first
  day (that day is given at least two orders); the list of orders is cut into that many equal blocks
  and each later block gets one of each. A "zero_quantity" order has >= 2 lines, no gift, and exactly one
  paid line at goods_count "0.0000"; an "unknown_sku" order has >= 2 lines, one paid line of UNKNOWN_SKU.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

# Master data that the user's mapping names as constants (FSaleDeptID, FSETTLECURRID, FBillTypeID).
DEPARTMENTS = (("BM000175", "电商运营部"), ("BM000001", "总经办"))
CURRENCIES = (("PRE001", "人民币"), ("PRE002", "美元"))
BILL_TYPES = (
    ("XSCKD001", "电商销售出库单"),
    ("XSCKD01_SYS", "标准销售出库单"),
    ("XSTHD01_SYS", "标准销售退货单"),
    ("XSTHD06_SYS", "现销退货单"),
    ("RKD01_SYS", "标准采购入库"),
    ("RKD02_SYS", "采购入库单"),
    ("RKD03_SYS", "委外入库单"),
    ("RKD04_SYS", "分销购销入库单"),
    ("RKD05_SYS", "资产入库单"),
    ("RKD06_SYS", "费用入库单"),
    ("RKD07_SYS", "VMI入库单"),
    ("RKD08_SYS", "现购入库单"),
    ("RKD09_SYS", "直运入库单"),
)
# The bill form each bill type belongs to (BOS_BillType.FBillFormID), by number prefix.
_BILL_TYPE_PREFIXES = (("XSCKD", "SAL_OUTSTOCK"), ("XSTHD", "SAL_RETURNSTOCK"), ("RKD", "STK_InStock"))
BILL_TYPE_FORMS = {n: next(f for p, f in _BILL_TYPE_PREFIXES if n.startswith(p)) for n, _ in BILL_TYPES}
# 辅助资料: category number -> (category name, {value number: value name})
ASSISTANT_DATA = {
    "THLX": ("退货类型", {"THLX01_SYS": "退货", "THLX02_SYS": "退货补货"}),
    "THYY": ("退货原因", {"QT": "其他", "PS": "破损"}),
}


@dataclass(frozen=True)
class Shop:
    shop_no: str
    shop_name: str
    platform_id: int


@dataclass(frozen=True)
class Warehouse:
    warehouse_id: int
    warehouse_no: str
    warehouse_name: str


@dataclass(frozen=True)
class Supplier:
    """A supplier the merchant buys goods from (WDT provider_no, Kingdee BD_Supplier FNumber)."""

    provider_no: str
    provider_name: str
    brands: tuple[str, ...]  # the goods brands bought from this supplier


@dataclass(frozen=True)
class Sku:
    spec_no: str
    goods_no: str
    goods_name: str
    spec_name: str
    barcode: str
    brand_name: str
    price: Decimal
    batch_managed: bool
    # False for goods that the merchant created in WDT but never set up as a Kingdee material.
    known_to_kingdee: bool = True


@dataclass(frozen=True)
class Catalog:
    seed: int
    shops: tuple[Shop, ...]
    warehouses: tuple[Warehouse, ...]
    skus: tuple[Sku, ...]
    suppliers: tuple[Supplier, ...] = ()
    departments: tuple[tuple[str, str], ...] = DEPARTMENTS
    currencies: tuple[tuple[str, str], ...] = CURRENCIES
    bill_types: tuple[tuple[str, str], ...] = BILL_TYPES
    # Kingdee number -> name, per master-data form, as the user's tenant has them set up.
    kingdee_master: dict[str, dict[str, str]] = field(default_factory=dict)
    # Organisation control of base data: form -> number -> (create org, use orgs). The record is usable
    # in each use org (the create org first, then the orgs it was allocated to); forms not listed here
    # (organisations, departments, currencies, bill types) are shared by every organisation.
    kingdee_orgs: dict[str, dict[str, tuple[str, tuple[str, ...]]]] = field(default_factory=dict)
    # Numbers per form whose record is disabled (FForbidStatus B): Kingdee keeps it, no bill may use it.
    kingdee_disabled: dict[str, frozenset[str]] = field(default_factory=dict)
    # Other values of the records: form -> number -> {field key: value}; a base-data value is a number.
    kingdee_fields: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)


_SHOPS = (
    ("TMALL001", "天猫旗舰店", 1),
    ("JD002", "京东自营店", 3),
    ("DOUYIN003", "抖音小店", 69),
    ("FENXIAO004", "分销渠道店", 0),
)
_WAREHOUSES = (("WH001", "华东一号仓"), ("WH002", "华南仓"), ("WH003", "北京仓"))
# goods_no, goods name, spec names, brand, base price, batch-managed (food and cosmetics carry lots)
_GOODS = (
    ("GT1001", "明前龙井绿茶", ("100g罐装", "250g礼盒"), "西湖茶社", "68.00", True),
    ("GT1002", "云南普洱熟茶饼", ("357g",), "勐海茶厂", "128.00", True),
    ("CP2001", "玻尿酸保湿面霜", ("50ml", "100ml"), "水漾", "139.90", True),
    ("CP2002", "氨基酸洁面乳", ("120g",), "水漾", "59.90", True),
    ("HW3001", "不锈钢保温杯", ("350ml 黑色", "500ml 白色", "500ml 蓝色"), "暖途", "89.00", False),
    ("HW3002", "陶瓷马克杯", ("380ml",), "暖途", "35.50", False),
    ("AP4001", "纯棉短袖T恤", ("M 白色", "L 白色", "XL 黑色"), "棉语", "79.00", False),
    ("AP4002", "运动速干袜(3双装)", ("均码",), "棉语", "29.90", False),
    ("EL5001", "蓝牙降噪耳机", ("曜石黑",), "声域", "399.00", False),
    ("EL5002", "Type-C快充数据线", ("1m", "2m"), "声域", "19.90", False),
)
# provider_no, name, the brands bought from it: every brand of _GOODS has exactly one supplier
_SUPPLIERS = (
    ("VEN001", "杭州西湖龙井茶业有限公司", ("西湖茶社", "勐海茶厂")),
    ("VEN002", "广州水漾化妆品有限公司", ("水漾",)),
    ("VEN003", "永康暖途日用品厂", ("暖途",)),
    ("VEN004", "宁波棉语服饰有限公司", ("棉语",)),
    ("VEN005", "深圳声域电子科技有限公司", ("声域",)),
)
# A SKU that exists in WDT but that nobody created in Kingdee: its bills must be rejected.
UNKNOWN_SKU = Sku(
    spec_no="NEW-SKU-999",
    goods_no="NEW999",
    goods_name="新品试销礼盒",
    spec_name="标准装",
    barcode="6970000009999",
    brand_name="新品",
    price=Decimal("49.90"),
    batch_managed=False,
    known_to_kingdee=False,
)


# Base data the tenant has disabled (FForbidStatus B): goods and a shop it no longer sells through. No
# WDT order names them (they are not in the catalog's skus or shops); they are there so that a client's
# base-data check meets disabled records, which Kingdee treats as missing when a bill is saved.
DISABLED_MATERIALS = (("EOL9001-01", "停产旧款茶具礼盒 标准装"),)
DISABLED_CUSTOMERS = (("CLOSED005", "已关闭快手小店"),)


def build_catalog(seed: int) -> Catalog:
    """The merchant's shops, warehouses and goods, and the matching Kingdee master data."""
    rng = random.Random(f"catalog-{seed}")
    shops = tuple(Shop(no, name, platform) for no, name, platform in _SHOPS)
    warehouses = tuple(
        Warehouse(warehouse_id=i + 1, warehouse_no=no, warehouse_name=name) for i, (no, name) in enumerate(_WAREHOUSES)
    )
    skus: list[Sku] = []
    for goods_no, goods_name, specs, brand, base_price, batch_managed in _GOODS:
        for i, spec_name in enumerate(specs, start=1):
            # Prices vary a little by seed, always to the cent.
            price = (Decimal(base_price) * Decimal(rng.randint(90, 110)) / 100).quantize(Decimal("0.01"))
            skus.append(
                Sku(
                    spec_no=f"{goods_no}-{i:02d}",
                    goods_no=goods_no,
                    goods_name=goods_name,
                    spec_name=spec_name,
                    barcode=f"69{rng.randint(10**10, 10**11 - 1)}",
                    brand_name=brand,
                    price=price,
                    batch_managed=batch_managed,
                )
            )
    skus.append(UNKNOWN_SKU)

    suppliers = tuple(Supplier(no, name, brands) for no, name, brands in _SUPPLIERS)
    # The user's mapping sends shop_no as sales org, customer and settlement org, and warehouse_no as
    # stock org, owner and stock: the tenant is set up with those numbers.
    master = {
        "BD_MATERIAL": {
            **{s.spec_no: f"{s.goods_name} {s.spec_name}" for s in skus if s.known_to_kingdee},
            **dict(DISABLED_MATERIALS),
        },
        "BD_Customer": {**{s.shop_no: s.shop_name for s in shops}, **dict(DISABLED_CUSTOMERS)},
        "BD_Supplier": {s.provider_no: s.provider_name for s in suppliers},
        "ORG_Organizations": {
            **{s.shop_no: s.shop_name for s in shops},
            **{w.warehouse_no: w.warehouse_name for w in warehouses},
        },
        "BD_STOCK": {w.warehouse_no: w.warehouse_name for w in warehouses},
        "BD_Department": dict(DEPARTMENTS),
        "BD_Currency": dict(CURRENCIES),
        "BOS_BillType": dict(BILL_TYPES),
        "BOS_ASSISTANTDATA": {number: name for number, (name, _) in ASSISTANT_DATA.items()},
        "BOS_ASSISTANTDATA_DETAIL": {n: v for _, (_, values) in ASSISTANT_DATA.items() for n, v in values.items()},
    }
    return Catalog(
        seed=seed,
        shops=shops,
        warehouses=warehouses,
        skus=tuple(skus),
        suppliers=suppliers,
        kingdee_master=master,
        kingdee_orgs=_kingdee_orgs(master, shops, warehouses),
        kingdee_disabled={
            "BD_MATERIAL": frozenset(n for n, _ in DISABLED_MATERIALS),
            "BD_Customer": frozenset(n for n, _ in DISABLED_CUSTOMERS),
        },
        kingdee_fields={
            "BOS_BillType": {number: {"FBillFormID": form} for number, form in BILL_TYPE_FORMS.items()},
            "BOS_ASSISTANTDATA_DETAIL": {
                n: {"FId": category} for category, (_, values) in ASSISTANT_DATA.items() for n in values
            },
        },
    )


def _kingdee_orgs(
    master: dict[str, dict[str, str]],
    shops: tuple[Shop, ...],
    warehouses: tuple[Warehouse, ...],
) -> dict[str, dict[str, tuple[str, tuple[str, ...]]]]:
    """Which organisations may use each customer, supplier, material and stock (see the Kingdee decisions
    above)."""
    stock_orgs = tuple(w.warehouse_no for w in warehouses)
    every_org = tuple(master["ORG_Organizations"])
    first_shop = shops[0].shop_no
    shop_nos = {s.shop_no for s in shops}
    return {
        # each shop is a sales organisation with its own customer record
        "BD_Customer": {
            n: ((n, (n,)) if n in shop_nos else (first_shop, (first_shop,))) for n in master["BD_Customer"]
        },
        # goods are created by the first warehouse organisation and allocated to every other one
        "BD_MATERIAL": {n: (stock_orgs[0], stock_orgs) for n in master["BD_MATERIAL"]},
        # each warehouse belongs to its own stock organisation
        "BD_STOCK": {n: (n, (n,)) for n in master["BD_STOCK"]},
        # suppliers are created by the first warehouse organisation and allocated to every organisation
        "BD_Supplier": {
            n: (stock_orgs[0], (stock_orgs[0], *(o for o in every_org if o != stock_orgs[0])))
            for n in master["BD_Supplier"]
        },
    }


# -- orders -----------------------------------------------------------------------------------------

ZERO_DATETIME = "0000-00-00 00:00:00"
DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"
DEFECT_ZERO_QUANTITY = "zero_quantity"
DEFECT_UNKNOWN_SKU = "unknown_sku"

_CENT = Decimal("0.01")
_STATUS_WEIGHTS = ((110, 78), (95, 14), (113, 4), (5, 4))
_STATUS_NAMES = {5: "已取消", 95: "已发货", 110: "已完成", 113: "异常发货"}
# code, name, WDT logistics_type (our own numbering: the enum is not documented), logistics_id
_CARRIERS = (
    ("SF", "顺丰速运", 3, 1),
    ("ZTO", "中通快递", 7, 2),
    ("YTO", "圆通速递", 6, 3),
    ("YUNDA", "韵达快递", 8, 4),
    ("JD", "京东物流", 12, 5),
)
_STAFF = (
    ("E001", "王芳"),
    ("E002", "李强"),
    ("E003", "张敏"),
    ("E004", "刘洋"),
    ("E005", "陈静"),
    ("E006", "赵磊"),
)
_SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"
_GIVEN = ("伟", "芳", "娜", "秀英", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "涛", "明")
# province, city, district, zip, street
_ADDRESSES = (
    ("浙江省", "杭州市", "西湖区", "310012", "文三路"),
    ("上海", "上海市", "浦东新区", "200120", "世纪大道"),
    ("广东省", "深圳市", "南山区", "518057", "科技园路"),
    ("北京", "北京市", "朝阳区", "100020", "建国路"),
    ("江苏省", "南京市", "鼓楼区", "210008", "中山北路"),
    ("四川省", "成都市", "武侯区", "610041", "天府大道"),
)
_BUYER_MESSAGES = ("", "", "", "", "请尽快发货", "不要放快递柜", "周末送货")
_CS_REMARKS = ("", "", "", "", "", "老客户,赠品已备注", "已电话确认地址")
_SHELF_LIFE_DAYS = {"GT": 540, "CP": 1095}


@dataclass(frozen=True)
class Dataset:
    """Catalog plus the WDT orders built from it, and which orders are deliberately bad."""

    catalog: Catalog
    orders: list[dict[str, Any]]
    # order_no -> DEFECT_ZERO_QUANTITY | DEFECT_UNKNOWN_SKU
    defects: dict[str, str]


@dataclass
class _Plan:
    """What is decided about an order before its fields are generated."""

    when: _dt.datetime  # consign time, or for a cancelled order the time it was cancelled
    status: int
    defect: str | None = None


def build_dataset(seed: int, orders: int, start: _dt.date, days: int) -> Dataset:
    """Deterministic orders spread over `days` days from `start` (same arguments, same bytes)."""
    if orders < 0 or days < 1:
        raise ValueError("orders must be >= 0 and days >= 1")
    catalog = build_catalog(seed)
    rng = random.Random(f"orders-{seed}-{orders}-{start.isoformat()}-{days}")
    plans = _plan_orders(rng, orders, start, days)
    _plan_defects(rng, plans, start)
    builder = _OrderBuilder(catalog, rng)
    built = [builder.build(index, plan) for index, plan in enumerate(plans)]
    defects = {o["order_no"]: p.defect for o, p in zip(built, plans, strict=True) if p.defect}
    return Dataset(catalog=catalog, orders=built, defects=defects)


def _plan_orders(rng: random.Random, orders: int, start: _dt.date, days: int) -> list[_Plan]:
    counts = _day_counts(rng, orders, days)
    plans: list[_Plan] = []
    for day, count in enumerate(counts):
        midnight = _dt.datetime.combine(start + _dt.timedelta(days=day), _dt.time())
        # 09:00:00 .. 21:59:59: warehouses ship during the working day.
        seconds = sorted(rng.randint(9 * 3600, 22 * 3600 - 1) for _ in range(count))
        statuses = rng.choices([s for s, _ in _STATUS_WEIGHTS], [w for _, w in _STATUS_WEIGHTS], k=count)
        plans.extend(_Plan(midnight + _dt.timedelta(seconds=s), st) for s, st in zip(seconds, statuses, strict=True))
    return plans


def _day_counts(rng: random.Random, orders: int, days: int) -> list[int]:
    counts = [orders // days] * days
    for day in rng.sample(range(days), orders % days):
        counts[day] += 1
    # The first day must be able to hold one order of each defect.
    while orders >= 10 and counts[0] < 2:
        busiest = max(range(1, days), key=lambda d: counts[d])
        counts[busiest] -= 1
        counts[0] += 1
    return counts


def _plan_defects(rng: random.Random, plans: list[_Plan], start: _dt.date) -> None:
    """Mark max(1, round(n/40)) orders per defect kind; the first of each kind on the first day.

    The order list is cut into that many equal blocks; block 0's pair is taken from the first day,
    every other block gets one order of each kind. Picks prefer orders already at status 110 and
    force 110 otherwise, and an order never gets both defects.
    """
    total = len(plans)
    if total < 10:
        return
    per_kind = max(1, round(total / 40))
    first_day = [i for i, p in enumerate(plans) if p.when.date() == start]
    blocks = [first_day] + [list(range(b * total // per_kind, (b + 1) * total // per_kind)) for b in range(1, per_kind)]
    for block in blocks:
        free = [i for i in block if plans[i].defect is None]
        completed = [i for i in free if plans[i].status == 110]
        pool = completed if len(completed) >= 2 else free
        for index, kind in zip(rng.sample(pool, 2), (DEFECT_ZERO_QUANTITY, DEFECT_UNKNOWN_SKU), strict=True):
            plans[index].defect = kind
            plans[index].status = 110


def _fmt_money(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.0001")))


def _fmt_dt(value: _dt.datetime | None) -> str:
    return value.strftime(DATETIME_FORMAT) if value else ZERO_DATETIME


def _spread(total: Decimal, weights: list[Decimal]) -> list[Decimal]:
    """Split `total` over `weights` proportionally to the cent; the last weighted item takes the rest."""
    parts = [Decimal(0)] * len(weights)
    weighted = [i for i, w in enumerate(weights) if w > 0] or ([0] if weights else [])
    base = sum(weights[i] for i in weighted)
    for i in weighted[:-1]:
        parts[i] = (total * weights[i] / base).quantize(_CENT) if base else Decimal(0)
    if weighted:
        parts[weighted[-1]] = total - sum(parts)
    return parts


@dataclass
class _Line:
    sku: Sku
    count: int
    sell_price: Decimal
    gift: bool
    src_tid: str


class _OrderBuilder:
    """Turns plans into WDT order dicts; keeps the running ids and the unique-number registries."""

    def __init__(self, catalog: Catalog, rng: random.Random) -> None:
        self.catalog = catalog
        self.rng = rng
        self.normal_skus = [s for s in catalog.skus if s.known_to_kingdee]
        self.spec_ids = {s.spec_no: i + 1 for i, s in enumerate(catalog.skus)}
        goods_nos = list(dict.fromkeys(s.goods_no for s in catalog.skus))
        self.goods_ids = {g: i + 1 for i, g in enumerate(goods_nos)}
        brands = list(dict.fromkeys(s.brand_name for s in catalog.skus))
        self.brand_nos = {b: f"PP{i + 1:03d}" for i, b in enumerate(brands)}
        self.used_numbers: set[str] = set()
        self.day_sequence: dict[_dt.date, int] = {}
        self.next_rec_id = 700001
        self.next_sale_order_id = 900001

    # -- numbers ------------------------------------------------------------------------------------
    def _unique(self, make: Callable[[], str]) -> str:
        while True:
            value = make()
            if value not in self.used_numbers:
                self.used_numbers.add(value)
                return value

    def _tid(self, platform_id: int, day: _dt.date) -> str:
        rng = self.rng
        if platform_id == 1:  # Taobao/Tmall: 19 digits
            return self._unique(lambda: str(rng.randint(10**18, 4 * 10**18)))
        if platform_id == 3:  # JD: 12 digits
            return self._unique(lambda: str(rng.randint(2 * 10**11, 3 * 10**11)))
        if platform_id == 69:  # Douyin: 19 digits starting 69
            return self._unique(lambda: f"69{rng.randint(10**16, 10**17 - 1)}")
        return self._unique(lambda: f"FX{day:%Y%m%d}{rng.randint(0, 999999):06d}")

    def _oid(self, platform_id: int, tid: str, n: int) -> str:
        if platform_id in (1, 69):  # sub-orders have their own ids on these platforms
            return self._unique(lambda: str(self.rng.randint(10**18, 4 * 10**18)))
        return f"{tid}-{n}"

    def _order_no(self, day: _dt.date) -> str:
        seq = self.day_sequence.get(day, 0) + self.rng.randint(1, 3)
        self.day_sequence[day] = seq
        return f"CK{day:%Y%m%d}{seq:05d}"

    # -- lines --------------------------------------------------------------------------------------
    def _lines(self, plan: _Plan, tids: list[str]) -> list[_Line]:
        rng = self.rng
        n_lines = rng.choice((1, 1, 1, 2, 2, 3, 4))
        if plan.defect or len(tids) > 1:
            n_lines = max(n_lines, 2)
        skus = rng.sample(self.normal_skus, n_lines)
        gift_last = n_lines >= 2 and plan.defect != DEFECT_ZERO_QUANTITY and rng.random() < 0.15
        paid_positions = list(range(n_lines - 1 if gift_last else n_lines))
        if plan.defect == DEFECT_UNKNOWN_SKU:
            skus[rng.choice(paid_positions)] = UNKNOWN_SKU
        zero_at = rng.choice(paid_positions) if plan.defect == DEFECT_ZERO_QUANTITY else -1
        lines = []
        for i, sku in enumerate(skus):
            gift = gift_last and i == n_lines - 1
            price = Decimal(0) if gift else self._sell_price(sku)
            count = 0 if i == zero_at else (1 if gift else rng.choice((1, 1, 1, 2, 2, 3)))
            lines.append(_Line(sku, count, price, gift, tids[i % len(tids)]))
        return lines

    def _sell_price(self, sku: Sku) -> Decimal:
        if self.rng.random() < 0.3:  # promotion price
            return (sku.price * Decimal(self.rng.choice(("0.80", "0.85", "0.90", "0.95")))).quantize(_CENT)
        return sku.price

    # -- order --------------------------------------------------------------------------------------
    def build(self, index: int, plan: _Plan) -> dict[str, Any]:
        rng = self.rng
        shop = rng.choice(self.catalog.shops)
        warehouse = rng.choice(self.catalog.warehouses)
        day = plan.when.date()
        merged = rng.random() < 0.05
        tids = [self._tid(shop.platform_id, day) for _ in range(2 if merged else 1)]
        lines = self._lines(plan, tids)
        times = self._times(plan)
        stockout_id = 300001 + index
        order = self._header(index, plan, shop, warehouse, tids, times, stockout_id)
        money = self._money(lines, order, stockout_id, shop, times["modified"], plan)
        details = money.pop("details_list")
        order.update(money)
        order.update(self._people(shop))
        order["md5_str"] = hashlib.md5(f"{stockout_id}|{order['modified']}".encode()).hexdigest()
        order["details_list"] = details
        return order

    def _times(self, plan: _Plan) -> dict[str, _dt.datetime | None]:
        rng = self.rng
        delta = _dt.timedelta
        anchor = plan.when
        check = anchor - delta(seconds=rng.randint(600, 6 * 3600))
        created = check - delta(seconds=rng.randint(60, 1800))
        pay = created - delta(seconds=rng.randint(5, 3600))
        trade = pay - delta(seconds=rng.randint(10, 3 * 86400))
        if plan.status == 5:
            consign, modified = None, anchor
        elif plan.status == 110:
            consign, modified = anchor, anchor + delta(seconds=rng.randint(2 * 3600, 48 * 3600))
        else:
            consign, modified = anchor, anchor + delta(seconds=rng.randint(0, 1800))
        return {
            "trade": trade,
            "pay": pay,
            "created": created,
            "check": check,
            "consign": consign,
            "modified": modified,
        }

    def _header(
        self,
        index: int,
        plan: _Plan,
        shop: Shop,
        warehouse: Warehouse,
        tids: list[str],
        times: dict[str, _dt.datetime | None],
        stockout_id: int,
    ) -> dict[str, Any]:
        rng = self.rng
        day = plan.when.date()
        order_no = self._order_no(day)
        trade = times["trade"]
        assert trade is not None
        trade_no = f"JY{trade:%Y%m%d}{index + 1:05d}"
        shipped = plan.status != 5
        carrier = rng.choice(_CARRIERS)
        addr = rng.choice(_ADDRESSES)
        masked = shop.platform_id == 1
        name = rng.choice(_SURNAMES) + rng.choice(_GIVEN)
        mobile = f"1{rng.choice('3589')}{rng.randint(0, 9)}{rng.randint(0, 99999999):08d}"
        street = f"{addr[4]}{rng.randint(1, 999)}号{rng.randint(1, 30)}栋{rng.randint(101, 2505)}室"
        nick = f"{name}{rng.randint(100, 9999)}" if not masked else f"{name[0]}**"
        invoice = rng.random() < 0.1
        weight = Decimal(rng.randint(150, 3000)) / 1000
        fenxiao = shop.shop_no.startswith("FENXIAO")
        src_tids = ",".join(tids)
        return {
            "stockout_id": stockout_id,
            "order_no": order_no,
            "stockout_no": order_no,
            "src_order_no": trade_no,
            "src_order_type": 1,
            "trade_no": trade_no,
            "trade_id": 500001 + index,
            "src_trade_no": src_tids,
            "src_tids": src_tids,
            "status": plan.status,
            "trade_status": plan.status,
            "trade_type": 1,
            "order_type": 1,
            "order_type_name": "销售出库",
            "subtype": 0,
            "custom_type": 0,
            "stockout_reason": "",
            "warehouse_id": warehouse.warehouse_id,
            "warehouse_no": warehouse.warehouse_no,
            "warehouse_name": warehouse.warehouse_name,
            "warehouse_type": 1,
            "shop_no": shop.shop_no,
            "shop_name": shop.shop_name,
            "shop_remark": "",
            "platform_id": shop.platform_id,
            "trade_time": _fmt_dt(times["trade"]),
            "pay_time": _fmt_dt(times["pay"]),
            "created": _fmt_dt(times["created"]),
            "stock_check_time": _fmt_dt(times["check"]),
            "consign_time": _fmt_dt(times["consign"]),
            "modified": _fmt_dt(times["modified"]),
            "to_deliver_time": "",
            "pre_charge_time": "",
            "logistics_id": carrier[3],
            "logistics_code": carrier[0],
            "logistics_name": carrier[1],
            "logistics_type": carrier[2],
            "logistics_no": f"{carrier[0]}{rng.randint(10**11, 10**12 - 1)}" if shipped else "",
            "post_fee": _fmt_money(Decimal(rng.choice(("4.50", "5.00", "6.00", "12.00")))),
            "package_fee": _fmt_money(Decimal("0.50")),
            "weight": _fmt_money(weight),
            "calc_weight": _fmt_money(weight),
            "calc_post_cost": _fmt_money(Decimal(rng.choice(("4.50", "5.00", "6.00")))),
            "receiver_name": f"{name[0]}**" if masked else name,
            "receiver_country": 0,
            "receiver_province": addr[0],
            "receiver_city": addr[1],
            "receiver_district": addr[2],
            "receiver_address": "****" if masked else street,
            "receiver_area": f"{addr[0]} {addr[1]} {addr[2]}",
            "receiver_mobile": f"{mobile[:3]}****{mobile[-4:]}" if masked else mobile,
            "receiver_telno": "",
            "receiver_zip": addr[3],
            "receiver_dtb": f"{addr[1][:2]} {addr[2]}",
            "receiver_ring": 0,
            "id_card_type": 0,
            "nick_name": nick,
            "customer_id": 100001 + index,
            "customer_no": f"KH{trade:%Y%m%d}{index + 1:05d}",
            "customer_name": nick,
            "buyer_message": rng.choice(_BUYER_MESSAGES),
            "cs_remark": rng.choice(_CS_REMARKS),
            "remark": "",
            "print_remark": "",
            "flag_name": "加急" if rng.random() < 0.05 else "",
            "bad_reason": 1 if plan.status == 113 else 0,
            "block_reason": 0,
            "freeze_reason": 0,
            "error_info": "",
            "batch_no": f"PC{day:%Y%m%d}{rng.randint(1, 20):02d}" if shipped else "",
            "invoice_type": 1 if invoice else 0,
            "invoice_title": "杭州某某科技有限公司" if invoice else "",
            "invoice_content": "明细" if invoice else "",
            "invoice_id": 800001 + index if invoice else 0,
            "delivery_term": 1,
            "fenxiao_type": 2 if fenxiao else 0,
            "fenxiao_nick": "华东分销商" if fenxiao else "",
            "outer_no": "",
            "wms_status": 0,
            "is_allocated": 1,
            # Bits [INF]: 1 checked, 2 weighed, 4 stocked out, 8 logistics synced.
            "consign_status": {5: 0, 95: 7, 113: 7, 110: 15}[plan.status],
            "ebill_status": 1 if shipped else 0,
            "currency": "CNY",
        }

    def _money(
        self,
        lines: list[_Line],
        order: dict[str, Any],
        stockout_id: int,
        shop: Shop,
        modified: _dt.datetime | None,
        plan: _Plan,
    ) -> dict[str, Any]:
        rng = self.rng
        totals = [line.sell_price * line.count for line in lines]
        goods_total = sum(totals, Decimal(0))
        coupon = Decimal(rng.choice(("3", "5", "10", "20"))) if rng.random() < 0.3 else Decimal(0)
        if coupon * 5 > goods_total:  # a coupon never eats more than a fifth of the goods
            coupon = Decimal(0)
        post = Decimal(0) if goods_total >= 99 else Decimal(rng.choice(("0", "6", "8", "10")))
        discounts = _spread(coupon, totals)
        shares = [t - d for t, d in zip(totals, discounts, strict=True)]
        posts = _spread(post, shares)
        cancelled = plan.status == 5
        details = [
            self._detail(
                line,
                stockout_id,
                shop,
                modified,
                plan.when.date(),
                cancelled,
                totals[i],
                discounts[i],
                shares[i],
                posts[i],
                order["src_tids"],
                i,
            )
            for i, line in enumerate(lines)
        ]
        cost = sum((self._cost(line.sku) * line.count for line in lines), Decimal(0))
        received = goods_total - coupon + post
        return {
            "goods_count": _fmt_money(Decimal(sum(line.count for line in lines))),
            "goods_type_count": len({line.sku.spec_no for line in lines}),
            "goods_total_amount": _fmt_money(goods_total),
            "goods_total_cost": _fmt_money(cost),
            "discount": _fmt_money(coupon),
            "post_amount": _fmt_money(post),
            "receivable": _fmt_money(received),
            "paid": _fmt_money(received),
            "cod_amount": _fmt_money(Decimal(0)),
            "tax": _fmt_money(Decimal(0)),
            "tax_rate": _fmt_money(Decimal(0)),
            "refund_status": 3 if cancelled else 0,
            "details_list": details,
        }

    @staticmethod
    def _cost(sku: Sku) -> Decimal:
        return (sku.price * Decimal("0.55")).quantize(_CENT)

    def _detail(
        self,
        line: _Line,
        stockout_id: int,
        shop: Shop,
        modified: _dt.datetime | None,
        day: _dt.date,
        cancelled: bool,
        total: Decimal,
        discount: Decimal,
        share: Decimal,
        post: Decimal,
        src_tids: str,
        position: int,
    ) -> dict[str, Any]:
        sku = line.sku
        rec_id, self.next_rec_id = self.next_rec_id, self.next_rec_id + 1
        sale_order_id, self.next_sale_order_id = self.next_sale_order_id, self.next_sale_order_id + 1
        batch = self._batch(sku, day)
        return {
            "rec_id": rec_id,
            "stockout_id": stockout_id,
            "sale_order_id": sale_order_id,
            "spec_no": sku.spec_no,
            "spec_id": self.spec_ids[sku.spec_no],
            "spec_name": sku.spec_name,
            "spec_code": sku.spec_no.rsplit("-", 1)[-1],
            "goods_id": self.goods_ids[sku.goods_no],
            "goods_no": sku.goods_no,
            "goods_name": sku.goods_name,
            "goods_type": 1,
            "barcode": sku.barcode,
            "brand_no": self.brand_nos[sku.brand_name],
            "brand_name": sku.brand_name,
            "goods_count": _fmt_money(Decimal(line.count)),
            "sell_price": _fmt_money(line.sell_price),
            "market_price": _fmt_money(sku.price),
            "cost_price": _fmt_money(self._cost(sku)),
            "total_amount": _fmt_money(total),
            "discount": _fmt_money(discount),
            "share_amount": _fmt_money(share),
            "share_post": _fmt_money(post),
            "paid": _fmt_money(share + post),
            "tax_rate": _fmt_money(Decimal(0)),
            "gift_type": 1 if line.gift else 0,
            "refund_status": 5 if cancelled else 0,
            "src_oid": self._oid(shop.platform_id, line.src_tid, position + 1),
            "src_tid": line.src_tid,
            "suite_no": "",
            "platform_id": shop.platform_id,
            "modified": _fmt_dt(modified),
            **batch,
        }

    def _batch(self, sku: Sku, day: _dt.date) -> dict[str, str]:
        if not sku.batch_managed:
            return {"batch_no": "", "product_date": ZERO_DATETIME, "expire_date": ZERO_DATETIME}
        produced = day - _dt.timedelta(days=self.rng.randint(20, 300))
        expires = produced + _dt.timedelta(days=_SHELF_LIFE_DAYS.get(sku.goods_no[:2], 730))
        return {
            "batch_no": f"{produced:%Y%m%d}",
            "product_date": f"{produced:%Y-%m-%d} 00:00:00",
            "expire_date": f"{expires:%Y-%m-%d} 00:00:00",
        }

    def _people(self, shop: Shop) -> dict[str, Any]:
        rng = self.rng
        checker, operator, packager, picker, printer, examiner = (rng.choice(_STAFF) for _ in range(6))
        salesman = rng.choice(_STAFF) if shop.shop_no.startswith("FENXIAO") else ("", "")
        return {
            "checker_name": checker[1],
            "employee_no": checker[0],
            "checkouter_id": int(checker[0][1:]),
            "operator_id": int(operator[0][1:]),
            "operator_name": operator[1],
            "packager_no": packager[0],
            "packager_name": packager[1],
            "picker_no": picker[0],
            "picker_name": picker[1],
            "printer_no": printer[0],
            "printer_name": printer[1],
            "examiner_no": examiner[0],
            "examiner_name": examiner[1],
            "salesman_no": salesman[0],
            "salesman_name": salesman[1],
            "fullname": salesman[1],
        }
