"""Emulator of the 旺店通 企业版 Qimen gateway for ``wdt.stockout.order.query.trade``.

Follows /work/shared/protocols/wdt-qimen-stockout.md. Points the spec marks [INF]/[UNCONFIRMED] are
decided here (gateway), in :mod:`emulators.wdt.wire` (parameters, signature, XML), :mod:`.query` (query
semantics and parameter errors), :mod:`.timeline` (clock, order histories, renumbering, churn) and
:mod:`.faults` (latency, 5xx, quota).

Transport (§2.1)
- ``/router/qm`` and ``/router/qmtest`` (a trailing slash is tolerated), GET and POST; any other path
  answers HTTP 404 with a small JSON ``error_response`` (not the router's business).
- HTTP 200 for every gateway or business error. ``format=json`` (any case) answers JSON,
  ``application/json;charset=UTF-8``; ``format=xml`` or no ``format`` answers XML (TOP's default, spec
  §2.2); any other value answers gateway error 23 in XML.

Gateway checks (§2.2-§2.4), in this order; each failure answers the observed Qimen shape
``{"response":{"flag":"failure","code":N,"message":...,"sub_code":...,"sub_message":...,"request_id":...}}``
(no ``errorcode`` key, as in the observed sample), or with ``top_error_shape=True`` (CLI
``--top-error-shape``) TOP's ``{"error_response":{"code":N,"msg":...,"sub_code":...,"sub_msg":...,
"request_id":...}}``; codes are TOP's generic platform codes:
  app_key missing 28 "Missing App Key" / unknown 29 "Invalid App Key";
  timestamp missing 30 "Missing Timestamp" / malformed or more than ``timestamp_tolerance_s`` (default
  600 s, spec §2.4) off the wall clock 31 "Invalid Timestamp";
  sign missing 24 "Missing Signature" / wrong or unsupported sign_method 25 "Invalid signature";
  v missing 32 "Missing Version" / not a version number 33 "Invalid Version" / a version other than
  ``2.0`` 34 "Unsupported Version" (spec §2.2: v is required and is 2.0);
  format other than json/xml 23 "Invalid Format";
  target_app_key missing 40 "Missing Required Arguments" / wrong 41 "Invalid Arguments";
  method missing 21 "Missing Method" / unknown 22 "Invalid Method" (a leading ``hu3cgwt0tc.`` is stripped).
  ``sign_method`` defaults to md5; ``session`` and ``partner_id`` are only signed. A bug in the emulator
  answers 15 "Remote service error" in the same shape.

Business (WDT) errors: ``{"response":{"flag":"failure","errorcode":N,"code":N,"message":...,
"sub_code":...,"sub_message":...,"request_id":...}}`` (they come from WDT, so ``--top-error-shape`` does
not change them): 100 invalid or missing ``sid`` (``isv.invalid-sid``), then the parameter errors of
:mod:`.query`, and 1012 from the quota of :mod:`.faults`.

Success: ``{"response":{"flag":"success","code":0,"errorcode":0,"message":"","total_count":N,
"stockout_list":[...],"request_id":...}}``; ``total_count`` (orders, not lines) is on page 0 only, on every
page with ``total_count_every_page=True`` (CLI ``--total-count-every-page``).

Order fields that the spec cannot confirm for 企业版 are switches:
- ``batch_fields`` (default True, CLI ``--batch-fields/--no-batch-fields``): the lines' ``batch_no``,
  ``product_date``, ``expire_date`` (Y-edition names, spec §5.4) are present, or absent. The order-level
  ``batch_no`` (print batch, spec §5.3) stays.
- ``privacy`` (``masked`` default, or ``absent``; CLI ``--privacy``): Qimen does not hand out 淘系 buyers'
  personal data (spec §1). ``masked``: 淘系 orders (``platform_id`` 1) carry them masked ("张**",
  "138****5678", "****"). ``absent``: on 淘系 orders the keys are left out: ``receiver_name``,
  ``receiver_address``, ``receiver_mobile``, ``receiver_telno`` (the spec's receiver_phone), ``nick_name``
  and ``customer_name`` (both carry the buyer nick), and ``buyer_nick``, ``receiver_phone``,
  ``receiver_email``, ``id_card``, ``buyer_alipay_no``, ``alipay_id`` should a data set carry them. Other
  platforms keep plain values either way.

Clocks: ``clock`` (epoch seconds, default ``time.time``) is the gateway's wall clock: it checks
``timestamp`` and runs the quota's minute, so it must stay near the caller's real time. ``now`` is the
emulator's business clock (see :mod:`.timeline`), by default the same wall clock; it may be a callable
returning an aware datetime, or an aware datetime at which the clock starts and then runs on (CLI
``--now``); ``server.emulator.set_now(t)`` freezes it.
"""

from __future__ import annotations

import datetime as dt
import random
import re
import string
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from emulators.dataset import Dataset, build_dataset
from emulators.wdt.faults import Faults, Throttle, server_error_body
from emulators.wdt.query import MAX_SPAN, BusinessError, parse_query
from emulators.wdt.timeline import SHANGHAI, Clock, OrderStore
from emulators.wdt.wire import (
    JSON_CONTENT_TYPE,
    XML_CONTENT_TYPE,
    merge_params,
    parse_timestamp,
    to_json,
    to_xml,
    verify_signature,
)

GATEWAY_PATHS = ("/router/qm", "/router/qmtest")
METHOD = "wdt.stockout.order.query.trade"
METHOD_PREFIX = "hu3cgwt0tc."
VERSION = "2.0"
PRIVACY_MODES = ("masked", "absent")
PRIVACY_FIELDS = (
    "receiver_name", "receiver_address", "receiver_mobile", "receiver_telno", "receiver_phone",
    "receiver_email", "nick_name", "customer_name", "buyer_nick", "id_card", "buyer_alipay_no", "alipay_id",
)
LINE_BATCH_FIELDS = ("batch_no", "product_date", "expire_date")
TAOBAO_PLATFORM = 1

DEFAULT_APP_KEY = "12345678"
DEFAULT_APP_SECRET = "secret"
DEFAULT_TARGET_APP_KEY = "21363512"
DEFAULT_SID = "test2"

_VERSION_RE = re.compile(r"^\d+(\.\d+)*$")
_REQUEST_ID_CHARS = string.digits + string.ascii_lowercase
_request_ids = random.SystemRandom()


class GatewayError(Exception):
    """A failure the Qimen gateway itself answers (TOP platform code, no `errorcode`)."""

    def __init__(self, code: int, message: str, sub_code: str, sub_message: str) -> None:
        super().__init__(message)
        self.code, self.message, self.sub_code, self.sub_message = code, message, sub_code, sub_message


@dataclass(frozen=True)
class GatewayConfig:
    app_key: str = DEFAULT_APP_KEY
    app_secret: str = DEFAULT_APP_SECRET
    target_app_key: str = DEFAULT_TARGET_APP_KEY
    sid: str = DEFAULT_SID
    total_count_every_page: bool = False
    throttle_per_minute: int = 0  # 0 = unlimited
    max_span: dt.timedelta = MAX_SPAN
    timestamp_tolerance: dt.timedelta = dt.timedelta(seconds=600)
    top_error_shape: bool = False
    batch_fields: bool = True
    privacy: str = "masked"
    clock: Callable[[], float] = time.time


def _new_request_id() -> str:
    return "".join(_request_ids.choice(_REQUEST_ID_CHARS) for _ in range(13))


def response_format(params: Mapping[str, str]) -> str:
    """"json" or "xml": what the answer is written in (an invalid format answers in XML)."""
    return "json" if params.get("format", "").lower() == "json" else "xml"


class WdtGateway:
    """HTTP-free core: merged parameters in, the envelope (a dict) out."""

    def __init__(self, config: GatewayConfig, dataset: Dataset, store: OrderStore) -> None:
        self.config = config
        self.dataset = dataset
        self.store = store
        self.throttle = Throttle(config.throttle_per_minute, config.clock)
        self._methods: dict[str, Callable[[Mapping[str, str]], dict[str, Any]]] = {
            METHOD: self._stockout_query_trade,
        }

    def handle(self, params: Mapping[str, str]) -> dict[str, Any]:
        request_id = _new_request_id()
        try:
            method = self._check_gateway(params)
            self._check_seller(params)
            body = self._methods[method](params)
        except GatewayError as e:
            return self.gateway_failure(e, request_id)
        except BusinessError as e:
            return {"response": {"flag": "failure", "errorcode": e.code, "code": e.code,
                                 "message": e.message, "sub_code": e.sub_code,
                                 "sub_message": e.message, "request_id": request_id}}
        return {"response": {"flag": "success", "code": 0, "errorcode": 0, "message": "", **body,
                             "request_id": request_id}}

    def gateway_failure(self, e: GatewayError, request_id: str) -> dict[str, Any]:
        if self.config.top_error_shape:
            return {"error_response": {"code": e.code, "msg": e.message, "sub_code": e.sub_code,
                                       "sub_msg": e.sub_message, "request_id": request_id}}
        return {"response": {"flag": "failure", "code": e.code, "message": e.message,
                             "sub_code": e.sub_code, "sub_message": e.sub_message, "request_id": request_id}}

    def _check_gateway(self, params: Mapping[str, str]) -> str:
        """Qimen's own checks; returns the normalised method name."""
        cfg = self.config
        app_key = params.get("app_key", "")
        if not app_key:
            raise GatewayError(28, "Missing App Key", "isv.missing-parameter:app_key", "缺少app_key")
        if app_key != cfg.app_key:
            raise GatewayError(29, "Invalid App Key", "isv.appkey-not-exists", f"app_key不存在: {app_key}")
        self._check_timestamp(params.get("timestamp", ""))
        self._check_sign(params)
        self._check_version_and_format(params)
        target = params.get("target_app_key", "")
        if not target:
            raise GatewayError(40, "Missing Required Arguments", "isv.missing-parameter:target_app_key",
                               "缺少target_app_key")
        if target != cfg.target_app_key:
            raise GatewayError(41, "Invalid Arguments", "isv.invalid-parameter:target_app_key",
                               f"target_app_key无效: {target}")
        method = params.get("method", "")
        if not method:
            raise GatewayError(21, "Missing Method", "isv.missing-parameter:method", "缺少method")
        name = method.removeprefix(METHOD_PREFIX)
        if name not in self._methods:
            raise GatewayError(22, "Invalid Method", "isv.method-not-exists", f"不存在的方法名: {method}")
        return name

    def _check_timestamp(self, value: str) -> None:
        if not value:
            raise GatewayError(30, "Missing Timestamp", "isv.missing-parameter:timestamp", "缺少timestamp")
        try:
            sent = parse_timestamp(value)
        except (ValueError, OverflowError, OSError):
            raise GatewayError(31, "Invalid Timestamp", "isv.invalid-timestamp",
                               f"timestamp格式错误: {value}") from None
        now = dt.datetime.fromtimestamp(self.config.clock(), tz=SHANGHAI)
        tolerance = self.config.timestamp_tolerance
        if abs(now - sent) > tolerance:
            raise GatewayError(31, "Invalid Timestamp", "isv.invalid-timestamp",
                               f"timestamp与服务器时间相差超过{int(tolerance.total_seconds())}秒")

    def _check_sign(self, params: Mapping[str, str]) -> None:
        if not params.get("sign"):
            raise GatewayError(24, "Missing Signature", "isv.missing-parameter:sign", "缺少sign")
        try:
            valid = verify_signature(params, self.config.app_secret)
        except ValueError:
            raise GatewayError(25, "Invalid signature", "isv.invalid-signature",
                               f"不支持的sign_method: {params.get('sign_method')}") from None
        if not valid:
            raise GatewayError(25, "Invalid signature", "isv.invalid-signature", "签名错误")

    @staticmethod
    def _check_version_and_format(params: Mapping[str, str]) -> None:
        version = params.get("v", "")
        if not version:
            raise GatewayError(32, "Missing Version", "isv.missing-parameter:v", "缺少版本参数v")
        if not _VERSION_RE.match(version):
            raise GatewayError(33, "Invalid Version", "isv.invalid-parameter:v", f"非法的版本参数: {version}")
        if version != VERSION:
            raise GatewayError(34, "Unsupported Version", "isv.unsupported-version", f"不支持的版本号: {version}")
        fmt = params.get("format", "")
        if fmt and fmt.lower() not in ("json", "xml"):
            raise GatewayError(23, "Invalid Format", "isv.invalid-format", f"不支持的格式: {fmt}")

    def _check_seller(self, params: Mapping[str, str]) -> None:
        """WDT's checks: the seller account, then its call quota."""
        sid = params.get("sid", "")
        if sid != self.config.sid:
            raise BusinessError(100, f"卖家账号无效或未授权: {sid}" if sid else "缺少参数sid", "isv.invalid-sid")
        if not self.throttle.allow(params["app_key"]):
            raise BusinessError(1012, "系统调用频繁,请稍后再试", "isv.call-limited")

    def _stockout_query_trade(self, params: Mapping[str, str]) -> dict[str, Any]:
        q = parse_query(params, self.config.max_span)
        matches = self.store.read(q.matches)
        offset = q.page_no * q.page_size
        body: dict[str, Any] = {}
        if q.page_no == 0 or self.config.total_count_every_page:
            body["total_count"] = len(matches)
        body["stockout_list"] = [self._shape(o) for o in matches[offset: offset + q.page_size]]
        return body

    def _shape(self, order: dict[str, Any]) -> dict[str, Any]:
        """The order as this gateway's switches hand it out (the stored order is never changed)."""
        hide_privacy = self.config.privacy == "absent" and order["platform_id"] == TAOBAO_PLATFORM
        if self.config.batch_fields and not hide_privacy:
            return order
        shaped = {k: v for k, v in order.items() if not (hide_privacy and k in PRIVACY_FIELDS)}
        if not self.config.batch_fields:
            shaped["details_list"] = [
                {k: v for k, v in line.items() if k not in LINE_BATCH_FIELDS} for line in order["details_list"]
            ]
        return shaped


# -- HTTP ----------------------------------------------------------------------------------------------
class WdtEmulatorServer(ThreadingHTTPServer):
    """Threaded HTTP server carrying the gateway; `url` is the `/router/qm` address to call.

    `emulator` is the order store: `now()`, `set_now(t, running=False)`, `ground_truth(start, end)`,
    `orders(when=None)` (see :mod:`emulators.wdt.timeline`).
    """

    daemon_threads = True

    def __init__(self, host: str, port: int, gateway: WdtGateway, faults: Faults, *,
                 log_requests: bool = False) -> None:
        self.gateway = gateway
        self.emulator = gateway.store
        self.faults = faults
        self.log_requests = log_requests
        super().__init__((host, port), _Handler)
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{self.server_address[1]}{GATEWAY_PATHS[0]}"


class _Handler(BaseHTTPRequestHandler):
    server: WdtEmulatorServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._serve(b"")

    def do_POST(self) -> None:  # noqa: N802
        self._serve(self._read_body())

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline().strip():  # trailers
                pass
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _serve(self, body: bytes) -> None:
        parts = urlsplit(self.path)
        path = parts.path.rstrip("/") or "/"
        if path not in GATEWAY_PATHS:
            self._send(404, JSON_CONTENT_TYPE, to_json({"error_response": {"code": 404, "msg": f"no such path: {parts.path}"}}))
            return
        faults = self.server.faults
        faults.wait()
        if (status := faults.server_error()) is not None:
            self._send(status, *server_error_body(status))
            return
        params = merge_params(parts.query, self.headers.get("Content-Type", ""), body)
        gateway = self.server.gateway
        try:
            payload = gateway.handle(params)
        except Exception as e:  # a bug must still answer in the gateway's shape
            payload = gateway.gateway_failure(
                GatewayError(15, "Remote service error", "isp.unknown-error", repr(e)), _new_request_id())
        if response_format(params) == "json":
            self._send(200, JSON_CONTENT_TYPE, to_json(payload))
        else:
            self._send(200, XML_CONTENT_TYPE, to_xml(payload))

    def _send(self, status: int, content_type: str, data: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (signature of the base class)
        if self.server.log_requests:
            sys.stderr.write(f"{self.address_string()} - {format % args}\n")


def default_start(days: int) -> dt.date:
    """The first day such that the data ends yesterday (Asia/Shanghai)."""
    return dt.datetime.now(SHANGHAI).date() - dt.timedelta(days=days)


def _business_clock(now: Callable[[], dt.datetime] | dt.datetime | None, clock: Callable[[], float]) -> Clock:
    def wall() -> dt.datetime:
        return dt.datetime.fromtimestamp(clock(), tz=SHANGHAI)

    if now is None or isinstance(now, dt.datetime):
        business = Clock(wall)
        if now is not None:
            business.set_now(now, running=True)
        return business
    return Clock(now)


def _rate(name: str, value: float) -> float:
    if not 0 <= value <= 1:
        raise ValueError(f"{name} must be within 0..1")
    return value


def make_server(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    app_key: str = DEFAULT_APP_KEY,
    app_secret: str = DEFAULT_APP_SECRET,
    target_app_key: str = DEFAULT_TARGET_APP_KEY,
    sid: str = DEFAULT_SID,
    seed: int = 1,
    orders: int = 200,
    start: dt.date | None = None,
    days: int = 7,
    total_count_every_page: bool = False,
    now: Callable[[], dt.datetime] | dt.datetime | None = None,
    latency_ms: int = 0,
    error_rate: float = 0.0,
    throttle_per_minute: int = 0,
    max_span_minutes: int = 43200,
    timestamp_tolerance_s: int = 600,
    churn_rate: float = 0.0,
    late_rate: float = 1.0,
    renumber_rate: float = 0.0,
    top_error_shape: bool = False,
    batch_fields: bool = True,
    privacy: str = "masked",
    log_requests: bool = False,
    clock: Callable[[], float] = time.time,
) -> WdtEmulatorServer:
    """A bound, not yet serving, emulator; call `serve_forever()` (e.g. in a thread)."""
    if privacy not in PRIVACY_MODES:
        raise ValueError(f"privacy must be one of {PRIVACY_MODES}")
    if max_span_minutes < 1 or timestamp_tolerance_s < 0 or throttle_per_minute < 0:
        raise ValueError("max_span_minutes >= 1, timestamp_tolerance_s >= 0, throttle_per_minute >= 0")
    dataset = build_dataset(seed, orders, start or default_start(days), days)
    store = OrderStore(
        dataset.orders,
        _business_clock(now, clock),
        seed=seed,
        late_rate=_rate("late_rate", late_rate),
        renumber_rate=_rate("renumber_rate", renumber_rate),
        churn_rate=_rate("churn_rate", churn_rate),
    )
    config = GatewayConfig(
        app_key=app_key,
        app_secret=app_secret,
        target_app_key=target_app_key,
        sid=sid,
        total_count_every_page=total_count_every_page,
        throttle_per_minute=throttle_per_minute,
        max_span=dt.timedelta(minutes=max_span_minutes),
        timestamp_tolerance=dt.timedelta(seconds=timestamp_tolerance_s),
        top_error_shape=top_error_shape,
        batch_fields=batch_fields,
        privacy=privacy,
        clock=clock,
    )
    faults = Faults(seed=seed, latency_ms=latency_ms, error_rate=error_rate)
    return WdtEmulatorServer(host, port, WdtGateway(config, dataset, store), faults, log_requests=log_requests)
