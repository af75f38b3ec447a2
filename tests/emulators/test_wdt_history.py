"""The WDT emulator's clock, order histories, renumbering and churn, black-box over loopback HTTP.

`server.emulator` (clock and ground truth) is the test interface the emulator documents; everything
else is read through the gateway like any Qimen client would.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from emulators.dataset import build_dataset
from emulators.wdt import make_server
from tests.conftest import serving
from tests.emulators.test_wdt_emulator import (
    APP_KEY,
    DAYS,
    ORDERS,
    SECRET,
    SEED,
    SID,
    START,
    TARGET,
    call,
)

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
FORMAT = "%Y-%m-%d %H:%M:%S"
WHOLE_DATA = {"start_time": f"{START} 00:00:00", "end_time": f"{START + dt.timedelta(days=DAYS + 3)} 00:00:00"}


def serve(**options: Any) -> Any:
    # The shape switches at the side that hands out every field the data set holds, so that answers
    # compare with the data set as built (the strict defaults drop some: tests/emulators/test_wdt_faults.py).
    return serving(
        make_server(
            "127.0.0.1",
            0,
            app_key=APP_KEY,
            app_secret=SECRET,
            target_app_key=TARGET,
            sid=SID,
            seed=SEED,
            orders=ORDERS,
            start=START,
            days=DAYS,
            batch_fields=True,
            privacy="masked",
            **options,
        )
    )


def at(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, FORMAT).replace(tzinfo=SHANGHAI)


def text(when: dt.datetime) -> str:
    return when.astimezone(SHANGHAI).strftime(FORMAT)


@pytest.fixture(scope="module")
def final_orders() -> list[dict[str, Any]]:
    return build_dataset(SEED, ORDERS, START, DAYS).orders


@pytest.fixture()
def server() -> Iterator[Any]:
    with serve() as srv:
        yield srv


def by_number(url: str, number: str) -> list[dict[str, Any]]:
    body = call(url, {"stockout_no": number})
    assert body["flag"] == "success", body
    return body["stockout_list"]


def read_all(url: str, business: dict[str, Any], size: int = 100) -> list[dict[str, Any]]:
    rows, page = [], 0
    while True:
        body = call(url, {**business, "page_no": page, "page_size": size})
        assert body["flag"] == "success", body
        rows += body["stockout_list"]
        if len(body["stockout_list"]) < size:
            return rows
        page += 1


# -- clock ---------------------------------------------------------------------------------------------
def test_an_order_is_shipped_at_noon_and_completed_later(server: Any, final_orders: list[dict[str, Any]]) -> None:
    order = next(o for o in final_orders if o["status"] == 110 and o["fenxiao_type"] == 0)
    consigned, completed = at(order["consign_time"]), at(order["modified"])
    assert completed - consigned >= dt.timedelta(hours=2)  # the data set's late completion
    window = (consigned.replace(hour=0, minute=0, second=0), consigned.replace(hour=23, minute=59, second=59))
    sid = str(order["stockout_id"])

    server.emulator.set_now(at(order["created"]) - dt.timedelta(seconds=1))
    assert by_number(server.url, order["stockout_no"]) == []

    server.emulator.set_now(consigned + dt.timedelta(hours=1))  # shipped, not yet completed
    [shipped] = by_number(server.url, order["stockout_no"])
    assert shipped["status"] == shipped["trade_status"] == 95
    assert shipped["consign_time"] == order["consign_time"]
    assert order["consign_time"] <= shipped["modified"] <= text(consigned + dt.timedelta(minutes=30))
    assert sid not in server.emulator.ground_truth(*window)

    server.emulator.set_now(completed + dt.timedelta(hours=1))
    [done] = by_number(server.url, order["stockout_no"])
    assert done == order
    assert server.emulator.ground_truth(*window)[sid] == order["order_no"]


def test_now_may_be_any_callable(final_orders: list[dict[str, Any]]) -> None:
    ticks = [at(f"{START} 12:00:00")]
    with serve(now=lambda: ticks[0]) as srv:
        assert srv.emulator.now() == ticks[0]
        early = read_all(srv.url, {**WHOLE_DATA, "is_by_modified": 1})
        assert early and max(o["modified"] for o in early) <= f"{START} 12:00:00"
        ticks[0] = at(f"{START + dt.timedelta(days=DAYS + 3)} 00:00:00")
        assert read_all(srv.url, {**WHOLE_DATA, "is_by_modified": 1}) == final_orders


def test_nothing_is_modified_after_the_clock(server: Any) -> None:
    now = at(f"{START + dt.timedelta(days=2)} 15:30:00")
    server.emulator.set_now(now)
    rows = read_all(server.url, {**WHOLE_DATA, "is_by_modified": 1})
    assert rows and max(o["modified"] for o in rows) <= text(now)
    assert all(line["modified"] == o["modified"] for o in rows for line in o["details_list"])
    assert {o["status"] for o in rows} >= {55, 95, 110}
    later = read_all(
        server.url, {"start_time": text(now), "end_time": text(now + dt.timedelta(days=9)), "is_by_modified": 1}
    )
    assert all(o["modified"] == text(now) for o in later)


def test_statuses_55_and_105_exist_and_cancellations_follow_the_clock(
    server: Any, final_orders: list[dict[str, Any]]
) -> None:
    server.emulator.set_now(at(f"{START + dt.timedelta(days=3)} 20:00:00"))
    approved = read_all(server.url, {**WHOLE_DATA, "status": 55})
    assert approved and all(o["consign_time"] == "0000-00-00 00:00:00" for o in approved)
    partly_paid = read_all(server.url, {**WHOLE_DATA, "status": 105})
    assert partly_paid and all(o["consign_time"] != "0000-00-00 00:00:00" for o in partly_paid)
    cancelled = next(o for o in final_orders if o["status"] == 5)
    server.emulator.set_now(at(cancelled["modified"]) - dt.timedelta(seconds=1))
    assert by_number(server.url, cancelled["stockout_no"])[0]["status"] == 55
    server.emulator.set_now(at(cancelled["modified"]))
    assert by_number(server.url, cancelled["stockout_no"]) == [cancelled]


def test_a_client_reading_everything_gets_the_ground_truth(server: Any) -> None:
    now = at(f"{START + dt.timedelta(days=2)} 12:00:00")
    server.emulator.set_now(now)
    start = at(f"{START} 00:00:00")
    rows = read_all(
        server.url, {"start_time": text(start), "end_time": text(now - dt.timedelta(seconds=1)), "status": 110}, size=7
    )
    truth = server.emulator.ground_truth(start, now)
    assert truth and {str(o["stockout_id"]): o["order_no"] for o in rows} == truth


def test_the_real_clock_shows_the_data_set_as_built(server: Any, final_orders: list[dict[str, Any]]) -> None:
    assert server.emulator.orders() == final_orders
    end = at(f"{START + dt.timedelta(days=DAYS)} 00:00:00")
    expected = {str(o["stockout_id"]): o["order_no"] for o in final_orders if o["status"] == 110}
    assert server.emulator.ground_truth(at(f"{START} 00:00:00"), end) == expected


# -- late completion and renumbering -------------------------------------------------------------------
@pytest.mark.parametrize("late_rate", [0.0, 0.5, 1.0])
def test_late_rate_is_the_share_completed_hours_after_shipping(late_rate: float) -> None:
    with serve(late_rate=late_rate) as srv:
        done = [o for o in srv.emulator.orders() if o["status"] == 110]
        delays = [at(o["modified"]) - at(o["consign_time"]) for o in done]
        late = sum(d >= dt.timedelta(hours=2) for d in delays)
        assert all(d <= dt.timedelta(hours=48) for d in delays)
        assert all(d <= dt.timedelta(hours=1) for d in delays if d < dt.timedelta(hours=2))
        if late_rate == 0:
            assert late == 0
        elif late_rate == 1:
            assert late == len(done)
        else:
            assert 0.3 * len(done) < late < 0.7 * len(done)


def test_renumbered_orders_change_number_before_shipping_only(final_orders: list[dict[str, Any]]) -> None:
    with serve(renumber_rate=1.0) as srv:
        assert srv.emulator.orders() == final_orders  # the data set's numbers are the final ones
        order = final_orders[10]
        srv.emulator.set_now(at(order["created"]))
        [early] = read_all(srv.url, {"start_time": order["created"], "end_time": order["created"], "status": 55})
        assert early["stockout_id"] == order["stockout_id"] and early["status"] == 55
        old = early["order_no"]
        assert old != order["order_no"] and early["stockout_no"] == old and old.startswith("CK")
        srv.emulator.set_now(at(order["stock_check_time"]))
        assert by_number(srv.url, old) == []
        assert by_number(srv.url, order["stockout_no"])[0]["order_no"] == order["order_no"]
        # however the clock stands, a number seen at status >= 95 is the final one
        finals = {o["stockout_id"]: o["order_no"] for o in final_orders}
        for hours in range(0, 24 * (DAYS + 2), 5):
            for o in srv.emulator.orders(at(f"{START} 00:00:00") + dt.timedelta(hours=hours)):
                if o["status"] >= 95:
                    assert o["order_no"] == o["stockout_no"] == finals[o["stockout_id"]]


# -- churn ---------------------------------------------------------------------------------------------
CHURN_NOW = at(f"{START + dt.timedelta(days=2)} 20:00:00")
CHURN_START = at(f"{START} 00:00:00")
CHURN_WINDOW = {"start_time": text(CHURN_START), "end_time": text(CHURN_NOW - dt.timedelta(seconds=1)), "status": 110}


def read_forwards(url: str, size: int) -> list[str]:
    first = call(url, {**CHURN_WINDOW, "page_no": 0, "page_size": size})
    ids = [str(o["stockout_id"]) for o in first["stockout_list"]]
    for page in range(1, -(-first["total_count"] // size)):
        ids += [
            str(o["stockout_id"])
            for o in call(url, {**CHURN_WINDOW, "page_no": page, "page_size": size})["stockout_list"]
        ]
    return ids


def read_backwards(url: str, size: int, emulator: Any = None) -> tuple[dict[str, str], dict[str, str] | None]:
    """Page 0 for the count, then last to first, dedup by stockout_id, again while the count moved.

    With `emulator`, also returns the ground truth taken just before the last (stable) pass.
    """
    seen: dict[str, str] = {}
    while True:
        before = emulator.ground_truth(CHURN_START, CHURN_NOW) if emulator else None
        first = call(url, {**CHURN_WINDOW, "page_no": 0, "page_size": size})
        assert first["flag"] == "success", first
        total = first["total_count"]
        for page in range(-(-total // size) - 1, -1, -1):
            body = call(url, {**CHURN_WINDOW, "page_no": page, "page_size": size})
            seen.update({str(o["stockout_id"]): o["order_no"] for o in body["stockout_list"]})
        if call(url, {**CHURN_WINDOW, "page_no": 0, "page_size": size})["total_count"] == total:
            return seen, before


def test_churn_shifts_offset_pages_but_backward_paging_gets_the_ground_truth() -> None:
    with serve(churn_rate=1.0) as srv:
        srv.emulator.set_now(CHURN_NOW)
        before = srv.emulator.ground_truth(CHURN_START, CHURN_NOW)
        ids = read_forwards(srv.url, 5)
        after = srv.emulator.ground_truth(CHURN_START, CHURN_NOW)
        assert len(after) > len(before)  # orders completed while the client paged
        assert len(ids) != len(set(ids)) or set(ids) != set(after)  # skipped or duplicated rows
    with serve(churn_rate=1.0) as srv:
        srv.emulator.set_now(CHURN_NOW)
        before = srv.emulator.ground_truth(CHURN_START, CHURN_NOW)
        seen, _ = read_backwards(srv.url, 5)
        truth = srv.emulator.ground_truth(CHURN_START, CHURN_NOW)
        assert len(truth) > len(before) and seen == truth
        changed = [o for o in srv.emulator.orders() if o["stockout_id"] in {int(i) for i in set(truth) - set(before)}]
        assert changed and all(o["modified"] == text(CHURN_NOW) for o in changed)


def test_churn_also_inserts_late_recorded_shipments() -> None:
    with serve(churn_rate=1.0) as srv:
        # just after a shipment whose recording (up to 30 min late) is still pending
        pending = [
            o
            for o in build_dataset(SEED, ORDERS, START, DAYS).orders
            if o["status"] == 95 and at(o["modified"]) - at(o["consign_time"]) > dt.timedelta(minutes=5)
        ]
        target = pending[0]
        now = at(target["consign_time"]) + dt.timedelta(minutes=1)
        srv.emulator.set_now(now)
        window = {"start_time": target["consign_time"], "end_time": target["consign_time"]}
        assert target["stockout_id"] in [o["stockout_id"] for o in srv.emulator.orders()]
        body = call(srv.url, window)  # this read makes the shipment's recording happen now
        [row] = [o for o in body["stockout_list"] if o["stockout_id"] == target["stockout_id"]]
        assert row["status"] == target["status"] and row["modified"] == text(now)


def test_churn_is_deterministic_for_a_seed() -> None:
    answers = []
    for _ in range(2):
        with serve(churn_rate=0.5) as srv:
            srv.emulator.set_now(CHURN_NOW)
            pages = [call(srv.url, {**CHURN_WINDOW, "page_no": p % 4, "page_size": 5}) for p in range(12)]
            answers.append([([o["stockout_id"] for o in b["stockout_list"]], b.get("total_count")) for b in pages])
    assert answers[0] == answers[1]
    assert len({total for _, total in answers[0] if total is not None}) > 1  # the data did change


def test_several_threads_paging_at_once_each_get_a_consistent_result() -> None:
    with serve(churn_rate=0.5) as srv:
        srv.emulator.set_now(CHURN_NOW)
        initial = srv.emulator.ground_truth(CHURN_START, CHURN_NOW)
        results: list[tuple[dict[str, str], dict[str, str]]] = []
        errors: list[BaseException] = []

        def reader() -> None:
            try:
                seen, before = read_backwards(srv.url, 4, srv.emulator)
                assert before is not None
                results.append((seen, before))
            except BaseException as e:  # surfaced below: an assertion in a thread is otherwise lost
                errors.append(e)

        threads = [threading.Thread(target=reader) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not errors and len(results) == 6
        final = srv.emulator.ground_truth(CHURN_START, CHURN_NOW)
        assert len(final) > len(initial)  # orders completed while the threads paged
        for seen, before in results:
            # events only add to a status-110 window: what a reader got lies between the truth when
            # its last pass began and the truth at the end
            assert set(before) <= set(seen) <= set(final)
            assert all(final[k] == v for k, v in seen.items())
        seen, _ = read_backwards(srv.url, 4)
        assert seen == srv.emulator.ground_truth(CHURN_START, CHURN_NOW)
