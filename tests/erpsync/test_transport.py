"""The one HTTP layer (erpsync.transport): timeouts, recording, redaction and the retry policy.

These test the layer itself through its mock transport; the clients built on it are tested against the
emulators over loopback (test_wdt_client.py, test_kingdee_client.py, test_alerts.py).
"""

from __future__ import annotations

import logging
import socket

import pytest
import requests

from erpsync.transport import CallRecorder, MockTransport, backoff_delay, call_record, make_session, redact, retrying

log = logging.getLogger("test-transport")


def _session(handler, recorder=None, **kw):
    return make_session(
        timeout=7, describe=lambda r: r.path_url, recorder=recorder, transport=MockTransport(handler), **kw
    )


def test_every_request_gets_the_default_timeout_unless_it_names_one():
    seen = []

    class Spy(MockTransport):
        def send(self, request, *args, **kwargs):
            seen.append(kwargs.get("timeout"))
            return super().send(request, *args, **kwargs)

    with make_session(timeout=7, describe=str, transport=Spy(lambda r: (200, {}, b"{}"))) as session:
        session.get("http://erp.test/a")
        session.get("http://erp.test/b", timeout=1)
    assert seen == [7, 1]


def test_each_exchange_is_one_row_that_the_client_can_refine():
    recorder = CallRecorder("wdt")
    statuses = iter([200, 503, 429, 404])
    with _session(lambda r: (next(statuses), {}, b"{}"), recorder) as session:
        first = session.get("http://erp.test/ok")
        call_record(first).update(outcome="throttled", detail="1012", rows=3)
        for path in ("busy", "slow", "missing"):
            session.get(f"http://erp.test/{path}")
    rows = recorder.take()
    assert [(r["method"], r["outcome"], r["detail"], r["rows"]) for r in rows] == [
        ("/ok", "throttled", "1012", 3),
        ("/busy", "transient", "HTTP 503", None),
        ("/slow", "transient", "HTTP 429", None),
        ("/missing", "error", "HTTP 404", None),
    ]
    assert all(r["system"] == "wdt" and r["ms"] >= 0 and r["started"] for r in rows)
    assert recorder.take() == []


def test_an_exchange_without_a_response_is_recorded_as_transient():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: connections are refused
    recorder = CallRecorder("kingdee")
    with make_session(timeout=2, describe=lambda r: "BatchSave", recorder=recorder) as session:
        with pytest.raises(requests.ConnectionError):
            session.post(f"http://127.0.0.1:{port}/k3cloud/x")
    [row] = recorder.take()
    assert (row["method"], row["outcome"], row["detail"]) == ("BatchSave", "transient", "ConnectionError")


def test_secrets_are_scrubbed_from_urllib3_records_while_the_session_is_open(caplog):
    record = logging.LogRecord(
        "urllib3.connectionpool",
        logging.DEBUG,
        __file__,
        1,
        '"POST /robot/send?access_token=%s HTTP/1.1" 200',
        ("tok/en+1",),
        None,
    )
    logger = logging.getLogger("urllib3.connectionpool")
    session = _session(lambda r: (200, {}, b""), secrets=("tok/en+1",))
    for f in logger.filters:
        f.filter(record)
    assert record.getMessage() == '"POST /robot/send?access_token=*** HTTP/1.1" 200'
    session.close()
    fresh = logging.LogRecord("urllib3.connectionpool", logging.DEBUG, __file__, 1, "token=%s", ("tok/en+1",), None)
    for f in logger.filters:
        f.filter(fresh)
    assert fresh.getMessage() == "token=tok/en+1"  # no longer a secret of an open session


def test_redact_replaces_plain_and_url_encoded_forms():
    text = "a=tok/en+1 b=tok%2Fen%2B1 c=tok/en%2B1"
    assert redact(text, ["tok/en+1", ""]) == "a=*** b=*** c=***"


class Transient(Exception):
    pass


class Config(Exception):
    pass


def test_the_policy_retries_transient_errors_only_and_reraises_the_last():
    pauses: list[float] = []
    calls = []

    def flaky():
        calls.append(1)
        raise Transient(f"try {len(calls)}")

    policy = retrying(
        lambda e: isinstance(e, Transient),
        attempts=3,
        backoff_seconds=1,
        max_backoff_seconds=1.5,
        log=log,
        what="flaky",
        sleep=pauses.append,
    )
    with pytest.raises(Transient, match="try 3"):
        policy(flaky)
    assert pauses == [1, 1.5] and len(calls) == 3

    def misconfigured():
        calls.append(1)
        raise Config("bad app key")

    calls.clear()
    with pytest.raises(Config):
        retrying(
            lambda e: isinstance(e, Transient), attempts=5, backoff_seconds=1, log=log, what="x", sleep=pauses.append
        )(misconfigured)
    assert len(calls) == 1  # a configuration error is never retried


def test_jittered_backoff_stays_within_half_and_whole_of_the_delay():
    for attempt in range(1, 8):
        delay = backoff_delay(attempt, 1, 30, jitter=True)
        full = min(30, 2 ** (attempt - 1))
        assert full / 2 <= delay <= full
