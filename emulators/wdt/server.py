"""Emulator of the 旺店通 企业版 Qimen gateway for ``wdt.stockout.order.query.trade``.

Follows /work/shared/protocols/wdt-qimen-stockout.md. Points the spec marks [INF]/[UNCONFIRMED] are
decided here as follows.

Transport (§2.1)
- ``/router/qm`` and ``/router/qmtest`` (a trailing slash is tolerated), GET and POST; any other path
  answers HTTP 404 with a gateway error body.
- Parameters are the URL query merged with the body, the body winning on conflict. Bodies are read as
  ``application/x-www-form-urlencoded`` whatever the Content-Type says, except ``multipart/form-data``
  (parsed as such) and JSON (a JSON object is used only when the query carries no ``sign``, i.e. it is
  ignored as a copy of query parameters, as one real client sends). Repeated keys: the last one wins.
- Responses are always JSON (``format`` is not checked), ``application/json;charset=UTF-8``, HTTP 200
  for every gateway or business error.

Gateway checks (§2.2-§2.4), in this order; each failure answers the observed Qimen shape
``{"response":{"flag":"failure","code":N,"message":...,"sub_code":...,"sub_message":...,"request_id":...}}``
with the generic TOP platform code (no ``errorcode`` key, as in the observed sample):
  app_key missing 28 "Missing App Key" / unknown 29 "Invalid App Key";
  timestamp missing 30 "Missing Timestamp" / malformed or more than 10 minutes off 31 "Invalid Timestamp"
  (accepted forms: "yyyy-MM-dd HH:mm:ss" GMT+8, and all-digit epoch values: milliseconds, or seconds when
  the number is below 10^11);
  sign missing 24 "Missing Signature" / wrong or unsupported sign_method 25 "Invalid signature";
  target_app_key missing 40 "Missing Required Arguments" / wrong 41 "Invalid Arguments";
  method missing 21 "Missing Method" / unknown 22 "Invalid Method" (a leading ``hu3cgwt0tc.`` is stripped).
  ``sign_method`` defaults to md5; ``v``, ``format``, ``session``, ``partner_id`` are only signed.
Signature (§2.3): all merged parameters except ``sign``, sorted byte-wise, ``key+value`` concatenated;
md5 = MD5(secret + s + secret), hmac = HMAC-MD5(secret, s), hmac-sha256 = HMAC-SHA256(secret, s); first
over the non-empty values, then over all values; hex compared case-insensitively.

Business (WDT) errors: ``{"response":{"flag":"failure","errorcode":N,"code":N,"message":...,
"sub_code":...,"sub_message":...,"request_id":...}}``. Codes (the official table is unavailable):
  100  invalid or missing sid, and every invalid parameter (page_size outside 1..100, negative or
       non-integer page_no, non-integer status, is_by_modified not 0/1, malformed datetime, only one end
       of the window, start_time > end_time, span > 30 days); sub_code ``isv.invalid-sid`` /
       ``isv.invalid-parameter:<name>`` / ``isv.time-span-too-long``, message in Chinese says which;
  2900 "时间范围与订单编号不能全部为空" when neither a window nor a document number is given (Y doc);
  1012 "系统调用频繁,请稍后再试" when ``rate_limit_per_minute`` calls per app_key in the last 60 s are
       exceeded (off by default; the code integrators see from WDT, spec §6).

Query semantics (§4)
- Empty parameter values count as absent (several clients send ``src_tid=""`` etc.).
- Window (both ends inclusive, at most exactly 30 days): no status -> consign_time, statuses 95 and 110
  only (the doc's 已发货/已完成, read literally: 105 and 113 need an explicit status); status >= 95 ->
  consign_time and that status; status < 95 -> modified and that status; ``is_by_modified=1`` ->
  modified, with the given status or, without one, every status (cancellations included, so that a
  client can see them). Orders never consigned do not match a consign_time window.
- ``stockout_no``, ``src_order_no`` and ``src_tid`` (matches any of a merged order's ``src_tids`` or a
  line's ``src_tid``) may be given alone; without a window they match whatever the status unless a
  status is given; with a window they narrow it. ``shop_no``/``warehouse_no`` are exact single values.
- Order: ascending ``stockout_id`` (= consign order), stable across calls. ``page_no`` from 0, a page past
  the end is an empty list. ``page_size`` defaults to 40.
- ``total_count`` (orders, not lines) is on page 0 only; ``total_count_every_page=True`` (CLI
  ``--total-count-every-page``) puts it on every page. Success body:
  ``{"response":{"flag":"success","code":0,"errorcode":0,"message":"","total_count":N,
  "stockout_list":[...],"request_id":...}}``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import random
import re
import string
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from emulators.dataset import ZERO_DATETIME, Dataset, build_dataset

GATEWAY_PATHS = ("/router/qm", "/router/qmtest")
METHOD = "wdt.stockout.order.query.trade"
METHOD_PREFIX = "hu3cgwt0tc."
SHANGHAI = dt.timezone(dt.timedelta(hours=8))
DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"
TIMESTAMP_TOLERANCE = dt.timedelta(minutes=10)
MAX_SPAN = dt.timedelta(days=30)
DEFAULT_PAGE_SIZE = 40
MAX_PAGE_SIZE = 100
# Statuses a window without `status` returns: 已发货 and 已完成 (spec §4.1).
DEFAULT_STATUSES = frozenset({95, 110})

DEFAULT_APP_KEY = "12345678"
DEFAULT_APP_SECRET = "secret"
DEFAULT_TARGET_APP_KEY = "21363512"
DEFAULT_SID = "test2"

_DATETIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
_REQUEST_ID_CHARS = string.digits + string.ascii_lowercase
_request_ids = random.SystemRandom()


class GatewayError(Exception):
    """A failure the Qimen gateway itself answers (TOP platform code, no `errorcode`)."""

    def __init__(self, code: int, message: str, sub_code: str, sub_message: str) -> None:
        super().__init__(message)
        self.code, self.message, self.sub_code, self.sub_message = code, message, sub_code, sub_message


class BusinessError(Exception):
    """A failure WDT answers through Qimen (`errorcode` == `code`)."""

    def __init__(self, code: int, message: str, sub_code: str) -> None:
        super().__init__(message)
        self.code, self.message, self.sub_code = code, message, sub_code


def _invalid(name: str, message: str) -> BusinessError:
    return BusinessError(100, message, f"isv.invalid-parameter:{name}")


# -- signature ---------------------------------------------------------------------------------------
def sign_string(params: Mapping[str, str], *, include_empty: bool = False) -> str:
    """Sorted `key+value` concatenation of everything but `sign` (spec §2.3 steps 1-4)."""
    keys = sorted(
        (k for k, v in params.items() if k and k != "sign" and (include_empty or v != "")),
        key=lambda k: k.encode("utf-8"),
    )
    return "".join(k + params[k] for k in keys)


def qimen_sign(
    params: Mapping[str, str], secret: str, sign_method: str = "md5", *, include_empty: bool = False
) -> str:
    """Upper-case hex Qimen signature; raises ValueError for an unknown sign_method."""
    data = sign_string(params, include_empty=include_empty).encode("utf-8")
    key = secret.encode("utf-8")
    method = sign_method.lower()
    if method == "md5":
        return hashlib.md5(key + data + key).hexdigest().upper()
    if method == "hmac":
        return hmac.new(key, data, hashlib.md5).hexdigest().upper()
    if method == "hmac-sha256":
        return hmac.new(key, data, hashlib.sha256).hexdigest().upper()
    raise ValueError(f"unsupported sign_method {sign_method!r}")


def verify_signature(params: Mapping[str, str], secret: str) -> bool:
    """True when `sign` matches, computed without empty values or, failing that, with them."""
    given = params.get("sign", "").upper()
    method = params.get("sign_method") or "md5"
    for include_empty in (False, True):
        expected = qimen_sign(params, secret, method, include_empty=include_empty)
        if given and hmac.compare_digest(given, expected):
            return True
    return False


def parse_timestamp(value: str) -> dt.datetime:
    """Gateway `timestamp` as an aware datetime: GMT+8 wall clock, or epoch millis/seconds."""
    if value.isdigit():
        number = int(value)
        seconds = number / 1000 if number >= 10**11 else number
        return dt.datetime.fromtimestamp(seconds, tz=SHANGHAI)
    return parse_datetime(value).replace(tzinfo=SHANGHAI)


def parse_datetime(value: str) -> dt.datetime:
    """Strict `yyyy-MM-dd HH:mm:ss` (naive Asia/Shanghai); ValueError otherwise."""
    if not _DATETIME_RE.match(value):
        raise ValueError(value)
    return dt.datetime.strptime(value, DATETIME_FORMAT)


# -- request parameters ------------------------------------------------------------------------------
def merge_params(query: str, content_type: str, body: bytes) -> dict[str, str]:
    """URL query merged with the body parameters; the body wins."""
    params = dict(parse_qsl(query, keep_blank_values=True))
    params.update(_body_params(content_type, body, query_signed="sign" in params))
    return params


def _body_params(content_type: str, body: bytes, *, query_signed: bool) -> dict[str, str]:
    if not body.strip():
        return {}
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind == "multipart/form-data":
        return _multipart_params(content_type, body)
    if "json" in kind or body.lstrip().startswith(b"{"):
        # A JSON copy of parameters already in the query must not override them.
        return {} if query_signed else _json_params(body)
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


def _json_params(body: bytes) -> dict[str, str]:
    try:
        data = json.loads(body)
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): _json_scalar(v) for k, v in data.items() if v is not None}


def _json_scalar(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _multipart_params(content_type: str, body: bytes) -> dict[str, str]:
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    params: dict[str, str] = {}
    if not message.is_multipart():
        return params
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name and not part.get_filename():
            payload = part.get_payload(decode=True) or b""
            params[str(name)] = payload.decode(part.get_content_charset() or "utf-8", "replace")
    return params


# -- query ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StockoutQuery:
    """The validated business parameters of one `wdt.stockout.order.query.trade` call."""

    start: dt.datetime | None = None
    end: dt.datetime | None = None
    status: int | None = None
    by_modified: bool = False
    stockout_no: str | None = None
    src_order_no: str | None = None
    src_tid: str | None = None
    shop_no: str | None = None
    warehouse_no: str | None = None
    page_no: int = 0
    page_size: int = DEFAULT_PAGE_SIZE

    @property
    def window_field(self) -> str:
        """Which clock the window filters on (spec §4.1)."""
        if self.by_modified or (self.status is not None and self.status < 95):
            return "modified"
        return "consign_time"


def _int_param(params: Mapping[str, str], name: str, default: int | None) -> int | None:
    raw = params.get(name, "")
    if raw == "":
        return default
    try:
        return int(raw.strip())
    except ValueError:
        raise _invalid(name, f"参数{name}必须是整数: {raw}") from None


def parse_query(params: Mapping[str, str]) -> StockoutQuery:
    """Validate the business parameters; raises BusinessError."""
    page_size = _int_param(params, "page_size", DEFAULT_PAGE_SIZE)
    assert page_size is not None
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise _invalid("page_size", f"page_size取值范围为1~{MAX_PAGE_SIZE}: {page_size}")
    page_no = _int_param(params, "page_no", 0)
    assert page_no is not None
    if page_no < 0:
        raise _invalid("page_no", f"page_no不能小于0: {page_no}")
    by_modified = _int_param(params, "is_by_modified", 0)
    if by_modified not in (0, 1):
        raise _invalid("is_by_modified", f"is_by_modified只能是0或1: {by_modified}")
    start, end = _window(params)
    docs = {k: params.get(k) or None for k in ("stockout_no", "src_order_no", "src_tid")}
    if start is None and not any(docs.values()):
        raise BusinessError(2900, "时间范围与订单编号不能全部为空", "isv.missing-parameter:start_time")
    return StockoutQuery(
        start=start,
        end=end,
        status=_int_param(params, "status", None),
        by_modified=by_modified == 1,
        shop_no=params.get("shop_no") or None,
        warehouse_no=params.get("warehouse_no") or None,
        page_no=page_no,
        page_size=page_size,
        **docs,
    )


def _window(params: Mapping[str, str]) -> tuple[dt.datetime | None, dt.datetime | None]:
    raw = {k: params.get(k, "") for k in ("start_time", "end_time")}
    if not any(raw.values()):
        return None, None
    parsed: dict[str, dt.datetime] = {}
    for name, value in raw.items():
        if value == "":
            raise _invalid(name, f"start_time与end_time必须同时传入, 缺少{name}")
        try:
            parsed[name] = parse_datetime(value)
        except ValueError:
            raise _invalid(name, f"{name}格式错误, 应为yyyy-MM-dd HH:mm:ss: {value}") from None
    start, end = parsed["start_time"], parsed["end_time"]
    if start > end:
        raise _invalid("start_time", "start_time不能大于end_time")
    if end - start > MAX_SPAN:
        raise BusinessError(100, "时间跨度不能超过30天", "isv.time-span-too-long")
    return start, end


class OrderIndex:
    """The data set's orders with their clocks parsed once, answering queries."""

    def __init__(self, orders: list[dict[str, Any]]) -> None:
        self._rows = sorted(
            (
                (
                    order,
                    _clock(order["consign_time"]),
                    _clock(order["modified"]),
                    frozenset(order["src_tids"].split(","))
                    | {line["src_tid"] for line in order["details_list"]},
                )
                for order in orders
            ),
            key=lambda row: row[0]["stockout_id"],
        )

    def select(self, q: StockoutQuery) -> list[dict[str, Any]]:
        """Every order matching `q`, in ascending stockout_id."""
        return [order for order, *clocks in self._rows if self._matches(q, order, *clocks)]

    @staticmethod
    def _matches(
        q: StockoutQuery,
        order: dict[str, Any],
        consigned: dt.datetime | None,
        modified: dt.datetime | None,
        tids: frozenset[str],
    ) -> bool:
        if q.start is not None and q.end is not None:
            clock = modified if q.window_field == "modified" else consigned
            if clock is None or not q.start <= clock <= q.end:
                return False
            if q.status is None and not q.by_modified and order["status"] not in DEFAULT_STATUSES:
                return False
        if q.status is not None and order["status"] != q.status:
            return False
        if q.src_tid is not None and q.src_tid not in tids:
            return False
        exact = (
            ("stockout_no", q.stockout_no),
            ("src_order_no", q.src_order_no),
            ("shop_no", q.shop_no),
            ("warehouse_no", q.warehouse_no),
        )
        return all(value is None or order[key] == value for key, value in exact)


def _clock(value: str) -> dt.datetime | None:
    return None if value == ZERO_DATETIME else parse_datetime(value)


# -- gateway -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GatewayConfig:
    app_key: str = DEFAULT_APP_KEY
    app_secret: str = DEFAULT_APP_SECRET
    target_app_key: str = DEFAULT_TARGET_APP_KEY
    sid: str = DEFAULT_SID
    total_count_every_page: bool = False
    rate_limit_per_minute: int = 0  # 0 = unlimited
    clock: Callable[[], float] = time.time


class RateLimiter:
    """Sliding 60-second window of accepted calls per app_key."""

    def __init__(self, per_minute: int, clock: Callable[[], float]) -> None:
        self.per_minute, self.clock = per_minute, clock
        self._calls: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        if self.per_minute <= 0:
            return True
        now = self.clock()
        with self._lock:
            calls = self._calls.setdefault(key, deque())
            while calls and calls[0] <= now - 60:
                calls.popleft()
            if len(calls) >= self.per_minute:
                return False
            calls.append(now)
            return True


def _new_request_id() -> str:
    return "".join(_request_ids.choice(_REQUEST_ID_CHARS) for _ in range(13))


class WdtGateway:
    """HTTP-free core: merged parameters in, JSON body (a dict) out."""

    def __init__(self, config: GatewayConfig, dataset: Dataset) -> None:
        self.config = config
        self.dataset = dataset
        self.index = OrderIndex(dataset.orders)
        self.limiter = RateLimiter(config.rate_limit_per_minute, config.clock)
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
            return {"response": {"flag": "failure", "code": e.code, "message": e.message,
                                 "sub_code": e.sub_code, "sub_message": e.sub_message,
                                 "request_id": request_id}}
        except BusinessError as e:
            return {"response": {"flag": "failure", "errorcode": e.code, "code": e.code,
                                 "message": e.message, "sub_code": e.sub_code,
                                 "sub_message": e.message, "request_id": request_id}}
        return {"response": {"flag": "success", "code": 0, "errorcode": 0, "message": "", **body,
                             "request_id": request_id}}

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
        if abs(now - sent) > TIMESTAMP_TOLERANCE:
            raise GatewayError(31, "Invalid Timestamp", "isv.invalid-timestamp",
                               "timestamp与服务器时间相差超过10分钟")

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

    def _check_seller(self, params: Mapping[str, str]) -> None:
        """WDT's checks: the seller account, then its call quota."""
        sid = params.get("sid", "")
        if sid != self.config.sid:
            raise BusinessError(100, f"卖家账号无效或未授权: {sid}" if sid else "缺少参数sid", "isv.invalid-sid")
        if not self.limiter.allow(params["app_key"]):
            raise BusinessError(1012, "系统调用频繁,请稍后再试", "isv.call-limited")

    def _stockout_query_trade(self, params: Mapping[str, str]) -> dict[str, Any]:
        q = parse_query(params)
        matches = self.index.select(q)
        offset = q.page_no * q.page_size
        body: dict[str, Any] = {}
        if q.page_no == 0 or self.config.total_count_every_page:
            body["total_count"] = len(matches)
        body["stockout_list"] = matches[offset: offset + q.page_size]
        return body


# -- HTTP ----------------------------------------------------------------------------------------------
class WdtEmulatorServer(ThreadingHTTPServer):
    """Threaded HTTP server carrying the gateway; `url` is the `/router/qm` address to call."""

    daemon_threads = True

    def __init__(self, host: str, port: int, gateway: WdtGateway, *, log_requests: bool = False) -> None:
        self.gateway = gateway
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
            self._send(404, {"error_response": {"code": 404, "msg": f"no such path: {parts.path}"}})
            return
        try:
            params = merge_params(parts.query, self.headers.get("Content-Type", ""), body)
            payload = self.server.gateway.handle(params)
        except Exception as e:  # a bug must still answer in the gateway's shape
            payload = {"response": {"flag": "failure", "code": 15, "message": "Remote service error",
                                    "sub_code": "isp.unknown-error", "sub_message": repr(e),
                                    "request_id": _new_request_id()}}
        self._send(200, payload)

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (signature of the base class)
        if self.server.log_requests:
            sys.stderr.write(f"{self.address_string()} - {format % args}\n")


def default_start(days: int) -> dt.date:
    """The first day such that the data ends yesterday (Asia/Shanghai)."""
    return dt.datetime.now(SHANGHAI).date() - dt.timedelta(days=days)


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
    rate_limit_per_minute: int = 0,
    log_requests: bool = False,
    clock: Callable[[], float] = time.time,
) -> WdtEmulatorServer:
    """A bound, not yet serving, emulator; call `serve_forever()` (e.g. in a thread)."""
    dataset = build_dataset(seed, orders, start or default_start(days), days)
    config = GatewayConfig(
        app_key=app_key,
        app_secret=app_secret,
        target_app_key=target_app_key,
        sid=sid,
        total_count_every_page=total_count_every_page,
        rate_limit_per_minute=rate_limit_per_minute,
        clock=clock,
    )
    return WdtEmulatorServer(host, port, WdtGateway(config, dataset), log_requests=log_requests)
