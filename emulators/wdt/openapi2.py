"""WDT 企业版's direct openapi2 endpoint (``POST /openapi2/<file>.php``), next to the Qimen gateway.

It serves the same order store, with the same faults, quota, churn and clocks, as the Qimen gateway of
:mod:`emulators.wdt.server`, on the same port: ``server.openapi2_url`` is the base URL
(``http://HOST:PORT/openapi2/``). Follows spec §1, §3, §5.1 and §6; decisions on the points it leaves
open ([INF]/[UNCONFIRMED]):

Routes
- ``ROUTES`` maps an openapi2 file name to the Qimen method whose handler the gateway dispatches
  (``stockout_order_query_trade.php`` <-> ``wdt.stockout.order.query.trade``,
  ``stockin_order_query_refund.php`` <-> ``wdt.stockin.order.query.refund``,
  ``stockin_order_query_purchase.php`` <-> ``wdt.stockin.order.query.purchase``), so both paths run the
  same code. ``his_stockin_order_query_refund.php`` (stock-in spec §9.1; no Qimen method) routes to a
  handler of its own that validates like the refund query and answers no archived data
  (:mod:`.stockin`). Any other path under ``/openapi2/`` (``his_stockout_order_query_trade.php``
  included: archived stock-outs are not emulated) answers HTTP 404 ``text/html`` "404 Not Found", as a
  web server would, before faults.
- POST only (the official PHP SDK posts, §3.3); GET answers HTTP 405 with ``Allow: POST``, before faults.
  Every SDK posts, so refusing GET (which a PHP server reading ``$_REQUEST`` may well serve) loses no
  real client and keeps a GET client from passing here only.

Parameters
- The server is PHP and signs ``$_REQUEST`` (spec §3.1, a look-alike server's ``packRequest($_REQUEST)``),
  so the parameters are the URL query merged with the body, the body winning (PHP's default
  ``request_order = "GP"``). The body counts only as PHP fills ``$_POST``: ``application/x-www-form-urlencoded``
  (UTF-8) or ``multipart/form-data``; any other body (JSON included) is ignored. Repeated keys: the last
  one wins. Whatever arrives is signed, empty values included.

Checks, in this order; every refusal is HTTP 200 ``{"code": N, "message": "..."}`` (§5.1). The official
error table is unavailable (§9.1); the codes follow §6:
- ``sid`` missing or not the emulator's seller: 100 "无效sid: <sid>" / "缺少参数sid";
- ``appkey`` missing or not ``openapi2_appkey``: 100 "无效appkey: <appkey>" / "缺少参数appkey" (the
  look-alike server's "无效appkey:<k>");
- ``timestamp`` missing, not exactly 10 ASCII digits (unix epoch seconds, §3.4: milliseconds and
  date strings are refused), or more than ``openapi2_timestamp_tolerance_s`` (default 300, the
  documented 5 min; 300 s off is still accepted) off the gateway's wall clock in whole seconds (PHP's
  ``time()``): 100 "无效timestamp: ...";
- ``sign`` missing or wrong: 100 "无效sign: ..."; the signature is §3.1 exactly (see :func:`pack`): every
  parameter but ``sign`` in byte order, ``%02d-key:%04d-value`` with lengths in **characters** (PHP's
  ``iconv_strlen``; a byte-length signer is refused as soon as a value is not ASCII) joined by ``;``,
  ``md5(packed + appsecret)``; the hex is compared case-insensitively;
- the quota (``throttle_per_minute``, the Qimen gateway's ``Throttle``): counted per ``appkey`` under the
  key ``openapi2:<appkey>``, apart from the Qimen app keys (a different identity, even if spelled the
  same); beyond it 1012 "系统调用频繁,请稍后再试" (§6: 1012 is the direct API's throttle code);
- the method's parameter errors (:mod:`.query`): 100 for an invalid parameter or span, 2900 for neither
  a window nor a document number. ``is_by_modified`` is honoured as on Qimen ([UNCONFIRMED] for the
  direct endpoint).
- A bug in the emulator answers HTTP 500 ``text/plain`` "500 Internal Server Error", as a PHP fatal
  error would (the same answer as the 500 fault, so clients retry it).

Answer
- ``{"code":0,"message":"","total_count":N,"stockout_list":[...]}`` (``stockin_list`` for stock-ins) as ``application/json;charset=UTF-8``
  (the Content-Type of the real server is [UNCONFIRMED]); ``total_count`` on page 0 only, on every page
  with ``total_count_every_page`` (the Qimen gateway's switch).
- [DOC S1] "本接口不返回淘系订单数据": orders of platform 1 (淘系) are never returned here (nor refund
  stock-ins of 淘系 shops, stock-in spec §1; purchases have no platform), and
  ``total_count`` counts only what is returned (they are left out of the query itself, so churn never
  picks one for an openapi2 read either). Every other order is exactly what the Qimen path returns: its
  privacy fields are plain on both paths (only 淘系 orders are masked or dropped via Qimen), and
  ``batch_fields`` applies to both.
- 5xx faults and latency: answered as on the Qimen path (the same draws, in arrival order over both
  paths), before any check.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from emulators.wdt.query import BusinessError
from emulators.wdt.timeline import SHANGHAI
from emulators.wdt.wire import form_params, multipart_params

if TYPE_CHECKING:
    from emulators.wdt.server import WdtGateway

PREFIX = "/openapi2/"
# openapi2 file name -> the Qimen method (the gateway's handler) that serves it
ARCHIVE_REFUND = "openapi2:his_stockin_order_query_refund"  # a handler with no Qimen method
ROUTES: dict[str, str] = {
    "stockout_order_query_trade.php": "wdt.stockout.order.query.trade",
    "stockin_order_query_refund.php": "wdt.stockin.order.query.refund",
    "stockin_order_query_purchase.php": "wdt.stockin.order.query.purchase",
    "his_stockin_order_query_refund.php": ARCHIVE_REFUND,
}
# "本接口不返回淘系订单数据" [DOC S1]
HIDDEN_PLATFORMS = frozenset({1})
DEFAULT_APPKEY = "test2-xx"  # the spec's worked example (§3.2), with sid test2
DEFAULT_APPSECRET = "12345"
DEFAULT_TIMESTAMP_TOLERANCE_S = 300  # §3.4: 5 minutes
_TIMESTAMP_RE = re.compile(r"^[0-9]{10}$")
_AUTH_CODE = 100


class Openapi2Error(Exception):
    """A refusal answered as ``{"code": N, "message": ...}``."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


# -- signature (spec §3.1) -----------------------------------------------------------------------------
def pack(params: Mapping[str, str]) -> str:
    """The packed string: every parameter but ``sign``, keys in byte order, ``%02d-key:%04d-value``
    (lengths in characters; a longer length is written in full) joined by ``;``."""
    keys = sorted((k for k in params if k != "sign"), key=lambda k: k.encode("utf-8"))
    return ";".join(f"{len(k):02d}-{k}:{len(params[k]):04d}-{params[k]}" for k in keys)


def openapi2_sign(params: Mapping[str, str], appsecret: str) -> str:
    """Lower-case hex ``md5(pack(params) + appsecret)``."""
    return hashlib.md5((pack(params) + appsecret).encode("utf-8")).hexdigest()


def verify(params: Mapping[str, str], appsecret: str) -> bool:
    given = params.get("sign", "").lower()
    return bool(given) and hmac.compare_digest(given, openapi2_sign(params, appsecret))


# -- request parameters ----------------------------------------------------------------------------------
def request_params(query: str, content_type: str, body: bytes) -> dict[str, str]:
    """PHP's ``$_REQUEST``: the URL query, then the form body over it."""
    params = dict(parse_qsl(query, keep_blank_values=True))
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind == "application/x-www-form-urlencoded":
        params.update(form_params(body))
    elif kind == "multipart/form-data":
        params.update(multipart_params(content_type, body))
    return params


# -- the endpoint ----------------------------------------------------------------------------------------
class Openapi2Endpoint:
    """HTTP-free core of the direct endpoint: a file name and parameters in, the flat envelope out."""

    def __init__(self, gateway: WdtGateway) -> None:
        self.gateway = gateway

    def handle(self, file: str, params: Mapping[str, str]) -> dict[str, Any]:
        """The answer for a routed file (``file in ROUTES``)."""
        try:
            appkey = self._check_identity(params)
            if not self.gateway.throttle.allow(f"openapi2:{appkey}"):
                raise BusinessError(1012, "系统调用频繁,请稍后再试", "isv.call-limited")
            body = self.gateway.dispatch(ROUTES[file], params, HIDDEN_PLATFORMS)
        except Openapi2Error as e:
            return {"code": e.code, "message": e.message}
        except BusinessError as e:
            return {"code": e.code, "message": e.message}
        return {"code": 0, "message": "", **body}

    def _check_identity(self, params: Mapping[str, str]) -> str:
        cfg = self.gateway.config
        sid = params.get("sid", "")
        if sid != cfg.sid:
            raise Openapi2Error(_AUTH_CODE, f"无效sid: {sid}" if sid else "缺少参数sid")
        appkey = params.get("appkey", "")
        if appkey != cfg.openapi2_appkey:
            raise Openapi2Error(_AUTH_CODE, f"无效appkey: {appkey}" if appkey else "缺少参数appkey")
        self._check_timestamp(params.get("timestamp", ""))
        if not params.get("sign"):
            raise Openapi2Error(_AUTH_CODE, "无效sign: 缺少参数sign")
        if not verify(params, cfg.openapi2_appsecret):
            raise Openapi2Error(_AUTH_CODE, "无效sign: 签名错误")
        return appkey

    def _check_timestamp(self, value: str) -> None:
        if not value:
            raise Openapi2Error(_AUTH_CODE, "无效timestamp: 缺少参数timestamp")
        if not _TIMESTAMP_RE.match(value):
            raise Openapi2Error(_AUTH_CODE, f"无效timestamp: 应为10位unix时间戳(秒): {value}")
        tolerance = self.gateway.config.openapi2_timestamp_tolerance
        if abs(int(self.gateway.config.clock()) - int(value)) > tolerance.total_seconds():  # PHP time(): whole s
            sent = dt.datetime.fromtimestamp(int(value), tz=SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")
            raise Openapi2Error(
                _AUTH_CODE, f"无效timestamp: {value} ({sent}) 与服务器时间相差超过{int(tolerance.total_seconds())}秒"
            )
