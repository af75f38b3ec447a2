"""Alerts: a failed run, or orders that did not reach Kingdee, told to DingTalk, WeCom and Feishu robots.

Each robot is an Airflow connection named in ``settings.alerts``; its type says which robot:

* ``dingding``: a DingTalk custom robot (the connection type of the official provider,
  apache-airflow-providers-dingding, whose form users know): password = the ``access_token``; host =
  base URL, default ``https://oapi.dingtalk.com``; extra ``secret`` = the 加签 secret (``SEC…``), if the
  robot signs. The message is posted directly, as for the other robots: the provider's ``send`` logs
  the URL, token included, on a network error, retries nothing and cannot sign.
* ``wecom``: a WeCom (企业微信) group robot: password = the ``key``; host default
  ``https://qyapi.weixin.qq.com``.
* ``feishu`` (``lark``): a Feishu (Lark) custom bot: password = the hook token (the webhook's last part);
  host default ``https://open.feishu.cn`` (``https://open.larksuite.com``); extra ``secret`` = the
  签名校验 secret, if the bot checks signatures.

A connection of another type (``http``, ``generic``) names its robot in extra ``robot``.

Two entry points: :class:`RobotNotifier`, a DAG's ``on_failure_callback``, and :func:`notify_problems`,
called by the load task when ``on_problem: warn`` leaves a green run with orders missing. The text
(:func:`alert_text`) names the DAG, the window, the counts, the first problem orders and the link to
the run's report page. Every robot is posted through :mod:`erpsync.transport` (timeout, one retry on a
5xx or no connection, secrets scrubbed from urllib3's log lines): tokens and signatures go only into the
request, and no log line, error or message text holds one, whether or not Airflow's secret masker runs
(under ``dags test`` it may not).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from airflow.sdk import BaseHook, BaseNotifier, conf
from airflow.sdk.exceptions import AirflowNotFoundException
from airflow.sdk.log import mask_secret

from erpsync.connections import ConnectionConfigError
from erpsync.windows import Window

log = logging.getLogger(__name__)

MAX_PROBLEMS = 10  # problem orders named in a message; the report page has them all
REASON_CHARS = 80
TEXT_BYTES = 3800  # WeCom takes at most 4096 bytes of markdown; the others more
TIMEOUT_SECONDS = 10
RETRY_PAUSE_SECONDS = 3.0  # one retry, on 5xx or no connection: the robots allow ~20 messages a minute
TASKS = ("load", "transform", "validate", "extract")  # the DAG's tasks, last first: the latest manifest wins
LOAD_TASK = "load"

_JSON = {"Content-Type": "application/json; charset=utf-8"}
_COUNTS = (  # (key of the load task's XCom or of an upstream manifest, label)
    ("orders", "订单"),
    ("bills", "单据"),
    ("created", "新建"),
    ("existing", "已在金蝶"),
    ("rejected", "被拒"),
    ("held", "暂挂"),
    ("quarantined", "隔离"),
    ("quarantined_orders", "隔离"),  # validate's name, before load reports ``quarantined``
    ("unmapped", "未映射"),
)
_OUTCOMES = {"rejected": "被拒", "held": "暂挂", "quarantined": "隔离", "unmapped": "未映射"}


class AlertError(RuntimeError):
    """A message that did not reach a robot; names the connection, never its token."""


# ---------------------------------------------------------------------------------------------------
# The text


def _page_url(*segments: str) -> str:
    """A page of the erpsync UI, under Airflow's ``[api] base_url``."""
    base = (conf.get("api", "base_url", fallback=None) or "http://localhost:8080").rstrip("/")
    return f"{base}/erpsync/" + "/".join(quote(s, safe="") for s in segments)


def report_url(dag_id: str, run_id: str) -> str:
    """The run's report page."""
    return _page_url("dags", dag_id, "runs", run_id)


def reconcile_url(dag_id: str, day: str) -> str:
    """A reconciled day's page."""
    return _page_url("dags", dag_id, "reconcile", day)


def _count_line(counts: Mapping[str, Any]) -> str:
    shown = []
    for key, label in _COUNTS:
        if key == "quarantined_orders" and "quarantined" in counts:
            continue
        value = counts.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            shown.append(f"{label} {value}")
    return "计数：" + (" · ".join(shown) or "无")


def _one_line(text: Any, limit: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def alert_text(
    dag_id: str,
    window: Window | str | None,
    counts: Mapping[str, Any],
    problems: Sequence[Any],
    report_url: str,
    *,
    failed: bool = False,
    failed_task: str | None = None,
    reason: str | None = None,
    max_problems: int = MAX_PROBLEMS,
) -> str:
    """The message: DAG, window, state, counts, up to ``max_problems`` problem orders (``Problem`` of
    steps/load.py: order_no, order_id, outcome, reason), the report link; under TEXT_BYTES UTF-8 bytes."""
    missing = max(len(problems), _int(counts.get("problems")))
    if failed:
        lines = [f"【erpsync 告警】{dag_id} 运行失败", f"窗口：{window or '未知'}"]
        lines.append(f"失败任务：{failed_task}" if failed_task else f"失败原因：{reason or '未知'}")
    else:
        lines = [f"【erpsync 告警】{dag_id} 已完成，但 {missing} 张订单未进入金蝶", f"窗口：{window or '未知'}"]
    lines.append(_count_line(counts))
    tail = [f"报告：{report_url}"]
    if problems:
        lines.append(f"未进入金蝶的订单（{missing}）：")
        shown = 0
        for problem in problems[:max_problems]:
            given = problem.order_no not in (None, "", "None")
            order = problem.order_no if given else f"id {problem.order_id}"
            outcome = _OUTCOMES.get(problem.outcome, problem.outcome)
            line = f"- {outcome} {order}：{_one_line(problem.reason, REASON_CHARS)}"
            if len("\n".join([*lines, line, "- …另 99999 张，见报告", *tail]).encode("utf-8")) > TEXT_BYTES:
                break  # room kept for the "more" line and the link
            lines.append(line)
            shown += 1
        if missing > shown:
            lines.append(f"- …另 {missing - shown} 张，见报告")
    return "\n".join([*lines, *tail])


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


# ---------------------------------------------------------------------------------------------------
# The robots


@dataclass(frozen=True)
class _Request:
    url: str
    body: str  # JSON
    secrets: tuple[str, ...]  # what no error may repeat: token, secret, signature


def _token(conn_id: str, conn: Any, what: str) -> str:
    token = (conn.password or "").strip()
    if not token:
        raise ConnectionConfigError(f"connection {conn_id!r}: password (the robot's {what}) is empty")
    if any(c in token for c in "/?&= "):  # a pasted webhook URL: say so, without repeating it
        raise ConnectionConfigError(
            f"connection {conn_id!r}: password must be only the robot's {what}, not the webhook URL"
        )
    mask_secret(token)
    return token


def _base_url(conn_id: str, conn: Any, default: str) -> str:
    base = (conn.host or default).strip().rstrip("/")
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConnectionConfigError(f"connection {conn_id!r}: host must be the robot's base URL, like {default}")
    if parts.query or parts.fragment:  # never echoed: it may hold the key
        raise ConnectionConfigError(
            f"connection {conn_id!r}: host must be the base URL only, like {default}; the key goes in password"
        )
    return base


def _extra(conn_id: str, conn: Any) -> dict[str, Any]:
    extra = conn.extra_dejson
    if not isinstance(extra, dict):
        raise ConnectionConfigError(f"connection {conn_id!r}: extra must be a JSON object")
    return extra


def _secret(conn_id: str, conn: Any) -> str:
    secret = str(_extra(conn_id, conn).get("secret") or "").strip()
    if secret:
        mask_secret(secret)
    return secret


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk 加签: base64(HMAC-SHA256(key=secret, msg=f"{timestamp}\\n{secret}")), timestamp in ms,
    sent url-encoded as ``&timestamp=…&sign=…`` (open.dingtalk.com, 自定义机器人安全设置; mirrored at
    apifox.com/apidoc/docs-site/467052/doc-3550006)."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def feishu_sign(secret: str, timestamp_s: int) -> str:
    """Feishu 签名校验: base64(HMAC-SHA256(key=f"{timestamp}\\n{secret}", msg=b"")), timestamp in
    seconds, sent as body fields ``timestamp`` and ``sign`` (open.feishu.cn/document/client-docs/bot-v3/
    add-custom-bot; as implemented by go-gitea/gitea#34788). Note the key: unlike DingTalk's."""
    digest = hmac.new(f"{timestamp_s}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


class RobotHook(BaseHook):
    """A chat robot configured as a connection; ``send(text)`` posts one message and checks the reply."""

    conn_name_attr = "robot_conn_id"
    kind = ""
    default_host = ""
    token_name = "token"

    def __init__(self, robot_conn_id: str) -> None:
        super().__init__()
        self.robot_conn_id = robot_conn_id

    def send(self, text: str) -> None:
        from erpsync.transport import make_session, redact  # at send time: DAG parsing imports no client library

        cid = self.robot_conn_id
        conn = self.get_connection(cid)
        request = self._request(conn, text)
        with make_session(timeout=TIMEOUT_SECONDS, describe=lambda _: self.kind, secrets=request.secrets) as session:
            reply = _post(session, cid, self.kind, request)
        code, message = self._verdict(reply)
        if str(code) != "0":
            refusal = f"robot {cid!r} ({self.kind}) refused the message: code {code}: {message}"
            raise AlertError(redact(refusal, request.secrets))
        log.info("Alert sent to robot %r (%s)", cid, self.kind)

    def _request(self, conn: Any, text: str) -> _Request:
        raise NotImplementedError

    @staticmethod
    def _verdict(reply: Mapping[str, Any]) -> tuple[Any, str]:
        return reply.get("errcode", "missing"), str(reply.get("errmsg", ""))


class DingTalkRobotHook(RobotHook):
    """DingTalk custom robot: a text message to ``robot/send?access_token=…``, signed (加签) when the
    connection has a secret (open.dingtalk.com, 自定义机器人发送群消息)."""

    kind = "dingding"
    default_host = "https://oapi.dingtalk.com"
    token_name = "access_token"

    def _request(self, conn: Any, text: str) -> _Request:
        cid = self.robot_conn_id
        token = _token(cid, conn, self.token_name)
        url = f"{_base_url(cid, conn, self.default_host)}/robot/send?{urlencode({'access_token': token})}"
        body = {"msgtype": "text", "text": {"content": text}, "at": {"atMobiles": None, "isAtAll": False}}
        secrets: tuple[str, ...] = (token,)
        if secret := _secret(cid, conn):
            timestamp = int(time.time() * 1000)
            sign = dingtalk_sign(secret, timestamp)
            mask_secret(sign)  # valid for an hour, and in the URL urllib3 logs at DEBUG
            url += "&" + urlencode({"timestamp": timestamp, "sign": sign})
            secrets += (secret, sign)
        return _Request(url, json.dumps(body, ensure_ascii=False), secrets)


class WeComRobotHook(RobotHook):
    """WeCom group robot: markdown (4096 bytes at most), no signing
    (developer.work.weixin.qq.com/document/path/91770)."""

    conn_type = "wecom"
    hook_name = "企业微信群机器人 (WeCom group robot)"
    kind = "wecom"
    default_host = "https://qyapi.weixin.qq.com"
    token_name = "key"

    def _request(self, conn: Any, text: str) -> _Request:
        cid = self.robot_conn_id
        token = _token(cid, conn, self.token_name)
        url = f"{_base_url(cid, conn, self.default_host)}/cgi-bin/webhook/send?key={quote(token, safe='')}"
        body = {"msgtype": "markdown", "markdown": {"content": _markdown_link(text)}}
        return _Request(url, json.dumps(body, ensure_ascii=False), (token,))


def _markdown_link(text: str) -> str:
    """The report line as a markdown link: WeCom's markdown documents links, not bare URLs."""
    head, sep, url = text.rpartition("\n报告：")
    return f"{head}{sep}[{url}]({url})" if sep and url.startswith(("http://", "https://")) else text


class FeishuRobotHook(RobotHook):
    """Feishu custom bot: a text message, signed when the connection has a secret."""

    conn_type = "feishu"
    hook_name = "飞书自定义机器人 (Feishu custom bot)"
    kind = "feishu"
    default_host = "https://open.feishu.cn"
    token_name = "hook token"

    def _request(self, conn: Any, text: str) -> _Request:
        cid = self.robot_conn_id
        token = _token(cid, conn, self.token_name)
        url = f"{_base_url(cid, conn, self.default_host)}/open-apis/bot/v2/hook/{quote(token, safe='')}"
        body: dict[str, Any] = {}
        secrets: tuple[str, ...] = (token,)
        if secret := _secret(cid, conn):
            timestamp = int(time.time())
            sign = feishu_sign(secret, timestamp)
            body = {"timestamp": str(timestamp), "sign": sign}
            secrets += (secret, sign)
        body |= {"msg_type": "text", "content": {"text": text}}
        return _Request(url, json.dumps(body, ensure_ascii=False), secrets)

    @staticmethod
    def _verdict(reply: Mapping[str, Any]) -> tuple[Any, str]:
        if "code" in reply:
            return reply["code"], str(reply.get("msg", ""))
        return reply.get("StatusCode", "missing"), str(reply.get("StatusMessage", ""))  # the older reply


class LarkRobotHook(FeishuRobotHook):
    conn_type = "lark"
    hook_name = "Lark custom bot"
    kind = "lark"
    default_host = "https://open.larksuite.com"


ROBOTS: dict[str, type[RobotHook]] = {
    "dingding": DingTalkRobotHook,
    "dingtalk": DingTalkRobotHook,
    "wecom": WeComRobotHook,
    "feishu": FeishuRobotHook,
    "lark": LarkRobotHook,
}


class _Unreachable(AlertError):
    """No answer, or a 5xx: worth one more try."""


def _post(session: Any, conn_id: str, kind: str, request: _Request) -> Mapping[str, Any]:
    """POST once, and once more after a 5xx or no connection; the reply's JSON object."""
    import requests

    from erpsync.transport import redact, retrying

    where = _origin(request.url)

    def once() -> Any:
        try:
            response = session.post(request.url, data=request.body.encode("utf-8"), headers=_JSON)
        except (requests.ConnectionError, requests.Timeout) as exc:
            # str(exc) holds the URL: never shown
            raise _Unreachable(f"could not reach {where} ({type(exc).__name__})") from None
        except requests.RequestException as exc:
            name = type(exc).__name__
            raise AlertError(f"robot {conn_id!r} ({kind}): request to {where} failed ({name})") from None
        if response.status_code >= 500:
            raise _Unreachable(f"{where} answered HTTP {response.status_code}")
        return response

    policy = retrying(
        lambda exc: isinstance(exc, _Unreachable),
        attempts=2,
        backoff_seconds=RETRY_PAUSE_SECONDS,
        log=log,
        what=f"Robot {conn_id!r} ({kind})",
    )
    try:
        response = policy(once)
    except _Unreachable as exc:
        raise AlertError(f"robot {conn_id!r} ({kind}): {exc}, twice") from None
    status = response.status_code
    if status >= 400:  # the robot's page may echo the URL: scrubbed
        echo = _one_line(response.text, 200)
        answer = f"robot {conn_id!r} ({kind}): {where} answered HTTP {status}: {echo}"
        raise AlertError(redact(answer, request.secrets))
    try:
        reply = response.json()
    except ValueError:
        reply = None
    if not isinstance(reply, dict):
        raise AlertError(f"robot {conn_id!r} ({kind}): {where} answered HTTP {status} without a JSON object")
    return reply


def robot_hook(conn_id: str) -> RobotHook:
    """The hook for the robot a connection configures: by its type, else its extra ``robot``."""
    conn = BaseHook.get_connection(conn_id)
    kind = conn.conn_type
    if kind not in ROBOTS:
        kind = str(_extra(conn_id, conn).get("robot") or "").lower()
    if kind not in ROBOTS:
        raise ConnectionConfigError(
            f"connection {conn_id!r}: type {conn.conn_type!r} is not a chat robot; "
            "use dingding, wecom, feishu or lark (or extra.robot naming one)"
        )
    return ROBOTS[kind](conn_id)


def send_alert(conn_ids: Sequence[str], text: str) -> None:
    """One message to each robot; one that fails does not stop the others. Raises AlertError naming
    every robot the message did not reach."""
    failures = []
    for conn_id in conn_ids:
        try:
            robot_hook(conn_id).send(text)
        except (AlertError, ConnectionConfigError) as exc:
            failures.append(str(exc))
        except AirflowNotFoundException:
            failures.append(f"connection {conn_id!r} is not defined")
        except Exception as exc:  # one robot's fault stops no other; its text may hold a URL
            failures.append(f"robot {conn_id!r}: {type(exc).__name__}")
    if failures:
        raise AlertError(f"alert not delivered to {len(failures)} of {len(conn_ids)} robots: {'; '.join(failures)}")


# ---------------------------------------------------------------------------------------------------
# The entry points


def notify_problems(
    conn_ids: Sequence[str],
    *,
    dag_id: str,
    run_id: str,
    window: Window | str,
    counts: Mapping[str, Any],
    problems: Sequence[Any],
) -> bool:
    """For the load task when ``on_problem: warn``: tell the robots which orders did not reach Kingdee.
    A robot that cannot be told is logged, not raised: the load is done, and a retry would only load
    the window again. True when every robot got the message."""
    if not conn_ids or not problems:
        return True
    return _tell(conn_ids, alert_text(dag_id, window, counts, problems, report_url(dag_id, run_id)))


def _tell(conn_ids: Sequence[str], text: str) -> bool:
    """``send_alert`` for a task whose work is done: a robot not told is logged, not raised."""
    try:
        send_alert(conn_ids, text)
    except AlertError as exc:
        log.error("%s", exc)
        return False
    return True


_KIND_LABELS = {"missing": "缺失", "extra": "多余", "mismatched": "不符", "deleted": "已删除"}


def notify_reconciliation(conn_ids: Sequence[str], *, dag_id: str, day: str, counts: Mapping[str, int]) -> bool:
    """A reconciled day with new differences: the counts of each kind and the day's page. Logged, not
    raised, when a robot cannot be told (the reconciliation is stored either way)."""
    if not conn_ids:
        return True
    shown = " · ".join(f"{label} {counts.get(kind, 0)}" for kind, label in _KIND_LABELS.items())
    return _tell(conn_ids, f"【erpsync 对账】{dag_id} {day} 有差异\n{shown}\n对账：{reconcile_url(dag_id, day)}")


class RobotNotifier(BaseNotifier):
    """A DAG's ``on_failure_callback``: tells each robot of ``conn_ids`` that the run failed.

    The window and counts come from the XCom of the last task that returned one (the load task's, or
    an upstream manifest); when the load task failed, counts and problem orders come from its load
    report (``files_of(manifest)`` gives the run's RunFiles). ``window_of(context)`` gives the window of
    a run that failed before any task returned one.
    """

    def __init__(
        self,
        conn_ids: Sequence[str],
        *,
        window_of: Callable[[Any], Window] | None = None,
        files_of: Callable[[Mapping[str, Any]], Any] | None = None,
        max_problems: int = MAX_PROBLEMS,
    ) -> None:
        super().__init__()
        self.conn_ids = tuple(conn_ids)
        self.window_of = window_of
        self.files_of = files_of
        self.max_problems = max_problems

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        # Nothing is templated. BaseNotifier would still build a Jinja env from context["dag"], and
        # under dag.test() that is a SerializedDAG, which has none: the alert would fail unsent.
        pass

    def notify(self, context: Any) -> None:
        if self.conn_ids:
            send_alert(self.conn_ids, self.text(context))

    def text(self, context: Any) -> str:
        dag, dag_run = context.get("dag"), context.get("dag_run")
        ti = context.get("ti") or context.get("task_instance")
        dag_id = next((v for v in (getattr(o, "dag_id", None) for o in (dag, dag_run, ti)) if v), "?")
        run_id = context.get("run_id") or getattr(dag_run, "run_id", None) or getattr(ti, "run_id", None)
        failed_task = getattr(ti, "task_id", None)
        manifest = _manifest(ti) if ti is not None else {}
        window = self._window(manifest, context)
        counts = {k: v for k, v in manifest.items() if isinstance(v, int) and not isinstance(v, bool)}
        problems: list[Any] = []
        if failed_task == LOAD_TASK and window is not None and self.files_of is not None:
            # without XCom (dag.test runs callbacks where none can be read) the run's params say where
            # its files are, as they told extract
            filters = dict((context.get("params") or {}).get("filters") or {})
            source = manifest or {"window": window.as_dict(), "filters": filters}
            try:  # the load report is the truth of what reached Kingdee, whatever made the task fail
                counts, problems = _report(self.files_of(source), counts)
            except Exception as exc:  # the alert goes out without them
                log.warning("Alert: cannot read the load report (%s)", type(exc).__name__)
        return alert_text(
            dag_id,
            window,
            counts,
            problems,
            report_url(dag_id, run_id or "?"),
            failed=True,
            failed_task=failed_task,
            reason=context.get("reason"),
            max_problems=self.max_problems,
        )

    def _window(self, manifest: Mapping[str, Any], context: Any) -> Window | None:
        try:
            if manifest.get("window"):
                return Window.from_dict(manifest["window"])
            # without the run (a minimal callback context) window_of would guess from the clock
            if self.window_of is not None and context.get("dag_run") is not None:
                return self.window_of(context)
        except Exception as exc:  # e.g. the bad params the run failed on
            log.warning("Alert: the run's window is unknown (%s)", _one_line(exc, 200))
        return None


def _manifest(ti: Any) -> dict[str, Any]:
    """The newest manifest the run's tasks returned, or {}."""
    for task_id in TASKS:
        try:
            value = ti.xcom_pull(task_ids=task_id)
        except Exception as exc:  # XCom cannot be read here (dag.test): none can
            log.warning("Alert: cannot read the run's XCom (%s)", type(exc).__name__)
            return {}
        if isinstance(value, Mapping) and value.get("window"):
            return dict(value)
    return {}


def _report(files: Any, counts: Mapping[str, int]) -> tuple[dict[str, int], list[Any]]:
    """``counts`` with the load report's outcome counts, and its problem orders (none without a report)."""
    from erpsync.outcomes import OUTCOMES
    from erpsync.steps.load import read_report, window_problems

    if not files.load_report.exists():
        return dict(counts), []
    outcomes = read_report(files)["outcome"].value_counts()
    found = {**dict.fromkeys(OUTCOMES, 0), **{str(o): int(n) for o, n in outcomes.items()}}
    found["bills"] = sum(found.get(o, 0) for o in ("created", "existing", "rejected", "held", "would_create"))
    problems = window_problems(files)
    return {**counts, **found, "problems": len(problems)}, problems
