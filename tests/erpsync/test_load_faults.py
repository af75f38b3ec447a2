"""Faults on the way to Kingdee, against the emulator's injected faults over loopback.

Each test fails when the path it covers is removed: re-login, retries of reads, unknown outcomes of
writes, busy answers, errors that name no bill, and configuration errors that must not be retried.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import pytest

from erpsync.kingdee.client import K3CloudClient, K3CloudConfig, KingdeeConfigError, KingdeeTransientError
from erpsync.kingdee.save import ChunkSaver
from erpsync.scheme import LoadSettings
from erpsync.staging import write_json
from erpsync.steps.load import read_report
from tests.conftest import KINGDEE, SEED, load_bills, serving
from tests.erpsync.test_kingdee_client import FORM, OPTIONS, _files, _model


@contextmanager
def kingdee(tmp_path, **faults: Any) -> Iterator[Any]:
    from emulators.kingdee import make_server

    with serving(make_server("127.0.0.1", 0, **KINGDEE, data_dir=tmp_path / "kd", seed=SEED, **faults)) as server:
        yield server


def client(server, **overrides: Any) -> K3CloudClient:
    config = {**KINGDEE, "backoff_seconds": 0.01, "max_backoff_seconds": 0.05, "poll_seconds": 0.05, **overrides}
    return K3CloudClient(K3CloudConfig(server_url=server.url, **config))


def bills(prefix: str, count: int) -> list[dict]:
    return [_model(f"{prefix}-{i:03d}") for i in range(count)]


def numbers_in_kingdee(c: K3CloudClient, prefix: str) -> list[str]:
    return sorted(str(r[0]) for r in c.execute_bill_query(FORM, ["FBillNo"], f"FBillNo like '{prefix}-%'"))


# -- authentication ----------------------------------------------------------------------------------
@pytest.mark.parametrize("auth", ["password", "app_secret"])
def test_a_session_login_logs_in_again_when_the_session_expires(tmp_path, caplog, auth):
    with kingdee(tmp_path, session_ttl_s=0.3) as server:
        c = client(server, auth=auth, password=KINGDEE["app_secret"] if auth == "password" else "")
        assert c.find_bills(FORM, "FBillNo", ["X"]) == {}
        first = c._sid
        time.sleep(0.4)
        with caplog.at_level(logging.INFO, logger="erpsync.kingdee.client"):
            assert c.find_bills(FORM, "FBillNo", ["X"]) == {}
        assert c._sid != first
        assert "session lost; logging in again" in caplog.text


def test_a_signature_client_outlives_its_session(tmp_path):
    with kingdee(tmp_path, session_ttl_s=0.3) as server:
        c = client(server)
        c.find_bills(FORM, "FBillNo", ["X"])
        sid = c.session.cookies.get("kdservice-sessionid")
        time.sleep(0.4)
        c.find_bills(FORM, "FBillNo", ["X"])
        assert c.session.cookies.get("kdservice-sessionid") not in (None, sid)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"auth": "password", "password": "wrong-password"}, "ValidateUser refused user 'erpsync'"),
        ({"auth": "app_secret", "app_secret": "0" * 32}, "LoginByAppSecret refused user 'erpsync'"),
        ({"app_secret": "0" * 32}, r"refused the credentials .*MsgCode 1"),
        ({"username": "nobody"}, r"refused the credentials .*MsgCode 1"),
        ({"acct_id": "nope"}, "does not know the data centre in extra.acct_id"),
    ],
)
def test_refused_credentials_fail_at_once_and_name_the_fields(tmp_path, overrides, message):
    with kingdee(tmp_path) as server:
        c = client(server, **overrides)
        began = time.monotonic()
        with pytest.raises(KingdeeConfigError, match=message) as caught:
            c.find_bills(FORM, "FBillNo", ["X"])
        assert time.monotonic() - began < 2  # no retries with back-off
        for secret in (KINGDEE["app_secret"], "wrong-password", "0" * 32):
            assert secret not in str(caught.value)


def test_an_unknown_form_is_a_configuration_error(tmp_path):
    with kingdee(tmp_path) as server, pytest.raises(KingdeeConfigError, match="cannot query form 'NO_SUCH_FORM'"):
        client(server).find_bills("NO_SUCH_FORM", "FBillNo", ["X"])


# -- retries of reads --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "faults",
    [{"error_rate": 0.5}, {"response_error_rate": 0.5}, {"max_concurrent": 1, "latency_ms": 20}],
    ids=["5xx", "response_error", "busy"],
)
def test_reads_are_retried_through_transient_faults(tmp_path, caplog, faults):
    def look_up(c: K3CloudClient) -> list[Any]:
        """12 look-ups from 3 threads; each one's result or fault."""

        def one(number: str) -> Any:
            try:
                return c.find_bills(FORM, "FBillNo", [number])
            except KingdeeTransientError as exc:
                return exc

        with ThreadPoolExecutor(3) as pool:
            return list(pool.map(one, [f"Q{i}" for i in range(12)]))

    with kingdee(tmp_path, **faults) as server:
        with caplog.at_level(logging.WARNING):
            assert look_up(client(server, attempts=20)) == [{}] * 12
        assert "retrying in" in caplog.text
        # the same faults without retries reach the caller
        assert any(isinstance(r, KingdeeTransientError) for r in look_up(client(server, attempts=1)))


def test_the_call_limit_is_a_transient_fault(tmp_path):
    with kingdee(tmp_path, call_limit_per_minute=2) as server:
        c = client(server, attempts=1)
        c.find_bills(FORM, "FBillNo", ["A"])
        c.find_bills(FORM, "FBillNo", ["B"])
        with pytest.raises(KingdeeTransientError, match=r"call limit .*MsgCode 14"):
            c.find_bills(FORM, "FBillNo", ["C"])


# -- unknown outcomes of writes ------------------------------------------------------------------------
def test_lost_replies_are_settled_by_looking_the_bills_up(tmp_path, caplog):
    """Every reply to a save is lost (dropped connection, then 5xx): the bills are in Kingdee anyway."""
    with kingdee(tmp_path, lost_response_rate=1.0) as server:
        c = client(server)
        files = _files(tmp_path, bills("CK-LOST", 7))
        with caplog.at_level(logging.WARNING):
            result = load_bills(c, files, LoadSettings(chunk_size=3, concurrency=2))
        assert (result.created, result.existing, result.rejected) == (7, 0, 0)
        assert "looking them up" in caplog.text
        assert numbers_in_kingdee(c, "CK-LOST") == [f"CK-LOST-{i:03d}" for i in range(7)]
        report = read_report(files)
        assert report["kingdee_id"].notna().all() and len(report) == 7


def test_faults_before_the_write_resend_only_the_missing_bills(tmp_path):
    with kingdee(
        tmp_path, error_rate=0.2, lost_response_rate=0.2, network_control_rate=0.2, response_error_rate=0.1
    ) as server:
        c = client(server, attempts=10)
        files = _files(tmp_path, bills("CK-MIX", 40))
        result = load_bills(c, files, LoadSettings(chunk_size=4, concurrency=3, rounds=10))
        assert (result.created, result.rejected) == (40, 0)
        assert numbers_in_kingdee(c, "CK-MIX") == [f"CK-MIX-{i:03d}" for i in range(40)]


def test_outcomes_still_unknown_after_the_rounds_fail_the_task_and_lose_nothing(tmp_path):
    with kingdee(tmp_path, error_rate=1.0) as server:
        files = _files(tmp_path, bills("CK-DOWN", 3))
        with pytest.raises(KingdeeTransientError):
            load_bills(client(server, attempts=2), files, LoadSettings(chunk_size=3, rounds=2))
    with kingdee(tmp_path) as server:  # the same store, healthy again: Airflow's retry
        result = load_bills(client(server), files, LoadSettings(chunk_size=3))
        assert (result.created, result.existing) == (3, 0)


def test_busy_answers_with_more_calls_than_the_server_takes(tmp_path):
    with kingdee(tmp_path, max_concurrent=2, latency_ms=10, per_bill_ms=5) as server:
        c = client(server, attempts=10)
        files = _files(tmp_path, bills("CK-BUSY", 24))
        result = load_bills(c, files, LoadSettings(chunk_size=3, concurrency=4, rounds=10))
        assert result.created == 24
        assert len(numbers_in_kingdee(c, "CK-BUSY")) == 24


def test_async_batch_save_query_is_polled_to_completion(tmp_path):
    with kingdee(tmp_path, per_bill_ms=40) as server:
        c = client(server)
        files = _files(tmp_path, [*bills("CK-ASYNC", 5), _model("CK-ASYNC-BAD", material="NEW-SKU-999")])
        result = load_bills(c, files, LoadSettings(chunk_size=6, asynchronous=True))
        assert (result.created, result.rejected) == (5, 1)
        report = read_report(files).set_index("bill_no")
        assert "FMaterialID" in report.loc["CK-ASYNC-BAD", "field"]


def test_a_refused_duplicate_is_decided_by_look_up_not_by_its_message(tmp_path):
    """The duplicate-number message changes with lcid; the look-up does not."""
    with kingdee(tmp_path) as server:
        c = client(server, lcid=1033)
        status = c.batch_save(FORM, {**OPTIONS, "Model": [_model("CK-DUP")]})
        assert status["IsSuccess"] is True
        loader = ChunkSaver(c, FORM, "FBillNo", OPTIONS, LoadSettings())
        rows: list[dict] = []
        saved_again = c.batch_save(FORM, {**OPTIONS, "Model": [_model("CK-DUP"), _model("CK-NEW")]})
        assert loader._decide([{"bill_no": "CK-DUP"}, {"bill_no": "CK-NEW"}], saved_again, rows) == []
        assert {r["bill_no"]: r["outcome"] for r in rows} == {"CK-DUP": "existing", "CK-NEW": "created"}


# -- answers that name no bill -----------------------------------------------------------------------
def test_a_whole_call_refusal_is_not_pinned_on_the_first_bill(tmp_path):
    """ValidateRepeatJson refuses a resent payload as a whole, with DIndex 0: each bill then goes alone
    and gets its own verdict, instead of the first one being 'rejected' for a repeat."""
    with kingdee(tmp_path) as server:
        c = client(server)
        models = [_model(f"CK-REP-{i}", material="NEW-SKU-999") for i in range(2)] + [_model("CK-REP-2")]
        files = _files(tmp_path, models)
        write_json(
            {"form_id": FORM, "service": "BatchSave", "options": {**OPTIONS, "ValidateRepeatJson": True}}, files.request
        )
        c.batch_save(FORM, {**OPTIONS, "ValidateRepeatJson": True, "Model": models})  # the same packet, long ago
        c._call(
            "Kingdee.BOS.WebApi.ServicesStub.DynamicFormService.Delete",
            {"formid": FORM, "data": {"Numbers": ["CK-REP-2"]}},
            write=True,
        )  # its one saved bill, deleted since
        result = load_bills(c, files, LoadSettings(chunk_size=3))
        report = read_report(files).set_index("bill_no")
        assert (result.created, result.rejected) == (1, 2), report[["outcome", "message"]]
        assert all("物料编码" in report.loc[f"CK-REP-{i}", "message"] for i in range(2))


class _Unattributed:
    """Kingdee as a test double that answers errors without DIndex: what real servers sometimes do for
    whole-batch problems. Saves one bill per call and refuses bills whose number ends in 'X'."""

    class config:
        @staticmethod
        def pause(attempt: int) -> float:
            return 0

    def __init__(self) -> None:
        self.saved: dict[str, int] = {}
        self.calls: list[int] = []

    def find_bills(self, form_id, key, values):
        assert key == "FBillNo"
        return {n: (self.saved[n], n) for n in values if n in self.saved}

    def batch_save(self, form_id, data, *, asynchronous=False):
        models = data["Model"]
        self.calls.append(len(models))
        if len(models) > 1:
            return {
                "IsSuccess": False,
                "Errors": [{"FieldName": None, "Message": "批量保存失败", "DIndex": None}],
                "SuccessEntitys": [],
                "MsgCode": 4,
            }
        number = models[0]["FBillNo"]
        if number.endswith("X"):
            return {"IsSuccess": False, "Errors": [{"FieldName": "FStockID", "Message": "仓库字段必录"}], "MsgCode": 11}
        self.saved[number] = len(self.saved) + 1
        return {
            "IsSuccess": True,
            "Errors": [],
            "SuccessEntitys": [{"Id": self.saved[number], "Number": number, "DIndex": 0}],
        }


def test_errors_without_a_usable_dindex_send_each_bill_alone(tmp_path):
    writer = _Unattributed()
    files = _files(tmp_path, [_model("CK-U-1"), _model("CK-U-2X"), _model("CK-U-3")])
    result = load_bills(writer, files, LoadSettings(chunk_size=3))
    assert (result.created, result.rejected) == (2, 1)
    assert writer.calls == [3, 1, 1, 1]
    report = read_report(files).set_index("bill_no")
    assert report.loc["CK-U-2X", "field"] == "FStockID"
    assert report.loc["CK-U-2X", "message"] == "仓库字段必录 (the bill sent FStockID = 'WH001')"


# -- base data checked before posting -----------------------------------------------------------------
def test_bills_naming_base_data_kingdee_lacks_are_held_back_before_posting(tmp_path):
    with kingdee(tmp_path) as server:
        c = client(server)
        good, bad_sku, bad_customer = _model("CK-BD-1"), _model("CK-BD-2", material="NO-SUCH-SKU"), _model("CK-BD-3")
        bad_customer["FCustomerID"] = {"FNumber": "NO-SUCH-SHOP"}
        files = _files(tmp_path, [good, bad_sku, bad_customer])
        write_json(
            {
                "form_id": FORM,
                "service": "BatchSave",
                "options": OPTIONS,
                "base_data": {"FCustomerID": "BD_Customer", "FMaterialID": "BD_MATERIAL", "FStockID": "BD_STOCK"},
            },
            files.request,
        )
        queries: list[str] = []
        original = c.execute_bill_query
        c.execute_bill_query = lambda form, keys, where="", order="": (
            queries.append(form) or original(form, keys, where, order)
        )
        result = load_bills(c, files, LoadSettings(chunk_size=10))
        assert (result.created, result.held, result.rejected) == (1, 2, 0)
        report = read_report(files).set_index("bill_no")
        assert (
            report.loc["CK-BD-2", "message"] == "BD_MATERIAL has no number 'NO-SUCH-SKU' (FMaterialID, FEntity row 1)"
        )
        assert report.loc["CK-BD-3", "field"] == "FCustomerID"
        assert "BD_Customer has no number 'NO-SUCH-SHOP'" in report.loc["CK-BD-3", "message"]
        assert sorted(q for q in queries if q != FORM) == ["BD_Customer", "BD_MATERIAL", "BD_STOCK"]  # one query a form
        assert numbers_in_kingdee(c, "CK-BD") == ["CK-BD-1"]  # nothing else was sent
