"""The WDT emulator's stock-in queries (``wdt.stockin.order.query.refund`` / ``.purchase``) through the
Qimen gateway, black-box over loopback HTTP, and their data (:mod:`emulators.stockins`).

Requests are signed by the small md5 signer below, written from the stockout spec §2.3 (secret + sorted
key+value + secret, upper-case hex) and independent of the emulator's code. The ground truth is
``build_stockin_data`` (the accessor other code imports); the stock-outs it derives from are read from
``build_dataset`` directly.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import requests

from emulators.dataset import UNKNOWN_SKU, build_catalog, build_dataset
from emulators.stockins import build_stockin_data, build_stockins
from emulators.wdt import make_server
from emulators.wdt.__main__ import _parse_args, server_options
from tests.conftest import serving

APP_KEY, SECRET, TARGET, SID = "stockin-app", "stockin-secret", "21363512", "stockin-sid"
SEED, ORDERS, START, DAYS = 11, 120, dt.date(2026, 11, 1), 5
REFUND, PURCHASE = "wdt.stockin.order.query.refund", "wdt.stockin.order.query.purchase"
SHANGHAI = dt.timezone(dt.timedelta(hours=8))
FORMAT = "%Y-%m-%d %H:%M:%S"
# after every stock-in of the data set: the whole history has happened
NOW = dt.datetime(2026, 12, 1, 12, tzinfo=SHANGHAI)
# one window (under 30 days) holding every stock-in's modified time
WHOLE = {"start_time": "2026-10-25 00:00:00", "end_time": "2026-11-23 23:59:59"}
EVERY_STATUS = {REFUND: "10,20,30,60,80", PURCHASE: "10,20,25,30,60,80"}
PRIVATE = ("customer_name", "nick_name")  # the buyer fields Qimen does not hand out for 淘系
DECIMAL_RE = re.compile(r"^-?\d+\.\d{4}$")
ZERO_DATETIME = "0000-00-00 00:00:00"


# -- independent client ------------------------------------------------------------------------------
def qimen_md5(params: dict[str, str], secret: str) -> str:
    text = secret + "".join(k + v for k, v in sorted(params.items()) if k != "sign" and v != "") + secret
    return hashlib.md5(text.encode("utf-8")).hexdigest().upper()


def ask(
    url: str,
    method: str,
    business: dict[str, Any],
    *,
    secret: str = SECRET,
    fmt: str = "json",
    sign: str | None = None,
    **system: str,
) -> requests.Response:
    """One md5-signed call (or one carrying `sign`) in the official SDK's layout: system parameters in the
    URL, business ones as a form body."""
    sys_params = {
        "method": method,
        "app_key": APP_KEY,
        "target_app_key": TARGET,
        "sid": SID,
        "timestamp": dt.datetime.now(SHANGHAI).strftime(FORMAT),
        "format": fmt,
        "v": "2.0",
        "sign_method": "md5",
        **system,
    }
    biz = {k: str(v) for k, v in business.items()}
    sys_params["sign"] = sign or qimen_md5({**sys_params, **biz}, secret)
    return requests.post(url, params=sys_params, data=biz, timeout=10)


def qimen(url: str, method: str, business: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    r = ask(url, method, business, **kwargs)
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json;charset=UTF-8"
    return r.json()["response"]


def read_all(url: str, method: str, business: dict[str, Any], size: int = 7) -> list[dict[str, Any]]:
    """Every page, by total_count from page 0."""
    first = qimen(url, method, {**business, "page_no": 0, "page_size": size})
    assert first["flag"] == "success" and first["errorcode"] == 0, first
    rows, page = list(first["stockin_list"]), 1
    while len(rows) < first["total_count"]:
        body = qimen(url, method, {**business, "page_no": page, "page_size": size})
        assert body["flag"] == "success" and body["stockin_list"] and "total_count" not in body, body
        rows += body["stockin_list"]
        page += 1
    assert qimen(url, method, {**business, "page_no": page, "page_size": size})["stockin_list"] == []
    return rows


def qimen_view(stockin: dict[str, Any]) -> dict[str, Any]:
    """A stock-in as the gateway's default switches show it: 淘系 buyers' fields absent."""
    if stockin.get("platform_id") == 1:
        return {k: v for k, v in stockin.items() if k not in PRIVATE}
    return stockin


def serve(**options: Any) -> Any:
    options = {
        "app_key": APP_KEY,
        "app_secret": SECRET,
        "target_app_key": TARGET,
        "sid": SID,
        "seed": SEED,
        "orders": ORDERS,
        "start": START,
        "days": DAYS,
        **options,
    }
    return serving(make_server("127.0.0.1", 0, **options))


@pytest.fixture(scope="module")
def server() -> Iterator[Any]:
    with serve() as srv:
        srv.emulator.set_now(NOW)
        yield srv


@pytest.fixture(scope="module")
def url(server: Any) -> str:
    return server.url


@pytest.fixture(scope="module")
def truth() -> Any:
    return build_stockin_data(SEED, ORDERS, START, DAYS)


@pytest.fixture(scope="module")
def stockouts() -> list[dict[str, Any]]:
    return build_dataset(SEED, ORDERS, START, DAYS).orders


def at(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, FORMAT).replace(tzinfo=SHANGHAI)


def money(value: str) -> Decimal:
    assert DECIMAL_RE.match(value), value
    amount = Decimal(value)
    assert amount == amount.quantize(Decimal("0.01")), value  # to the cent
    return amount


# -- the data ------------------------------------------------------------------------------------------
REFUND_HEAD = """
stockin_id order_no stockin_no status process_status src_order_no refund_no refund_id trade_no trade_type
tid order_type src_order_type order_type_name shop_no shop_name shop_remark platform_id warehouse_no
warehouse_name stockin_time check_time created_time modified goods_count goods_type_count goods_amount
total_price actual_refund_amount discount tax_amount post_fee other_fee adjust_num adjust_price right_price
logistics_type logistics_name logistics_code logistics_no customer_no customer_name nick_name
check_operator_name refund_operator_name stockin_operator_name refund_remark stockin_reason remark
creator_name details_list
""".split()
REFUND_LINE = """
rec_id stockin_id src_order_detail_id spec_no spec_id spec_name goods_no goods_name barcode brand_no
brand_name goods_unit goods_count num num2 right_num right_price right_cost adjust_num adjust_price
src_price cost_price tax_price tax_amount tax total_cost discount stockin_price actual_refund_amount tid
oid src_order_type platform_id stock_type remark modified created
""".split()
PURCHASE_HEAD = """
stockin_id order_no stockin_no status warehouse_id warehouse_no warehouse_name stockin_time check_time
created_time modified src_order_no src_order_type purchase_no provider_no provider_name outer_no remark
stockin_reason order_type order_type_name goods_count goods_type_count goods_amount total_price discount
tax_amount post_fee other_fee right_nums right_price adjust_num logistics_type logistics_code
logistics_name logistics_no check_operator_name operator_name details_list
""".split()
PURCHASE_LINE = """
rec_id stockin_id spec_no spec_id spec_name goods_no goods_name barcode brand_no brand_name goods_count num
expect_num right_num right_price right_cost adjust_num cost_price src_price tax_price tax_amount tax
total_cost production_date expire_date validity_days position_no src_order_type remark modified created
""".split()


def test_the_ground_truth_shape_numbers_and_types(truth: Any) -> None:
    assert truth.refunds and truth.purchases
    for r in truth.refunds:
        assert sorted(r) == sorted(REFUND_HEAD) and all(
            sorted(line) == sorted(REFUND_LINE) for line in r["details_list"]
        )
        assert re.fullmatch(r"RK\d{12}", r["order_no"]) and r["stockin_no"] == r["order_no"]
        assert re.fullmatch(r"TK\d{12}", r["refund_no"]) and r["src_order_no"] == r["refund_no"]
        assert r["trade_no"].startswith("JY") and isinstance(r["status"], int)
        assert (r["order_type"], r["src_order_type"], r["order_type_name"]) == (3, 3, "退货入库")
    for p in truth.purchases:
        assert sorted(p) == sorted(PURCHASE_HEAD) and all(
            sorted(line) == sorted(PURCHASE_LINE) for line in p["details_list"]
        )
        assert re.fullmatch(r"CR\d{12}", p["order_no"]) and p["stockin_no"] == p["order_no"]
        assert re.fullmatch(r"CG\d{12}", p["purchase_no"]) and p["src_order_no"] == p["purchase_no"]
        assert isinstance(p["status"], str) and p["status"].isdigit()
        assert (p["order_type"], p["src_order_type"], p["order_type_name"]) == (1, 1, "采购入库")
    everything = truth.refunds + truth.purchases
    ids = [s["stockin_id"] for s in everything]
    assert all(isinstance(i, str) and i.isdigit() for i in ids) and len(set(ids)) == len(ids)
    assert len({s["order_no"] for s in everything}) == len(everything)
    recs = [line["rec_id"] for s in everything for line in s["details_list"]]
    assert all(isinstance(r, str) for r in recs) and len(set(recs)) == len(recs)
    for s in everything:
        assert all(line["stockin_id"] == s["stockin_id"] for line in s["details_list"])
        for when in (s["created_time"], s["modified"]):
            assert dt.datetime.strptime(when, FORMAT)
        assert s["created_time"] <= s["modified"]
        if int(s["status"]) in (60, 80):
            assert s["created_time"] <= s["stockin_time"] == s["check_time"] <= s["modified"]
        else:
            assert s["stockin_time"] == s["check_time"] == ZERO_DATETIME
    # the API order
    for rows in (truth.refunds, truth.purchases):
        assert rows == sorted(rows, key=lambda s: (s["modified"], int(s["stockin_id"])))
    # every state in the history; the last is the final one
    assert set(truth.history) == set(ids)
    for s in everything:
        states = truth.history[s["stockin_id"]]
        assert states[-1] == s and int(states[0]["status"]) == 20
        assert [x["modified"] for x in states] == sorted({x["modified"] for x in states})


def test_the_mix_of_statuses_and_arrivals(truth: Any) -> None:
    refund_statuses = Counter(r["status"] for r in truth.refunds)
    purchase_statuses = Counter(p["status"] for p in truth.purchases)
    assert refund_statuses[80] > len(truth.refunds) / 2 and set(refund_statuses) - {80}
    assert purchase_statuses["80"] > len(truth.purchases) / 2 and set(purchase_statuses) - {"80"}
    assert set(refund_statuses) <= {10, 20, 30, 60, 80} and set(purchase_statuses) <= {
        "10",
        "20",
        "25",
        "30",
        "60",
        "80",
    }
    per_refund = Counter(r["refund_no"] for r in truth.refunds)
    two = [n for n, count in per_refund.items() if count == 2]
    assert two and max(per_refund.values()) == 2
    # a split refund: both arrivals done, the first reported as a partial arrival (70)
    pair = sorted((r for r in truth.refunds if r["refund_no"] == two[0]), key=lambda r: int(r["stockin_id"]))
    assert [r["status"] for r in pair] == [80, 80] and [r["process_status"] for r in pair] == [70, 90]
    assert pair[0]["trade_no"] == pair[1]["trade_no"] and pair[0]["modified"] < pair[1]["created_time"]
    # an edit after completion re-surfaces a stock-in later
    assert any(s["remark"] and s["modified"] > s["check_time"] for s in truth.refunds + truth.purchases)


def test_refunds_come_from_clean_completed_stockouts(truth: Any, stockouts: list[dict[str, Any]]) -> None:
    dataset = build_dataset(SEED, ORDERS, START, DAYS)
    by_trade = {o["src_order_no"]: o for o in stockouts}
    shipped: dict[tuple[str, str], dict[str, Any]] = {}
    for o in stockouts:
        for line in o["details_list"]:
            shipped[(line["src_tid"], line["src_oid"])] = line
    returned: defaultdict[tuple[str, str], Decimal] = defaultdict(Decimal)
    sales = set()
    for r in truth.refunds:
        sale = by_trade[r["trade_no"]]
        sales.add(sale["stockout_id"])
        assert sale["status"] == 110 and sale["order_no"] not in dataset.defects
        assert r["modified"] > sale["modified"] and r["created_time"] > sale["modified"]
        assert r["tid"] in sale["src_tids"].split(",")
        assert (r["shop_no"], r["shop_name"], r["platform_id"]) == (
            sale["shop_no"],
            sale["shop_name"],
            sale["platform_id"],
        )
        assert (r["warehouse_no"], r["customer_no"]) == (sale["warehouse_no"], sale["customer_no"])
        for line in r["details_list"]:
            original = shipped[(line["tid"], line["oid"])]
            assert original["stockout_id"] == sale["stockout_id"] and line["tid"] == r["tid"]
            assert line["spec_no"] == original["spec_no"] and line["src_price"] == original["sell_price"]
            assert line["goods_count"] == line["num"] == line["right_num"]
            returned[(line["tid"], line["oid"])] += money(line["goods_count"])
    # never more back than was shipped, whatever the stock-ins' statuses
    assert returned and all(n <= Decimal(shipped[key]["goods_count"]) for key, n in returned.items())
    clean = [o for o in stockouts if o["status"] == 110 and o["order_no"] not in dataset.defects]
    assert 0.08 <= len(sales) / len(clean) <= 0.16


def test_purchases_buy_known_goods_from_the_catalog_suppliers(truth: Any) -> None:
    catalog = build_catalog(SEED)
    suppliers = {s.provider_no: s for s in catalog.suppliers}
    skus = {s.spec_no: s for s in catalog.skus}
    warehouses = {w.warehouse_no for w in catalog.warehouses}
    days = {(START + dt.timedelta(days=d)).isoformat() for d in range(DAYS)}
    for p in truth.purchases:
        supplier = suppliers[p["provider_no"]]
        assert p["provider_name"] == supplier.provider_name and p["warehouse_no"] in warehouses
        for line in p["details_list"]:
            sku = skus[line["spec_no"]]
            assert sku is not UNKNOWN_SKU and sku.known_to_kingdee and sku.brand_name in supplier.brands
            assert money(line["right_num"]) > 0 and money(line["right_price"]) >= 0
    # a few stock-ins on every day of the data set
    assert days <= {p["created_time"][:10] for p in truth.purchases}
    assert len(truth.purchases) >= DAYS


def test_money_and_quantities_are_exact_sums(truth: Any) -> None:
    for r in truth.refunds:
        lines = r["details_list"]
        for line in lines:
            num = money(line["num"])
            assert money(line["discount"]) == money(line["src_price"]) * num - money(line["actual_refund_amount"])
            assert money(line["total_cost"]) == money(line["cost_price"]) * num
        assert money(r["goods_count"]) == sum(money(line["goods_count"]) for line in lines)
        assert money(r["goods_type_count"]) == len(lines)
        assert money(r["goods_amount"]) == sum(money(line["src_price"]) * money(line["num"]) for line in lines)
        assert money(r["goods_amount"]) == money(r["right_price"])
        assert money(r["actual_refund_amount"]) == sum(money(line["actual_refund_amount"]) for line in lines)
        assert money(r["discount"]) == sum(money(line["discount"]) for line in lines)
        assert (
            money(r["total_price"])
            == money(r["goods_amount"]) - money(r["discount"])
            == money(r["actual_refund_amount"])
        )
        assert 0 <= money(r["actual_refund_amount"]) <= money(r["goods_amount"])
    for p in truth.purchases:
        lines = p["details_list"]
        for line in lines:
            total = money(line["right_num"]) * money(line["right_price"])
            assert money(line["total_cost"]) == money(line["right_cost"]) == total
            assert money(line["tax_amount"]) == (total * Decimal("0.13") / Decimal("1.13")).quantize(Decimal("0.01"))
            assert (
                money(line["goods_count"])
                == money(line["num"])
                == money(line["right_num"])
                <= money(line["expect_num"])
            )
            assert line["tax"] == "0.1300"
        assert money(p["goods_count"]) == money(p["right_nums"]) == sum(money(line["right_num"]) for line in lines)
        assert money(p["goods_amount"]) == money(p["total_price"]) == money(p["right_price"])
        assert money(p["goods_amount"]) == sum(money(line["total_cost"]) for line in lines)
        assert money(p["tax_amount"]) == sum(money(line["tax_amount"]) for line in lines)


def test_the_data_is_deterministic() -> None:
    first = json.dumps(build_stockin_data(SEED, ORDERS, START, DAYS).__dict__, ensure_ascii=False, sort_keys=True)
    again = json.dumps(
        build_stockins(build_dataset(SEED, ORDERS, START, DAYS)).__dict__, ensure_ascii=False, sort_keys=True
    )
    other = json.dumps(build_stockin_data(SEED + 1, ORDERS, START, DAYS).__dict__, ensure_ascii=False, sort_keys=True)
    assert first == again != other
    assert build_stockin_data(SEED, 0, START, DAYS).refunds == []


# -- reading through the gateway -------------------------------------------------------------------------
def test_every_stockin_lies_in_the_test_window(truth: Any) -> None:
    assert all(WHOLE["start_time"] <= s["modified"] <= WHOLE["end_time"] for s in truth.refunds + truth.purchases)
    assert max(s["modified"] for s in truth.refunds + truth.purchases) < NOW.strftime(FORMAT)


@pytest.mark.parametrize("method", [REFUND, PURCHASE])
def test_page_by_page_gives_exactly_the_ground_truth(url: str, truth: Any, method: str) -> None:
    final = truth.refunds if method == REFUND else truth.purchases
    everything = read_all(url, method, {**WHOLE, "status": EVERY_STATUS[method]})
    assert everything == [qimen_view(s) for s in final]
    # the default status is 80 已完成: the rest are hidden
    done = read_all(url, method, WHOLE, size=5)
    assert done == [qimen_view(s) for s in final if int(s["status"]) == 80]
    assert len(done) < len(everything)


def test_the_server_holds_the_ground_truth(server: Any, truth: Any) -> None:
    assert server.stockins.refunds() == truth.refunds and server.stockins.purchases() == truth.purchases
    assert server.stockins.data.refunds == truth.refunds


@pytest.mark.parametrize("method", [REFUND, PURCHASE])
def test_status_filters(url: str, truth: Any, method: str) -> None:
    final = truth.refunds if method == REFUND else truth.purchases
    for status in EVERY_STATUS[method].split(","):
        rows = read_all(url, method, {**WHOLE, "status": status}, size=100)
        assert [r["stockin_id"] for r in rows] == [s["stockin_id"] for s in final if str(s["status"]) == status]
    rows = read_all(url, method, {**WHOLE, "status": " 60,80"}, size=100)
    assert [r["stockin_id"] for r in rows] == [s["stockin_id"] for s in final if int(s["status"]) in (60, 80)]
    for bad in ("99", "80,abc", "80,", "95", "已完成") + (("25",) if method == REFUND else ()):
        body = qimen(url, method, {**WHOLE, "status": bad})
        assert body["flag"] == "failure" and body["errorcode"] == 100, (bad, body)
        assert body["sub_code"] == "isv.invalid-parameter:status"


def test_refund_filters(url: str, truth: Any) -> None:
    done = [r for r in truth.refunds if r["status"] == 80]
    shop = done[0]["shop_no"]
    rows = read_all(url, REFUND, {**WHOLE, "shop_no": shop}, size=100)
    assert [r["stockin_id"] for r in rows] == [r["stockin_id"] for r in done if r["shop_no"] == shop]
    # a refund in two stock-ins: one src_order_no, both; without a window too
    refund_no = next(n for n, c in Counter(r["refund_no"] for r in done).items() if c == 2)
    for business in ({"src_order_no": refund_no}, {**WHOLE, "src_order_no": refund_no}):
        rows = read_all(url, REFUND, business)
        assert len(rows) == 2 and {r["src_order_no"] for r in rows} == {refund_no}
    one = done[-1]
    assert read_all(url, REFUND, {"stockin_no": one["order_no"]}) == [qimen_view(one)]
    # a document number outside the window: the window still narrows
    assert (
        read_all(
            url,
            REFUND,
            {"start_time": "2026-01-01 00:00:00", "end_time": "2026-01-02 00:00:00", "stockin_no": one["order_no"]},
        )
        == []
    )
    # the default status holds for number look-ups: another status must be asked for
    other = next(r for r in truth.refunds if r["status"] != 80)
    assert read_all(url, REFUND, {"stockin_no": other["order_no"]}) == []
    assert read_all(url, REFUND, {"stockin_no": other["order_no"], "status": str(other["status"])}) == [
        qimen_view(other)
    ]
    # a purchase-only filter means nothing here
    assert read_all(url, REFUND, {**WHOLE, "warehouse_no": "NOPE"}) == [qimen_view(r) for r in done]


def test_purchase_filters(url: str, truth: Any) -> None:
    done = [p for p in truth.purchases if p["status"] == "80"]
    warehouse = done[0]["warehouse_no"]
    rows = read_all(url, PURCHASE, {**WHOLE, "warehouse_no": warehouse}, size=100)
    assert [r["stockin_id"] for r in rows] == [p["stockin_id"] for p in done if p["warehouse_no"] == warehouse]
    one = done[-1]
    assert read_all(url, PURCHASE, {"src_order_no": one["purchase_no"]}) == [
        p for p in done if p["purchase_no"] == one["purchase_no"]
    ]
    assert read_all(url, PURCHASE, {"stockin_no": one["order_no"]}) == [one]
    assert read_all(url, PURCHASE, {"stockin_outer_no": one["outer_no"]}) == [one]
    assert read_all(url, PURCHASE, {"stockin_no": "CR-NONE"}) == []


@pytest.mark.parametrize("method", [REFUND, PURCHASE])
def test_window_and_number_missing_is_2900(url: str, method: str) -> None:
    for business in ({}, {"shop_no": "TMALL001", "warehouse_no": "WH001"}, {"src_order_no": "", "stockin_no": ""}):
        body = qimen(url, method, business)
        assert body["flag"] == "failure" and body["errorcode"] == body["code"] == 2900, body
        assert body["message"] == "时间范围与入库单号不能全部为空" and "stockin_list" not in body


@pytest.mark.parametrize("method", [REFUND, PURCHASE])
def test_window_rules(url: str, method: str) -> None:
    thirty = {"start_time": "2026-11-01 00:00:00", "end_time": "2026-12-01 00:00:00"}
    assert qimen(url, method, thirty)["flag"] == "success"  # exactly 30 days
    body = qimen(url, method, {**thirty, "end_time": "2026-12-01 00:00:01"})
    assert body["errorcode"] == 100 and body["sub_code"] == "isv.time-span-too-long"
    body = qimen(url, method, {"start_time": "2026-11-02 00:00:00", "end_time": "2026-11-01 00:00:00"})
    assert body["errorcode"] == 100 and body["sub_code"] == "isv.invalid-parameter:start_time"
    body = qimen(url, method, {"start_time": "2026-11-01", "end_time": "2026-11-02 00:00:00"})
    assert body["errorcode"] == 100 and body["sub_code"] == "isv.invalid-parameter:start_time"
    body = qimen(url, method, {"start_time": "2026-11-01 00:00:00"})
    assert body["errorcode"] == 100 and body["sub_code"] == "isv.invalid-parameter:end_time"
    for size in (0, 101, "x"):
        body = qimen(url, method, {**WHOLE, "page_size": size})
        assert body["errorcode"] == 100 and body["sub_code"] == "isv.invalid-parameter:page_size"
    assert qimen(url, method, {**WHOLE, "page_size": 100})["flag"] == "success"


def test_window_ends_are_inclusive(url: str, truth: Any) -> None:
    one = next(r for r in truth.refunds if r["status"] == 80)
    exact = {"start_time": one["modified"], "end_time": one["modified"]}
    assert one["stockin_id"] in [r["stockin_id"] for r in read_all(url, REFUND, exact)]
    after = (at(one["modified"]) + dt.timedelta(seconds=1)).strftime(FORMAT)
    assert one["stockin_id"] not in [
        r["stockin_id"] for r in read_all(url, REFUND, {"start_time": after, "end_time": after})
    ]


def test_envelope_prefix_and_unknown_variants(url: str, truth: Any) -> None:
    body = qimen(url, "hu3cgwt0tc." + PURCHASE, WHOLE)
    assert body["flag"] == "success" and body["code"] == body["errorcode"] == 0 and body["message"] == ""
    assert body["request_id"] and body["total_count"] == sum(p["status"] == "80" for p in truth.purchases)
    assert qimen(url.replace("/router/qm", "/router/qmtest"), REFUND, WHOLE)["flag"] == "success"
    for method in (
        "hu3cgwt0tc.wdt.ext.stockin.order.query.refund.xc",
        "wdt.stockin.order.query",
        "wdt.his.stockin.order.query.refund",
    ):
        body = qimen(url, method, WHOLE)
        assert body["flag"] == "failure" and body["code"] == 22 and body["message"] == "Invalid Method"


@pytest.mark.parametrize("method", [REFUND, PURCHASE])
def test_a_wrong_signature_is_refused(url: str, method: str) -> None:
    body = qimen(url, method, WHOLE, secret="not-the-secret")
    assert body["flag"] == "failure" and body["code"] == 25 and body["message"] == "Invalid signature"
    assert "errorcode" not in body and "stockin_list" not in body
    body = qimen(url, method, WHOLE, sign="0" * 32)
    assert body["code"] == 25


def test_xml_lists_stockins(url: str) -> None:
    r = ask(url, REFUND, {**WHOLE, "page_size": 3}, fmt="xml")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/xml")
    root = ET.fromstring(r.content)
    assert root.tag == "response" and root.findtext("errorcode") == "0"
    assert len(root.findall("stockin_list/stockin")) == 3 and root.findall("stockin_list/stockin/details_list/detail")


# -- switches ------------------------------------------------------------------------------------------
def test_taobao_refunds_via_qimen_privacy_absent_or_masked(url: str, truth: Any) -> None:
    taobao = [r for r in truth.refunds if r["platform_id"] == 1 and r["status"] == 80]
    assert taobao
    rows = {r["stockin_id"]: r for r in read_all(url, REFUND, WHOLE, size=100)}
    for r in taobao:
        assert not set(PRIVATE) & set(rows[r["stockin_id"]]) and rows[r["stockin_id"]]["customer_no"]
    other = next(r for r in truth.refunds if r["platform_id"] != 1 and r["status"] == 80)
    assert rows[other["stockin_id"]]["customer_name"] == other["customer_name"]
    with serve(privacy="masked", now=NOW) as srv:
        masked = {r["stockin_id"]: r for r in read_all(srv.url, REFUND, WHOLE, size=100)}
    for r in taobao:
        assert masked[r["stockin_id"]]["customer_name"].endswith("**") and masked[r["stockin_id"]] == r


@pytest.mark.parametrize(("switch", "refund", "purchase"), [("mixed", int, str), ("int", int, int), ("str", str, str)])
def test_status_type_switch(switch: str, refund: type, purchase: type) -> None:
    with serve(stockin_status_type=switch, now=NOW) as srv:
        r = qimen(srv.url, REFUND, {**WHOLE, "page_size": 1})["stockin_list"][0]
        p = qimen(srv.url, PURCHASE, {**WHOLE, "page_size": 1})["stockin_list"][0]
    assert int(r["status"]) == int(p["status"]) == 80
    assert type(r["status"]) is refund and type(p["status"]) is purchase
    assert server_options(_parse_args(["--stockin-status-type", switch]))["stockin_status_type"] == switch
    with pytest.raises(ValueError):
        make_server("127.0.0.1", 0, stockin_status_type="float")


def test_total_count_on_page_0_or_every_page(truth: Any) -> None:
    with serve(total_count_every_page=True, now=NOW) as srv:
        body = qimen(srv.url, PURCHASE, {**WHOLE, "page_no": 1, "page_size": 2})
    assert body["total_count"] == sum(p["status"] == "80" for p in truth.purchases)


# -- the business clock ----------------------------------------------------------------------------------
def test_the_clock_shows_each_stockin_as_it_was(truth: Any) -> None:
    one = next(r for r in truth.refunds if r["status"] == 80 and not r["remark"])
    states = truth.history[one["stockin_id"]]
    assert [s["status"] for s in states] == [20, 30, 80]
    number = {"stockin_no": one["order_no"], "status": EVERY_STATUS[REFUND]}
    with serve() as srv:
        srv.emulator.set_now(at(one["created_time"]) - dt.timedelta(seconds=1))
        assert read_all(srv.url, REFUND, number) == []  # not created yet
        assert one["stockin_id"] not in [r["stockin_id"] for r in srv.stockins.refunds()]
        srv.emulator.set_now(at(states[1]["modified"]))
        (submitted,) = read_all(srv.url, REFUND, number)
        assert submitted["status"] == 30 and submitted["stockin_time"] == ZERO_DATETIME
        assert submitted == qimen_view(states[1])
        assert read_all(srv.url, REFUND, {"stockin_no": one["order_no"]}) == []  # not 80 yet
        # nothing is ever modified after the clock
        window = {
            "start_time": "2026-10-25 00:00:00",
            "end_time": "2026-11-23 23:59:59",
            "status": EVERY_STATUS[REFUND],
        }
        assert all(r["modified"] <= states[1]["modified"] for r in read_all(srv.url, REFUND, window, size=100))
        srv.emulator.set_now(at(one["modified"]))
        assert read_all(srv.url, REFUND, {"stockin_no": one["order_no"]}) == [qimen_view(one)]


# -- faults ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", [REFUND, PURCHASE])
def test_rate_limit_applies_to_the_stockin_methods(method: str) -> None:
    with serve(throttle_per_minute=2, now=NOW) as srv:
        codes = [qimen(srv.url, method, WHOLE)["errorcode"] for _ in range(3)]
        body = qimen(srv.url, method, WHOLE)
    assert codes == [0, 0, 1012]
    assert body["flag"] == "failure" and body["code"] == 1012 and body["sub_code"] == "isv.call-limited"


def test_5xx_and_latency_apply_to_the_stockin_methods() -> None:
    with serve(error_rate=1.0, now=NOW) as srv:
        statuses = {ask(srv.url, method, WHOLE).status_code for method in (REFUND, PURCHASE) * 4}
    assert statuses <= {500, 502, 503} and statuses
    with serve(latency_ms=200, now=NOW) as srv:
        started = dt.datetime.now()
        assert qimen(srv.url, PURCHASE, WHOLE)["flag"] == "success"
        assert dt.datetime.now() - started >= dt.timedelta(milliseconds=200)
