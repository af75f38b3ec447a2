"""Alerts reach DingTalk, WeCom and Feishu robots, stood in for by one webhook receiver on loopback.

Connections come from ``AIRFLOW_CONN_*`` variables (JSON) whose host is the receiver. The tests read
what each robot got, recompute the signatures, and look for every token and secret in the bodies,
the errors and the logs, where none may be.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import socket
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from erpsync import alerts
from erpsync.alerts import AlertError, RobotNotifier, alert_text, notify_problems, report_url, send_alert
from erpsync.outcomes import Problem
from erpsync.windows import Window
from tests.conftest import serving

DAG_ID = "wdt_kingdee_sales_outstock"
RUN_ID = "manual__2026-11-02T01:30:00+00:00"
WINDOW = Window.of(datetime(2026, 11, 1), datetime(2026, 11, 2))
BASE_URL = "https://airflow.example.com"
LINK = f"{BASE_URL}/erpsync/dags/{DAG_ID}/runs/manual__2026-11-02T01%3A30%3A00%2B00%3A00"

DING_TOKEN = "dt0ken5f1c9e7a22b4"
DING_SECRET = "SECd1ngs3cret0123456789abcdef"
WECOM_KEY = "wec0m-k3y-3a7b-4c2d-9e8f"
FEISHU_TOKEN = "fe1shu-h00k-8e2f-41aa"
FEISHU_SECRET = "fe1shu-s3cret-77ab"
SECRETS = (DING_TOKEN, DING_SECRET, WECOM_KEY, FEISHU_TOKEN, FEISHU_SECRET)

COUNTS = {
    "orders": 41,
    "bills": 40,
    "created": 35,
    "existing": 2,
    "rejected": 1,
    "held": 2,
    "quarantined": 1,
    "unmapped": 0,
    "problems": 4,
    "dry_run": False,
}
PROBLEMS = [
    Problem("1001", "CK2026110101", "rejected", "[FCustId] 客户编码 C-77 不存在"),
    Problem("1002", "CK2026110102", "held", "BD_MATERIAL has no number 'SKU-9' (FMaterialId, FEntity row 1)"),
    Problem("1003", "CK2026110103", "held", "BD_MATERIAL has no number 'SKU-9' (FMaterialId, FEntity row 2)"),
    Problem("1004", "CK2026110104", "quarantined", "goods_count='0.0000' breaks 'goods_count > 0' (line 7)"),
]


# ---------------------------------------------------------------------------------------------------
# The receiver: DingTalk, WeCom and Feishu on one loopback port, told apart by path.


def _ok(path: str) -> dict[str, Any]:
    if path.startswith("/open-apis/bot/v2/hook/"):
        return {"code": 0, "msg": "success", "data": {}}
    return {"errcode": 0, "errmsg": "ok"}


class _Robot(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        parts = urlsplit(self.path)
        self.server.received.append(
            {
                "path": parts.path,
                "query": parse_qs(parts.query),
                "target": self.path,
                "content_type": self.headers.get("Content-Type"),
                "raw": raw,
                "json": json.loads(raw),
            }
        )
        status, reply = self.server.script.pop(0) if self.server.script else (200, _ok(parts.path))
        body = reply if isinstance(reply, bytes) else json.dumps(reply).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:  # the robot's access log is not our log
        pass


class Receiver(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Robot)
        self.received: list[dict[str, Any]] = []
        self.script: list[tuple[int, Any]] = []  # replies given first, in order; then success

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def one(self, path_prefix: str) -> dict[str, Any]:
        got = [r for r in self.received if r["path"].startswith(path_prefix)]
        assert len(got) == 1, got
        return got[0]


@pytest.fixture
def receiver():
    with serving(Receiver()) as server:
        yield server


def _connection(monkeypatch, conn_id: str, **fields: Any) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(fields))


@pytest.fixture
def robots(receiver, monkeypatch):
    """alert_dingtalk and alert_feishu sign their messages; alert_wecom cannot."""
    monkeypatch.setattr(alerts, "RETRY_PAUSE_SECONDS", 0)
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", BASE_URL)
    _connection(
        monkeypatch,
        "alert_dingtalk",
        conn_type="dingding",
        host=receiver.url,
        password=DING_TOKEN,
        extra={"secret": DING_SECRET},
    )
    _connection(monkeypatch, "alert_wecom", conn_type="wecom", host=receiver.url, password=WECOM_KEY)
    _connection(
        monkeypatch,
        "alert_feishu",
        conn_type="feishu",
        host=receiver.url,
        password=FEISHU_TOKEN,
        extra={"secret": FEISHU_SECRET},
    )
    return receiver


@pytest.fixture
def logs(caplog):
    caplog.set_level(logging.DEBUG)  # urllib3 logs every request's URL, token in it, at DEBUG
    return caplog


def _no_secret_in(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------------------
# The text


def test_the_text_names_the_dag_window_counts_problem_orders_and_the_report(monkeypatch):
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", BASE_URL + "/")
    text = alert_text(DAG_ID, WINDOW, COUNTS, PROBLEMS, report_url(DAG_ID, RUN_ID))
    assert text == "\n".join(
        [
            f"【erpsync 告警】{DAG_ID} 已完成，但 4 张订单未进入金蝶",
            "窗口：[2026-11-01 00:00:00, 2026-11-02 00:00:00) Asia/Shanghai",
            "计数：订单 41 · 单据 40 · 新建 35 · 已在金蝶 2 · 被拒 1 · 暂挂 2 · 隔离 1 · 未映射 0",
            "未进入金蝶的订单（4）：",
            "- 被拒 CK2026110101：[FCustId] 客户编码 C-77 不存在",
            "- 暂挂 CK2026110102：BD_MATERIAL has no number 'SKU-9' (FMaterialId, FEntity row 1)",
            "- 暂挂 CK2026110103：BD_MATERIAL has no number 'SKU-9' (FMaterialId, FEntity row 2)",
            "- 隔离 CK2026110104：goods_count='0.0000' breaks 'goods_count > 0' (line 7)",
            f"报告：{LINK}",
        ]
    )


def test_a_failed_run_says_which_task_failed_or_why():
    text = alert_text(DAG_ID, None, {}, [], "http://x/r", failed=True, failed_task="extract", reason="task_failure")
    assert text.split("\n") == [
        f"【erpsync 告警】{DAG_ID} 运行失败",
        "窗口：未知",
        "失败任务：extract",
        "计数：无",
        "报告：http://x/r",
    ]
    text = alert_text(DAG_ID, WINDOW, {}, [], "http://x/r", failed=True, reason="timed_out")
    assert "失败原因：timed_out" in text.split("\n")


def test_the_text_names_a_few_problem_orders_and_stays_short():
    many = [Problem(str(i), f"CK{i:08d}", "rejected", "金蝶拒绝：" + "物料不存在，" * 40) for i in range(500)]
    text = alert_text(DAG_ID, WINDOW, {**COUNTS, "problems": 500}, many, LINK)
    lines = text.split("\n")
    assert len(text.encode("utf-8")) <= alerts.TEXT_BYTES < 4096
    assert sum(line.startswith("- 被拒 CK") for line in lines) == alerts.MAX_PROBLEMS
    assert all(len(line) < 120 for line in lines[:-1])  # reasons cut to REASON_CHARS
    assert lines[-2:] == [f"- …另 {500 - alerts.MAX_PROBLEMS} 张，见报告", f"报告：{LINK}"]


def test_the_report_link_has_airflows_base_url_and_an_escaped_run_id(monkeypatch):
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://erp.example.com/airflow/")
    assert report_url("d", "scheduled__2026-11-01T16:00:00+00:00") == (
        "https://erp.example.com/airflow/erpsync/dags/d/runs/scheduled__2026-11-01T16%3A00%3A00%2B00%3A00"
    )
    monkeypatch.delenv("AIRFLOW__API__BASE_URL")
    assert report_url("d", "r").startswith("http://localhost:8080/erpsync/dags/d/runs/r")


# ---------------------------------------------------------------------------------------------------
# What each robot gets


def test_each_robot_gets_its_own_body_signed_and_no_secret_in_it_or_in_the_logs(robots, logs, capsys):
    text = alert_text(DAG_ID, WINDOW, COUNTS, PROBLEMS, report_url(DAG_ID, RUN_ID))
    before = time.time()
    send_alert(["alert_dingtalk", "alert_wecom", "alert_feishu"], text)
    after = time.time()
    assert len(robots.received) == 3
    assert {r["content_type"] for r in robots.received} == {"application/json; charset=utf-8"}

    # DingTalk (the provider's message format): token and 加签 signature in the query
    ding = robots.one("/robot/send")
    assert ding["json"] == {
        "msgtype": "text",
        "text": {"content": text},
        "at": {"atMobiles": None, "isAtAll": False},
    }
    assert ding["query"]["access_token"] == [DING_TOKEN]
    timestamp = ding["query"]["timestamp"][0]
    assert before * 1000 - 1 <= int(timestamp) <= after * 1000 + 1  # milliseconds
    digest = hmac.new(DING_SECRET.encode(), f"{timestamp}\n{DING_SECRET}".encode(), hashlib.sha256).digest()
    expected = base64.b64encode(digest).decode()
    assert ding["query"]["sign"] == [expected]
    assert "&sign=" + expected.replace("+", "%2B").replace("/", "%2F").replace("=", "%3D") in ding["target"]

    # WeCom: markdown under the key, the report a link
    wecom = robots.one("/cgi-bin/webhook/send")
    assert wecom["query"] == {"key": [WECOM_KEY]}
    content = wecom["json"]["markdown"]["content"]
    assert wecom["json"] == {"msgtype": "markdown", "markdown": {"content": content}}
    assert content == text.replace(f"报告：{LINK}", f"报告：[{LINK}]({LINK})")
    assert len(content.encode("utf-8")) <= 4096

    # Feishu: the token in the path, timestamp and sign in the body
    feishu = robots.one("/open-apis/bot/v2/hook/")
    assert feishu["path"] == f"/open-apis/bot/v2/hook/{FEISHU_TOKEN}"
    body = feishu["json"]
    assert set(body) == {"timestamp", "sign", "msg_type", "content"}
    assert (body["msg_type"], body["content"]) == ("text", {"text": text})
    assert before - 1 <= int(body["timestamp"]) <= after + 1  # seconds
    key = f"{body['timestamp']}\n{FEISHU_SECRET}".encode()
    assert body["sign"] == base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()

    _no_secret_in(*(r["raw"].decode("utf-8") for r in robots.received))
    assert "Alert sent to robot 'alert_feishu' (feishu)" in logs.text
    assert '"POST /cgi-bin/webhook/send?key=*** HTTP/1.1" 200' in logs.text  # urllib3's line, scrubbed
    out = capsys.readouterr()
    _no_secret_in(logs.text, out.out, out.err)


def test_robots_without_a_secret_get_no_signature(receiver, monkeypatch):
    _connection(monkeypatch, "plain_dingtalk", conn_type="dingding", host=receiver.url + "/", password=DING_TOKEN)
    _connection(monkeypatch, "plain_feishu", conn_type="feishu", host=receiver.url, password=FEISHU_TOKEN, extra={})
    send_alert(["plain_dingtalk", "plain_feishu"], "hello")
    assert receiver.one("/robot/send")["query"] == {"access_token": [DING_TOKEN]}
    assert receiver.one("/open-apis/")["json"] == {"msg_type": "text", "content": {"text": "hello"}}


def test_a_generic_connection_names_its_robot_in_extra(receiver, monkeypatch):
    _connection(
        monkeypatch, "generic_wecom", conn_type="http", host=receiver.url, password=WECOM_KEY, extra={"robot": "wecom"}
    )
    send_alert(["generic_wecom"], "hello")
    assert receiver.one("/cgi-bin/webhook/send")["query"] == {"key": [WECOM_KEY]}


# ---------------------------------------------------------------------------------------------------
# Refusals, faults and retries


@pytest.mark.parametrize(
    ("conn_id", "reply", "message"),
    [
        (
            "alert_dingtalk",
            {"errcode": 310000, "errmsg": "sign not match, more: [https://ding-doc.dingtalk.com]"},
            "robot 'alert_dingtalk' (dingding) refused the message: code 310000: sign not match",
        ),
        (
            "alert_wecom",
            {"errcode": 93000, "errmsg": f"invalid webhook url, hint: key={WECOM_KEY}"},
            "robot 'alert_wecom' (wecom) refused the message: code 93000: invalid webhook url, hint: key=***",
        ),
        (
            "alert_feishu",
            {"code": 19021, "msg": "sign match fail or timestamp is not within one hour from current time"},
            "robot 'alert_feishu' (feishu) refused the message: code 19021: sign match fail",
        ),
        (
            "alert_feishu",
            {"StatusCode": 9499, "StatusMessage": "Bad Request"},
            "robot 'alert_feishu' (feishu) refused the message: code 9499: Bad Request",
        ),
    ],
)
def test_a_refusal_is_a_clear_error_without_the_token(robots, logs, conn_id, reply, message):
    robots.script.append((200, reply))
    with pytest.raises(AlertError) as caught:
        send_alert([conn_id], "hello")
    assert message in str(caught.value)
    assert str(caught.value).startswith("alert not delivered to 1 of 1 robots: ")
    assert len(robots.received) == 1  # a refusal is not retried
    _no_secret_in(str(caught.value), logs.text)


def test_a_5xx_is_tried_once_more(robots, logs):
    robots.script.append((502, b"<html>bad gateway</html>"))
    send_alert(["alert_wecom"], "hello")
    assert len(robots.received) == 2
    assert f"Robot 'alert_wecom' (wecom): attempt 1 of 2 failed ({robots.url} answered HTTP 502); retrying" in logs.text

    robots.received.clear()
    robots.script += [(500, b"oops"), (503, b"busy")]
    twice = rf"robot 'alert_feishu' \(feishu\): {robots.url} answered HTTP 503, twice"
    with pytest.raises(AlertError, match=twice):
        send_alert(["alert_feishu"], "hello")
    assert len(robots.received) == 2
    _no_secret_in(logs.text)


def test_a_4xx_is_not_retried_and_its_echo_of_the_url_is_scrubbed(robots, logs):
    robots.script.append((404, f"no such hook: /open-apis/bot/v2/hook/{FEISHU_TOKEN}".encode()))
    scrubbed = r"answered HTTP 404: no such hook: /open-apis/bot/v2/hook/\*\*\*"
    with pytest.raises(AlertError, match=scrubbed) as caught:
        send_alert(["alert_feishu"], "hello")
    assert len(robots.received) == 1
    _no_secret_in(str(caught.value), logs.text)


def test_a_reply_that_is_not_json_is_an_error(robots):
    robots.script.append((200, b"ok"))
    with pytest.raises(AlertError, match="answered HTTP 200 without a JSON object"):
        send_alert(["alert_dingtalk"], "hello")


def test_no_connection_is_tried_once_more_and_the_error_has_no_token(monkeypatch, logs):
    monkeypatch.setattr(alerts, "RETRY_PAUSE_SECONDS", 0)
    down = f"http://127.0.0.1:{_closed_port()}"
    _connection(
        monkeypatch,
        "down_dingtalk",
        conn_type="dingding",
        host=down,
        password=DING_TOKEN,
        extra={"secret": DING_SECRET},
    )
    _connection(monkeypatch, "down_feishu", conn_type="feishu", host=down, password=FEISHU_TOKEN)
    with pytest.raises(AlertError) as caught:
        send_alert(["down_dingtalk", "down_feishu"], "hello")
    assert str(caught.value) == (
        f"alert not delivered to 2 of 2 robots: "
        f"robot 'down_dingtalk' (dingding): could not reach {down} (ConnectionError), twice; "
        f"robot 'down_feishu' (feishu): could not reach {down} (ConnectionError), twice"
    )
    assert logs.text.count("attempt 1 of 2 failed (could not reach") == 2
    _no_secret_in(str(caught.value), logs.text)


def test_one_robot_failing_does_not_keep_the_others_from_their_message(robots, monkeypatch):
    _connection(monkeypatch, "not_a_robot", conn_type="http", host=robots.url, password="x")
    with pytest.raises(AlertError) as caught:
        send_alert(["alert_undefined", "not_a_robot", "alert_wecom"], "hello")
    assert str(caught.value) == (
        "alert not delivered to 2 of 3 robots: connection 'alert_undefined' is not defined; "
        "connection 'not_a_robot': type 'http' is not a chat robot; "
        "use dingding, wecom, feishu or lark (or extra.robot naming one)"
    )
    assert [r["path"] for r in robots.received] == ["/cgi-bin/webhook/send"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"conn_type": "wecom"}, r"connection 'bad_robot': password \(the robot's key\) is empty"),
        (
            {"conn_type": "wecom", "password": f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={WECOM_KEY}"},
            "connection 'bad_robot': password must be only the robot's key, not the webhook URL",
        ),
        (
            {"conn_type": "feishu", "password": FEISHU_TOKEN, "host": "open.feishu.cn"},
            "connection 'bad_robot': host must be the robot's base URL, like https://open.feishu.cn",
        ),
        (
            {
                "conn_type": "dingding",
                "password": DING_TOKEN,
                "host": f"https://oapi.dingtalk.com/robot/send?access_token={DING_TOKEN}",
            },
            "connection 'bad_robot': host must be the base URL only, like https://oapi.dingtalk.com; "
            "the key goes in password",
        ),
    ],
)
def test_a_misconfigured_connection_names_the_field_and_never_the_secret(receiver, monkeypatch, fields, message):
    _connection(monkeypatch, "bad_robot", **fields)
    with pytest.raises(AlertError, match=message) as caught:
        send_alert(["bad_robot"], "hello")
    _no_secret_in(str(caught.value))
    assert not receiver.received


# ---------------------------------------------------------------------------------------------------
# The entry points


def test_notify_problems_tells_every_robot_and_never_raises(robots, logs):
    assert notify_problems(
        ["alert_dingtalk", "alert_feishu"],
        dag_id=DAG_ID,
        run_id=RUN_ID,
        window=WINDOW,
        counts=COUNTS,
        problems=PROBLEMS,
    )
    text = robots.one("/robot/send")["json"]["text"]["content"]
    assert text.startswith(f"【erpsync 告警】{DAG_ID} 已完成，但 4 张订单未进入金蝶\n") and text.endswith(LINK)
    assert robots.one("/open-apis/")["json"]["content"]["text"] == text

    robots.received.clear()
    robots.script.append((200, {"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"}))
    assert not notify_problems(
        ["alert_dingtalk", "alert_wecom"], dag_id=DAG_ID, run_id=RUN_ID, window=WINDOW, counts=COUNTS, problems=PROBLEMS
    )
    assert (
        "alert not delivered to 1 of 2 robots: robot 'alert_dingtalk' (dingding) refused the message: code 130101"
    ) in logs.text
    assert len(robots.received) == 2  # WeCom still told
    assert notify_problems(["alert_dingtalk"], dag_id=DAG_ID, run_id=RUN_ID, window=WINDOW, counts=COUNTS, problems=[])
    assert notify_problems([], dag_id=DAG_ID, run_id=RUN_ID, window=WINDOW, counts=COUNTS, problems=PROBLEMS)
    assert len(robots.received) == 2
    _no_secret_in(logs.text)


class _TaskInstance:
    """What a failure callback's ``ti`` offers the notifier: its task and the run's XComs."""

    def __init__(self, task_id: str, xcoms: dict[str, Any]) -> None:
        self.task_id, self.dag_id, self.run_id, self.state = task_id, DAG_ID, RUN_ID, "failed"
        self.xcoms = xcoms

    def xcom_pull(self, task_ids: str, key: str = "return_value") -> Any:
        assert key == "return_value"
        return self.xcoms.get(task_ids)


def _context(ti: _TaskInstance, **changes: Any) -> dict[str, Any]:
    """The context Airflow's DAG processor passes a DAG's on_failure_callback: the template context of
    the task instance that failed last, plus ``reason``."""
    from airflow.sdk import DAG

    dag = DAG(dag_id=DAG_ID, schedule=None)
    dag_run = SimpleNamespace(dag_id=DAG_ID, run_id=RUN_ID, run_after=datetime(2026, 11, 2, 1, 30), conf={})
    return {
        "dag": dag,
        "dag_run": dag_run,
        "run_id": RUN_ID,
        "ti": ti,
        "task_instance": ti,
        "params": {"window_start": None, "window_end": None, "filters": {}},
        "data_interval_start": None,
        "data_interval_end": None,
        "ds": "2026-11-02",
        "reason": "task_failure",
        **changes,
    }


def _manifest(**counts: Any) -> dict[str, Any]:
    return {"window": WINDOW.as_dict(), "filters": {}, "dir": "/staging/x", **counts}


def test_the_notifier_called_as_airflow_calls_it_reads_the_failed_loads_report(robots, tmp_path, logs):
    import pandas as pd
    from airflow.sdk import ObjectStoragePath

    from erpsync.outcomes import REPORT_COLUMNS
    from erpsync.staging import RunFiles, append_part

    root = ObjectStoragePath(tmp_path.as_uri())
    files = RunFiles(root, DAG_ID, WINDOW)

    def row(n: int, outcome: str, **values: str) -> dict[str, Any]:
        return {"bill_no": f"B{n}", "order_id": str(n), "order_no": f"CK{n}", "outcome": outcome, **values}

    rows = [
        row(1, "created"),
        row(2, "created"),
        row(3, "existing"),
        row(4, "rejected", field="FCustId", message="客户不存在"),
        row(5, "held", message="BD_MATERIAL has no number 'X'"),
        row(6, "quarantined", bill_no=None, message="goods_count='0' breaks"),
    ]
    append_part(pd.DataFrame(rows, columns=REPORT_COLUMNS).astype("string"), files.load_report, 0)

    def files_of(manifest):
        return RunFiles(root, DAG_ID, Window.from_dict(manifest["window"]), manifest.get("filters"))

    notifier = RobotNotifier(["alert_wecom", "alert_feishu"], files_of=files_of)
    ti = _TaskInstance(
        "load",
        {"transform": _manifest(orders=6, bills=5, unmapped=0, quarantined_orders=1), "extract": _manifest(orders=6)},
    )
    notifier(_context(ti))  # BaseNotifier.__call__, as the DAG processor calls a callback

    text = robots.one("/open-apis/")["json"]["content"]["text"]
    assert text == "\n".join(
        [
            f"【erpsync 告警】{DAG_ID} 运行失败",
            "窗口：[2026-11-01 00:00:00, 2026-11-02 00:00:00) Asia/Shanghai",
            "失败任务：load",
            "计数：订单 6 · 单据 5 · 新建 2 · 已在金蝶 1 · 被拒 1 · 暂挂 1 · 隔离 1 · 未映射 0",
            "未进入金蝶的订单（3）：",
            "- 被拒 CK4：[FCustId] 客户不存在",
            "- 暂挂 CK5：BD_MATERIAL has no number 'X'",
            "- 隔离 CK6：goods_count='0' breaks",
            f"报告：{LINK}",
        ]
    )
    assert robots.one("/cgi-bin/")["json"]["markdown"]["content"].endswith(f"[{LINK}]({LINK})")
    _no_secret_in(logs.text)


def test_a_run_that_failed_before_load_says_which_task_and_finds_its_window(robots):
    asked = []

    def window_of(context):
        asked.append(context["params"])
        return WINDOW

    files_of = pytest.fail  # no load report is read for a run whose load did not run
    notifier = RobotNotifier(["alert_dingtalk"], window_of=window_of, files_of=files_of)
    notifier(_context(_TaskInstance("extract", {})))
    text = robots.one("/robot/send")["json"]["text"]["content"]
    assert text.split("\n")[1:4] == [
        "窗口：[2026-11-01 00:00:00, 2026-11-02 00:00:00) Asia/Shanghai",
        "失败任务：extract",
        "计数：无",
    ]
    assert asked == [{"window_start": None, "window_end": None, "filters": {}}]

    # transform failed: the window and counts of validate's manifest
    robots.received.clear()
    ti = _TaskInstance(
        "transform", {"validate": _manifest(orders=6, quarantined_orders=2), "extract": _manifest(orders=6)}
    )
    RobotNotifier(["alert_dingtalk"], window_of=pytest.fail)(_context(ti))
    lines = robots.one("/robot/send")["json"]["text"]["content"].split("\n")
    assert lines[2:4] == ["失败任务：transform", "计数：订单 6 · 隔离 2"]


def test_a_minimal_callback_context_still_gives_an_alert(robots, logs):
    """A task instance from before DAG versioning: Airflow passes only dag, run_id and reason."""
    from airflow.sdk import DAG

    def window_of(context):
        raise AssertionError("a window guessed from the clock would be wrong")

    notifier = RobotNotifier(["alert_feishu"], window_of=window_of)
    notifier({"dag": DAG(dag_id=DAG_ID, schedule=None), "run_id": RUN_ID, "reason": "task_failure"})
    lines = robots.one("/open-apis/")["json"]["content"]["text"].split("\n")
    assert lines == [
        f"【erpsync 告警】{DAG_ID} 运行失败",
        "窗口：未知",
        "失败原因：task_failure",
        "计数：无",
        f"报告：{LINK}",
    ]


def test_the_notifier_raises_when_a_robot_was_not_told_without_a_secret(robots, logs, capsys):
    robots.script.append((200, {"errcode": 300001, "errmsg": "token is not exist"}))
    with pytest.raises(AlertError, match="code 300001: token is not exist"):
        RobotNotifier(["alert_dingtalk"])(_context(_TaskInstance("load", {})))
    out = capsys.readouterr()  # BaseNotifier logs through Airflow's structlog, to stdout here
    assert "Failed to send notification (sync): alert not delivered to 1 of 1 robots" in out.out + out.err
    _no_secret_in(logs.text, out.out, out.err)


@pytest.mark.e2e
def test_a_red_run_of_the_real_dag_tells_the_robots(
    airflow_db, wdt_emulator, kingdee_emulator, robots, tmp_path, monkeypatch, logs, capsys
):
    """The sales stock-out DAG under ``dag.test()``, red as its data set makes it (held and quarantined
    orders, ``on_problem: fail``): Airflow calls the notifier with its own callback context."""
    from erpsync.dag_factory import build_dags
    from erpsync.staging import RunFiles, staging_root
    from erpsync.steps.load import read_report
    from erpsync.windows import resolve_window
    from tests.conftest import KINGDEE, WDT

    monkeypatch.setenv("AIRFLOW__ERPSYNC__STAGING_ROOT", (tmp_path / "staging").as_uri())
    _connection(
        monkeypatch,
        "wdt_default",
        conn_type="generic",
        host=wdt_emulator.url,
        login=WDT["app_key"],
        password=WDT["app_secret"],
        extra={"target_app_key": WDT["target_app_key"], "sid": WDT["sid"], "min_interval_seconds": 0},
    )
    _connection(
        monkeypatch,
        "kingdee_default",
        conn_type="generic",
        host=kingdee_emulator.url,
        login=KINGDEE["username"],
        password=KINGDEE["app_secret"],
        extra={"acct_id": KINGDEE["acct_id"], "app_id": KINGDEE["app_id"], "backoff_seconds": 0.01},
    )

    def window_of(context):  # what the DAG factory's run_window does
        params = context["params"]
        return resolve_window(
            window_start=params.get("window_start"),
            window_end=params.get("window_end"),
            data_interval_start=None,
            data_interval_end=None,
            run_after=None,
            cron="0 1 * * *",
        )

    def files_of(manifest):  # what the DAG factory's _files does
        return RunFiles(staging_root(), DAG_ID, Window.from_dict(manifest["window"]), manifest.get("filters"))

    # DAG(on_failure_callback=...) as the DAG factory will pass it (set afterwards, the flag Airflow
    # computes from it in DAG() needs setting too)
    dag = build_dags()[DAG_ID]
    dag.on_failure_callback = RobotNotifier(["alert_wecom", "alert_dingtalk"], window_of=window_of, files_of=files_of)
    dag.has_on_failure_callback = True
    run = dag.test(run_conf={"window_start": "2026-11-01T00:00:00", "window_end": "2026-11-06T00:00:00"})
    assert run.state == "failed"

    report = read_report(files_of({"window": window_of({"params": run.conf}).as_dict()}))
    n = report["outcome"].value_counts().to_dict()
    assert set(n) == {"created", "held", "quarantined"}
    text = robots.one("/robot/send")["json"]["text"]["content"]
    lines = text.split("\n")
    assert lines[:4] == [
        f"【erpsync 告警】{DAG_ID} 运行失败",
        "窗口：[2026-11-01 00:00:00, 2026-11-06 00:00:00) Asia/Shanghai",
        "失败任务：load",
        f"计数：单据 {n['created'] + n['held']} · 新建 {n['created']} · 已在金蝶 0 · 被拒 0 · 暂挂 {n['held']} · "
        f"隔离 {n['quarantined']} · 未映射 0",
    ]
    assert lines[4] == f"未进入金蝶的订单（{n['held'] + n['quarantined']}）："
    assert any(line.startswith("- 暂挂 ") and "BD_MATERIAL has no number" in line for line in lines)
    assert any(line.startswith("- 隔离 ") for line in lines)
    assert lines[-1] == f"报告：{report_url(DAG_ID, run.run_id)}"
    assert robots.one("/cgi-bin/")["json"]["markdown"]["content"].startswith(lines[0])
    out = capsys.readouterr()
    _no_secret_in(logs.text, out.out, out.err, *(r["raw"].decode() for r in robots.received))


def test_a_reconciled_day_with_differences_tells_the_robots_its_counts_and_page(robots, logs):
    from erpsync.alerts import notify_reconciliation

    counts = {"missing": 2, "extra": 1, "mismatched": 0, "deleted": 1}
    assert notify_reconciliation(["alert_wecom"], dag_id=DAG_ID, day="2026-11-03", counts=counts) is True
    text = robots.one("/cgi-bin/")["json"]["markdown"]["content"]
    assert text.split("\n")[:2] == [
        f"【erpsync 对账】{DAG_ID} 2026-11-03 有差异",
        "缺失 2 · 多余 1 · 不符 0 · 已删除 1",
    ]
    assert f"{BASE_URL}/erpsync/dags/{DAG_ID}/reconcile/2026-11-03" in text
    robots.script.append((500, {"errcode": 1, "errmsg": "down"}))
    robots.script.append((500, {"errcode": 1, "errmsg": "down"}))
    assert notify_reconciliation(["alert_wecom"], dag_id=DAG_ID, day="2026-11-03", counts=counts) is False
