"""Emulator of the 旺店通 企业版 Qimen gateway for ``wdt.stockout.order.query.trade`` and the stock-in
queries ``wdt.stockin.order.query.refund`` / ``wdt.stockin.order.query.purchase``
(:mod:`emulators.wdt.stockin`), and of WDT's direct openapi2 endpoint on the same port
(:mod:`emulators.wdt.openapi2`).

Follows /work/shared/protocols/wdt-qimen-stockout.md (and wdt-qimen-stockin.md for the stock-ins).
Points the specs mark [INF]/[UNCONFIRMED] are decided here (gateway), in :mod:`emulators.wdt.wire`
(parameters, signature, XML), :mod:`.openapi2` (the direct endpoint), :mod:`.query` (query semantics and
parameter errors), :mod:`.timeline` (clock, order histories, renumbering, churn), :mod:`.stockin`
(the stock-in queries; their data: :mod:`emulators.stockins`) and :mod:`.faults` (latency, 5xx, quota).
Every method passes the same gateway checks, seller check, quota and faults, and answers in the same
envelopes.

Transport (§2.1)
- ``/router/qm`` and ``/router/qmtest`` (a trailing slash is tolerated), GET and POST; ``/openapi2/<file>``
  is the direct endpoint (:mod:`.openapi2`); any other path answers HTTP 404 with a small JSON
  ``error_response`` (not the router's business).
- Parameters: the URL query and a form (or multipart) body; a JSON body is ignored (:mod:`.wire`).
- HTTP 200 for every gateway or business error. ``format=json`` answers JSON,
  ``application/json;charset=UTF-8``; ``format=xml`` or no ``format`` answers XML (TOP's default, spec
  §2.2); any other value, ``JSON`` and ``XML`` included (TOP's values are lowercase and case-sensitive),
  answers gateway error 23 in XML.

Gateway checks (§2.2-§2.4), in this order; each failure answers the observed Qimen shape
``{"response":{"flag":"failure","code":N,"message":...,"sub_code":...,"sub_message":...,"request_id":...}}``
(no ``errorcode`` key, as in the observed sample), or with ``top_error_shape=True`` (CLI
``--top-error-shape``) TOP's ``{"error_response":{"code":N,"msg":...,"sub_code":...,"sub_msg":...,
"request_id":...}}``; codes are TOP's generic platform codes:
  app_key missing 28 "Missing App Key" / unknown 29 "Invalid App Key";
  timestamp missing 30 "Missing Timestamp" / malformed (neither ``yyyy-MM-dd HH:mm:ss`` GMT+8 nor epoch
  milliseconds; epoch seconds are malformed here) or more than ``timestamp_tolerance_s`` (default
  600 s, spec §2.4) off the wall clock 31 "Invalid Timestamp";
  sign missing 24 "Missing Signature"; sign_method missing 40 "Missing Required Arguments"
  (``isv.missing-parameter:sign_method``: it is required, §2.2, and TOP has no default to fall back
  on); a sign_method other than ``md5``/``hmac``/``hmac-sha256`` (case-sensitive: ``MD5`` is refused)
  or a wrong signature 25 "Invalid signature";
  v missing 32 "Missing Version" / not a version number 33 "Invalid Version" / a version other than
  ``2.0`` 34 "Unsupported Version" (spec §2.2: v is required and is 2.0);
  format other than json/xml 23 "Invalid Format";
  target_app_key missing 40 "Missing Required Arguments" / wrong 41 "Invalid Arguments";
  method missing 21 "Missing Method" / unknown 22 "Invalid Method" (a leading ``hu3cgwt0tc.`` is stripped;
  the customer-specific ``wdt.ext.stockin.*`` variants are unknown, stock-in spec §1).
  ``session`` and ``partner_id`` are only signed. A bug in the emulator answers 15 "Remote service
  error" in the same shape.
  The default shape is the Qimen one because it is the only sample taken from ``/router/qm`` itself
  (spec §5.2, S18); ``error_response`` is what TOP's SDKs parse on TOP's REST router, never observed on
  the Qimen router, so it stays the switchable other side.

Business (WDT) errors: ``{"response":{"flag":"failure","errorcode":N,"code":N,"message":...,
"sub_code":...,"sub_message":...,"request_id":...}}`` (they come from WDT, so ``--top-error-shape`` does
not change them), in this order: 100 invalid or missing ``sid`` (``isv.invalid-sid``), 1012 from the
quota of :mod:`.faults`, then the parameter errors of :mod:`.query` (100, 2900).

Success: ``{"response":{"flag":"success","code":0,"errorcode":0,"message":"","total_count":N,
"stockout_list":[...],"request_id":...}}`` (``stockin_list`` for the stock-in methods); ``total_count``
(orders, not lines) is on page 0 only, on every page with ``total_count_every_page=True`` (CLI
``--total-count-every-page``), for every method.

Order fields that the spec cannot confirm for 企业版 are switches; the default is the side a client
cannot wrongly come to rely on (a field that may not exist is absent):
- ``batch_fields`` (default False, CLI ``--batch-fields/--no-batch-fields``): the lines' ``batch_no``,
  ``product_date``, ``expire_date`` (Y-edition names, spec §5.4) are absent, or present. They are
  [UNCONFIRMED] for 企业版 (only the Y edition documents them; 企业奇门 has a separate
  ``wdt.stockout.batch.detail`` for batches), so by default they are left out. The order-level
  ``batch_no`` (print batch, spec §5.3) stays either way. Applies to both transports.
- ``privacy`` (``absent`` default, or ``masked``; CLI ``--privacy``): Qimen does not hand out 淘系 buyers'
  personal data: the fields are "not provided" [DOC S4], so by default on 淘系 orders (``platform_id``
  1) the keys are left out: ``receiver_name``, ``receiver_address``, ``receiver_mobile``,
  ``receiver_telno`` (the spec's receiver_phone), ``nick_name`` and ``customer_name`` (both carry the
  buyer nick), and ``buyer_nick``, ``receiver_phone``, ``receiver_email``, ``id_card``,
  ``buyer_alipay_no``, ``alipay_id`` should a data set carry them. ``masked``: 淘系 orders carry them
  masked ("张**", "138****5678", "****"), the reading of the spec's §1 table ("privacy fields masked"),
  which its source S4 does not bear out. Other platforms keep plain values either way (and the openapi2
  endpoint returns no 淘系 order at all).

Clocks: ``clock`` (epoch seconds, default ``time.time``) is the gateway's wall clock: it checks
``timestamp`` (on both transports) and runs the quota's minute, so it must stay near the caller's real
time. ``now`` is the emulator's business clock (see :mod:`.timeline`), by default the same wall clock;
it may be a callable returning an aware datetime, or an aware datetime at which the clock starts and
then runs on (CLI ``--now``); ``server.emulator.set_now(t)`` freezes it.
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
from emulators.stockins import PURCHASE, REFUND, build_stockins
from emulators.wdt import openapi2
from emulators.wdt.faults import Faults, Throttle, server_error_body
from emulators.wdt.query import MAX_SPAN, BusinessError, parse_query
from emulators.wdt.stockin import (
    METHOD_PURCHASE,
    METHOD_REFUND,
    STATUS_TYPES,
    StockinStore,
    parse_stockin_query,
)
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
    "receiver_name",
    "receiver_address",
    "receiver_mobile",
    "receiver_telno",
    "receiver_phone",
    "receiver_email",
    "nick_name",
    "customer_name",
    "buyer_nick",
    "id_card",
    "buyer_alipay_no",
    "alipay_id",
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
    batch_fields: bool = False
    privacy: str = "absent"
    stockin_status_type: str = "mixed"
    openapi2_appkey: str = openapi2.DEFAULT_APPKEY
    openapi2_appsecret: str = openapi2.DEFAULT_APPSECRET
    openapi2_timestamp_tolerance: dt.timedelta = dt.timedelta(seconds=openapi2.DEFAULT_TIMESTAMP_TOLERANCE_S)
    clock: Callable[[], float] = time.time


def _new_request_id() -> str:
    return "".join(_request_ids.choice(_REQUEST_ID_CHARS) for _ in range(13))


def response_format(params: Mapping[str, str]) -> str:
    """ "json" or "xml": what the answer is written in (an invalid format, ``JSON`` too, answers in XML)."""
    return "json" if params.get("format", "") == "json" else "xml"


# A method handler: business parameters and the platforms the entry point does not return, in; the
# body's business keys (e.g. total_count, stockout_list) out; raises BusinessError.
Handler = Callable[[Mapping[str, str], frozenset[int]], dict[str, Any]]


class WdtGateway:
    """HTTP-free core: merged parameters in, the envelope (a dict) out. ``openapi2`` is the direct
    endpoint's core, dispatching to the same method handlers."""

    def __init__(self, config: GatewayConfig, dataset: Dataset, store: OrderStore, stockins: StockinStore) -> None:
        self.config = config
        self.dataset = dataset
        self.store = store
        self.stockins = stockins
        self.throttle = Throttle(config.throttle_per_minute, config.clock)
        # Qimen method -> handler; openapi2.ROUTES maps the direct endpoint's files onto these names.
        self._methods: dict[str, Handler] = {
            METHOD: self._stockout_query_trade,
            METHOD_REFUND: lambda params, hidden: self._stockin_query(REFUND, params, hidden),
            METHOD_PURCHASE: lambda params, hidden: self._stockin_query(PURCHASE, params, hidden),
        }
        # Handlers only the direct endpoint routes to (no Qimen method exists for them).
        self._direct_only: dict[str, Handler] = {
            openapi2.ARCHIVE_REFUND: lambda params, hidden: self._stockin_query(REFUND, params, hidden, archive=True),
        }
        missing = set(openapi2.ROUTES.values()) - set(self._methods) - set(self._direct_only)
        assert not missing, f"openapi2 routes to unknown methods: {missing}"
        self.openapi2 = openapi2.Openapi2Endpoint(self)

    def dispatch(self, method: str, params: Mapping[str, str], hidden_platforms: frozenset[int]) -> dict[str, Any]:
        """Run a method's handler (both transports come here); raises BusinessError."""
        handler = self._methods.get(method) or self._direct_only[method]
        return handler(params, hidden_platforms)

    def handle(self, params: Mapping[str, str]) -> dict[str, Any]:
        request_id = _new_request_id()
        try:
            method = self._check_gateway(params)
            self._check_seller(params)
            body = self.dispatch(method, params, frozenset())
        except GatewayError as e:
            return self.gateway_failure(e, request_id)
        except BusinessError as e:
            return {
                "response": {
                    "flag": "failure",
                    "errorcode": e.code,
                    "code": e.code,
                    "message": e.message,
                    "sub_code": e.sub_code,
                    "sub_message": e.message,
                    "request_id": request_id,
                }
            }
        return {
            "response": {"flag": "success", "code": 0, "errorcode": 0, "message": "", **body, "request_id": request_id}
        }

    def gateway_failure(self, e: GatewayError, request_id: str) -> dict[str, Any]:
        if self.config.top_error_shape:
            return {
                "error_response": {
                    "code": e.code,
                    "msg": e.message,
                    "sub_code": e.sub_code,
                    "sub_msg": e.sub_message,
                    "request_id": request_id,
                }
            }
        return {
            "response": {
                "flag": "failure",
                "code": e.code,
                "message": e.message,
                "sub_code": e.sub_code,
                "sub_message": e.sub_message,
                "request_id": request_id,
            }
        }

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
            raise GatewayError(
                40, "Missing Required Arguments", "isv.missing-parameter:target_app_key", "缺少target_app_key"
            )
        if target != cfg.target_app_key:
            raise GatewayError(
                41, "Invalid Arguments", "isv.invalid-parameter:target_app_key", f"target_app_key无效: {target}"
            )
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
            raise GatewayError(
                31, "Invalid Timestamp", "isv.invalid-timestamp", f"timestamp格式错误: {value}"
            ) from None
        now = dt.datetime.fromtimestamp(self.config.clock(), tz=SHANGHAI)
        tolerance = self.config.timestamp_tolerance
        if abs(now - sent) > tolerance:
            raise GatewayError(
                31,
                "Invalid Timestamp",
                "isv.invalid-timestamp",
                f"timestamp与服务器时间相差超过{int(tolerance.total_seconds())}秒",
            )

    def _check_sign(self, params: Mapping[str, str]) -> None:
        if not params.get("sign"):
            raise GatewayError(24, "Missing Signature", "isv.missing-parameter:sign", "缺少sign")
        if not params.get("sign_method"):
            raise GatewayError(40, "Missing Required Arguments", "isv.missing-parameter:sign_method", "缺少sign_method")
        try:
            valid = verify_signature(params, self.config.app_secret)
        except ValueError:
            raise GatewayError(
                25, "Invalid signature", "isv.invalid-signature", f"不支持的sign_method: {params.get('sign_method')}"
            ) from None
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
        if fmt and fmt not in ("json", "xml"):
            raise GatewayError(23, "Invalid Format", "isv.invalid-format", f"不支持的格式: {fmt}")

    def _check_seller(self, params: Mapping[str, str]) -> None:
        """WDT's checks: the seller account, then its call quota."""
        sid = params.get("sid", "")
        if sid != self.config.sid:
            raise BusinessError(100, f"卖家账号无效或未授权: {sid}" if sid else "缺少参数sid", "isv.invalid-sid")
        if not self.throttle.allow(params["app_key"]):
            raise BusinessError(1012, "系统调用频繁,请稍后再试", "isv.call-limited")

    def _stockout_query_trade(self, params: Mapping[str, str], hidden_platforms: frozenset[int]) -> dict[str, Any]:
        q = parse_query(params, self.config.max_span)

        def shown(
            order: dict[str, Any], consigned: dt.datetime | None, modified: dt.datetime, tids: frozenset[str]
        ) -> bool:
            return order["platform_id"] not in hidden_platforms and q.matches(order, consigned, modified, tids)

        # The hidden platforms are part of the query, so that churn too only touches what is shown.
        matches = self.store.read(shown if hidden_platforms else q.matches)
        offset = q.page_no * q.page_size
        body: dict[str, Any] = {}
        if q.page_no == 0 or self.config.total_count_every_page:
            body["total_count"] = len(matches)
        body["stockout_list"] = [self._shape(o) for o in matches[offset : offset + q.page_size]]
        return body

    def _stockin_query(
        self, kind: str, params: Mapping[str, str], hidden_platforms: frozenset[int], *, archive: bool = False
    ) -> dict[str, Any]:
        q = parse_stockin_query(kind, params, self.config.max_span)

        def shown(stockin: dict[str, Any], modified: dt.datetime) -> bool:
            return stockin.get("platform_id") not in hidden_platforms and q.matches(stockin, modified)

        matches = [] if archive else self.stockins.read(kind, shown)
        offset = q.page_no * q.page_size
        body: dict[str, Any] = {}
        if q.page_no == 0 or self.config.total_count_every_page:
            body["total_count"] = len(matches)
        body["stockin_list"] = [self._shape_stockin(kind, s) for s in matches[offset : offset + q.page_size]]
        return body

    def _shape_stockin(self, kind: str, stockin: dict[str, Any]) -> dict[str, Any]:
        """The stock-in as the switches hand it out (privacy of 淘系 refunds, the status's JSON type)."""
        shaped = dict(stockin)
        if self.config.privacy == "absent" and stockin.get("platform_id") == TAOBAO_PLATFORM:
            shaped = {k: v for k, v in shaped.items() if k not in PRIVACY_FIELDS}
        status_type = self.config.stockin_status_type
        if status_type == "int" or (status_type == "mixed" and kind == REFUND):
            shaped["status"] = int(stockin["status"])
        else:
            shaped["status"] = str(stockin["status"])
        return shaped

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
    """Threaded HTTP server carrying the gateway; `url` is the `/router/qm` address to call,
    `openapi2_url` the direct endpoint's base (``http://HOST:PORT/openapi2/``; append a file of
    ``openapi2.ROUTES``, e.g. ``stockout_order_query_trade.php``).

    `emulator` is the order store: `now()`, `set_now(t, running=False)`, `ground_truth(start, end)`,
    `orders(when=None)` (see :mod:`emulators.wdt.timeline`). `stockins` is the stock-in store on the same
    clock: `refunds(when=None)`, `purchases(when=None)` (see :mod:`emulators.wdt.stockin`); its `data` is
    the final ground truth (:func:`emulators.stockins.build_stockins`).
    """

    daemon_threads = True

    def __init__(
        self, host: str, port: int, gateway: WdtGateway, faults: Faults, *, log_requests: bool = False
    ) -> None:
        self.gateway = gateway
        self.emulator = gateway.store
        self.stockins = gateway.stockins
        self.faults = faults
        self.log_requests = log_requests
        super().__init__((host, port), _Handler)
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{self.server_address[1]}{GATEWAY_PATHS[0]}"
        self.openapi2_url = f"http://{shown}:{self.server_address[1]}{openapi2.PREFIX}"


class _Handler(BaseHTTPRequestHandler):
    server: WdtEmulatorServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._serve(b"")

    def do_POST(self) -> None:
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
        if parts.path.startswith(openapi2.PREFIX):
            self._serve_openapi2(parts.path.removeprefix(openapi2.PREFIX), parts.query, body)
            return
        path = parts.path.rstrip("/") or "/"
        if path not in GATEWAY_PATHS:
            self._send(
                404, JSON_CONTENT_TYPE, to_json({"error_response": {"code": 404, "msg": f"no such path: {parts.path}"}})
            )
            return
        if not self._pass_faults():
            return
        params = merge_params(parts.query, self.headers.get("Content-Type", ""), body)
        gateway = self.server.gateway
        try:
            payload = gateway.handle(params)
        except Exception as e:  # a bug must still answer in the gateway's shape
            payload = gateway.gateway_failure(
                GatewayError(15, "Remote service error", "isp.unknown-error", repr(e)), _new_request_id()
            )
        if response_format(params) == "json":
            self._send(200, JSON_CONTENT_TYPE, to_json(payload))
        else:
            self._send(200, XML_CONTENT_TYPE, to_xml(payload))

    def _pass_faults(self) -> bool:
        """The front end's latency and 5xx draw, shared by both transports; False when it answered."""
        faults = self.server.faults
        faults.wait()
        if (status := faults.server_error()) is not None:
            self._send(status, *server_error_body(status))
            return False
        return True

    def _serve_openapi2(self, file: str, query: str, body: bytes) -> None:
        if file not in openapi2.ROUTES:
            self._send(404, "text/html", b"<html><body><h1>404 Not Found</h1></body></html>")
            return
        if self.command != "POST":
            self._send(405, "text/plain;charset=UTF-8", b"405 Method Not Allowed", {"Allow": "POST"})
            return
        if not self._pass_faults():
            return
        params = openapi2.request_params(query, self.headers.get("Content-Type", ""), body)
        try:
            payload = self.server.gateway.openapi2.handle(file, params)
        except Exception:  # a bug: what a PHP fatal error gives
            self._send(500, *server_error_body(500))
            return
        self._send(200, JSON_CONTENT_TYPE, to_json(payload))

    def _send(self, status: int, content_type: str, data: bytes, headers: Mapping[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
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
    batch_fields: bool = False,
    privacy: str = "absent",
    stockin_status_type: str = "mixed",
    openapi2_appkey: str = openapi2.DEFAULT_APPKEY,
    openapi2_appsecret: str = openapi2.DEFAULT_APPSECRET,
    openapi2_timestamp_tolerance_s: int = openapi2.DEFAULT_TIMESTAMP_TOLERANCE_S,
    log_requests: bool = False,
    clock: Callable[[], float] = time.time,
) -> WdtEmulatorServer:
    """A bound, not yet serving, emulator; call `serve_forever()` (e.g. in a thread).

    ``app_key``/``app_secret``/``target_app_key`` are the Qimen identity; ``openapi2_appkey``/
    ``openapi2_appsecret`` the direct endpoint's WDT ``appkey``/appsecret; ``sid`` is shared by both.
    """
    if privacy not in PRIVACY_MODES:
        raise ValueError(f"privacy must be one of {PRIVACY_MODES}")
    if stockin_status_type not in STATUS_TYPES:
        raise ValueError(f"stockin_status_type must be one of {STATUS_TYPES}")
    if (
        max_span_minutes < 1
        or timestamp_tolerance_s < 0
        or throttle_per_minute < 0
        or openapi2_timestamp_tolerance_s < 0
    ):
        raise ValueError(
            "max_span_minutes >= 1, timestamp_tolerance_s >= 0, throttle_per_minute >= 0, "
            "openapi2_timestamp_tolerance_s >= 0"
        )
    dataset = build_dataset(seed, orders, start or default_start(days), days)
    business_clock = _business_clock(now, clock)
    store = OrderStore(
        dataset.orders,
        business_clock,
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
        stockin_status_type=stockin_status_type,
        openapi2_appkey=openapi2_appkey,
        openapi2_appsecret=openapi2_appsecret,
        openapi2_timestamp_tolerance=dt.timedelta(seconds=openapi2_timestamp_tolerance_s),
        clock=clock,
    )
    faults = Faults(seed=seed, latency_ms=latency_ms, error_rate=error_rate)
    stockins = StockinStore(build_stockins(dataset), business_clock)
    gateway = WdtGateway(config, dataset, store, stockins)
    return WdtEmulatorServer(host, port, gateway, faults, log_requests=log_requests)
