"""Latency and injected faults of the Kingdee emulator, over real loopback sockets."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from emulators.kingdee.__main__ import parse_args
from emulators.kingdee.faults import FaultConfig
from tests.emulators.test_kingdee_emulator import (
    BATCH_SAVE,
    QUERY,
    SESSION_LOST,
    STUB,
    VALIDATE_USER,
    _serve,
    batch_save,
    bill,
    logged_in,
    login_body,
    post,
    query,
    sdk_for,
)

AUDIT = STUB + "DynamicFormService.Audit"
NUMBERS = {"data": {"FormId": "SAL_OUTSTOCK", "FieldKeys": "FBillNo", "OrderString": "FID"}}


def save_body(*numbers: str) -> dict[str, Any]:
    return {"formid": "SAL_OUTSTOCK", "data": {"Model": [bill(n) for n in numbers]}}


def numbers_saved(srv: Any) -> list[str]:
    """What the store holds, asked with every fault switched off."""
    srv.emulator.faults.config = FaultConfig()
    return [r[0] for r in post(srv.url, QUERY, NUMBERS, logged_in(srv.url)).json()]


def parallel(count: int, call: Any) -> list[Any]:
    results: list[Any] = [None] * count

    def run(i: int) -> None:
        results[i] = call(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def test_latency_and_per_bill_time_overlap_between_concurrent_saves(tmp_path: Path) -> None:
    with _serve(tmp_path / "kd", latency_ms=40, per_bill_ms=10) as srv:
        sdks = [sdk_for(srv.url) for _ in range(4)]
        started = time.perf_counter()
        sdks[0].GetDataCenters()
        assert time.perf_counter() - started >= 0.04  # every call waits the latency

        def save(i: int) -> float:
            begun = time.perf_counter()
            result = batch_save(sdks[i], *[bill(f"CK-{i}-{n}") for n in range(20)])
            assert len(result["ResponseStatus"]["SuccessEntitys"]) == 20
            return time.perf_counter() - begun

        started = time.perf_counter()
        durations = parallel(4, save)
        elapsed = time.perf_counter() - started
        assert min(durations) >= 0.04 + 20 * 0.010  # latency + per-bill time, each
        assert elapsed < 0.45  # they overlap: serialised they would take 4 × 0.24 s


def test_error_rate_answers_500_before_anything_is_done(tmp_path: Path) -> None:
    with _serve(tmp_path / "kd", error_rate=1.0) as srv:
        login = post(srv.url, VALIDATE_USER, login_body())
        assert login.status_code == 500 and "500 - 内部服务器错误。" in login.text
        with pytest.raises(RuntimeError, match="500"):
            sdk_for(srv.url).BatchSave("SAL_OUTSTOCK", {"Model": [bill("CK-ERR")]})
        assert numbers_saved(srv) == []


def test_lost_responses_are_committed_then_dropped_or_500_alternately(tmp_path: Path) -> None:
    with _serve(tmp_path / "kd", lost_response_rate=1.0) as srv:
        http = logged_in(srv.url)
        with pytest.raises(requests.ConnectionError):
            post(srv.url, BATCH_SAVE, save_body("CK-LOST1", "CK-LOST2"), http)
        second = post(srv.url, BATCH_SAVE, save_body("CK-LOST3"), http)
        assert second.status_code == 500
        assert post(srv.url, QUERY, NUMBERS, http).status_code == 200  # other services are not affected
        assert numbers_saved(srv) == ["CK-LOST1", "CK-LOST2", "CK-LOST3"]


def test_session_ttl_ends_login_sessions_and_renews_signed_ones(tmp_path: Path) -> None:
    with _serve(tmp_path / "kd", session_ttl_s=0.3) as srv:
        http = requests.Session()
        login = post(srv.url, VALIDATE_USER, login_body(), http).json()
        sid = {"kdservice-sessionid": login["KDSVCSessionId"]}
        assert post(srv.url, QUERY, NUMBERS, headers=sid).json() == []
        sdk = sdk_for(srv.url)
        sdk.GetDataCenters()
        query(sdk, "SAL_OUTSTOCK", "FBillNo")
        first_sid = sdk.cookiesStore.SID
        assert first_sid
        time.sleep(0.35)
        for expired in (post(srv.url, QUERY, NUMBERS, headers=sid), post(srv.url, QUERY, NUMBERS, http)):
            status = expired.json()[0][0]["Result"]["ResponseStatus"]
            assert (status["MsgCode"], status["Errors"][0]["Message"]) == (1, SESSION_LOST)
        assert query(sdk, "SAL_OUTSTOCK", "FBillNo") == []  # the signature opens a new session
        assert sdk.cookiesStore.SID and sdk.cookiesStore.SID != first_sid


def test_max_concurrent_answers_busy_at_once(tmp_path: Path) -> None:
    with _serve(tmp_path / "kd", max_concurrent=2, latency_ms=300) as srv:

        def call(i: int) -> tuple[int, float, str]:
            begun = time.perf_counter()
            reply = post(srv.url, VALIDATE_USER, login_body())
            return reply.status_code, time.perf_counter() - begun, reply.text

        results = parallel(8, call)
        seen = srv.emulator.faults
        busy = [r for r in results if r[0] == 503]
        served = [r for r in results if r[0] == 200]
        assert busy and 1 <= len(served) <= 2 + 6  # at most 2 at a time, the rest refused or later
        assert seen.peak_in_progress == 2 and seen.refused_busy == len(busy)
        assert all("Service Unavailable" in text and took < 0.25 for _, took, text in busy)


def test_network_control_refuses_writes_with_msgcode_13(tmp_path: Path) -> None:
    with _serve(tmp_path / "kd", network_control_rate=1.0) as srv:
        sdk = sdk_for(srv.url)
        status = batch_save(sdk, bill("CK-NET"))["ResponseStatus"]
        assert status["MsgCode"] == 13 and status["IsSuccess"] is False
        assert status["Errors"][0]["Message"].startswith("网控冲突")
        audit = json.loads(sdk.Audit("SAL_OUTSTOCK", {"Numbers": ["CK-NET"]}))["Result"]["ResponseStatus"]
        assert audit["MsgCode"] == 13
        assert query(sdk, "SAL_OUTSTOCK", "FBillNo") == []  # reads are not network-controlled
        assert numbers_saved(srv) == []


def test_call_limit_per_minute_answers_msgcode_14(tmp_path: Path) -> None:
    with _serve(tmp_path / "kd", call_limit_per_minute=3) as srv:
        http = logged_in(srv.url)  # call 1
        assert post(srv.url, QUERY, NUMBERS, http).json() == []  # 2
        assert batch_save(sdk_for(srv.url), bill("CK-LIM"))["ResponseStatus"]["IsSuccess"]  # 3
        limited = post(srv.url, QUERY, NUMBERS, http).json()[0][0]["Result"]["ResponseStatus"]
        assert limited["MsgCode"] == 14 and "调用限制" in limited["Errors"][0]["Message"]
        refused = post(srv.url, BATCH_SAVE, save_body("CK-LIM2"), http).json()["Result"]["ResponseStatus"]
        assert refused["MsgCode"] == 14
        assert numbers_saved(srv) == ["CK-LIM"]


def test_response_error_text_makes_the_sdk_raise(tmp_path: Path) -> None:
    with _serve(tmp_path / "kd", response_error_rate=1.0) as srv:
        raw = post(srv.url, BATCH_SAVE, save_body("CK-RE"))
        assert raw.status_code == 200 and raw.text.startswith("response_error:")
        with pytest.raises(RuntimeError, match="KDException"):
            sdk_for(srv.url).BatchSave("SAL_OUTSTOCK", {"Model": [bill("CK-RE")]})
        assert numbers_saved(srv) == []


def test_the_same_seed_gives_the_same_faults(tmp_path: Path) -> None:
    def statuses(seed: int, run: str) -> list[int]:
        with _serve(tmp_path / run, seed=seed, error_rate=0.5, response_error_rate=0.2) as srv:
            out = []
            for _ in range(16):
                reply = post(srv.url, VALIDATE_USER, login_body())
                out.append(reply.status_code * 10 + reply.text.startswith("response_error:"))
            return out

    first = statuses(3, "a")
    assert statuses(3, "b") == first
    assert {5000, 2000, 2001} <= set(first)
    assert statuses(4, "c") != first


def test_cli_takes_every_fault_flag() -> None:
    args = parse_args(
        [
            "--latency-ms",
            "50",
            "--per-bill-ms",
            "10",
            "--error-rate",
            "0.1",
            "--lost-response-rate",
            "0.2",
            "--session-ttl-s",
            "30",
            "--max-concurrent",
            "4",
            "--network-control-rate",
            "0.05",
            "--call-limit-per-minute",
            "600",
            "--response-error-rate",
            "0.01",
        ]
    )
    assert (
        args.latency_ms,
        args.per_bill_ms,
        args.error_rate,
        args.lost_response_rate,
        args.session_ttl_s,
        args.max_concurrent,
        args.network_control_rate,
        args.call_limit_per_minute,
        args.response_error_rate,
    ) == (50, 10, 0.1, 0.2, 30, 4, 0.05, 600, 0.01)
    defaults = parse_args([])
    assert defaults.max_concurrent is defaults.call_limit_per_minute is defaults.session_ttl_s is None
    with pytest.raises(SystemExit):
        parse_args(["--error-rate", "1.5"])
