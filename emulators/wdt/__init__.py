"""Emulator of the 旺店通 企业版 Qimen gateway (``wdt.stockout.order.query.trade``, and the stock-in
queries ``wdt.stockin.order.query.refund`` / ``wdt.stockin.order.query.purchase``).

``make_server(...)`` gives a bound server with a ``.url`` (``http://HOST:PORT/router/qm``, the Qimen
gateway) and an ``.openapi2_url`` (``http://HOST:PORT/openapi2/``, the base of WDT's direct endpoint,
e.g. ``…/openapi2/stockout_order_query_trade.php``, ``stockin_order_query_refund.php``,
``stockin_order_query_purchase.php``; identity ``openapi2_appkey``/``openapi2_appsecret``
and the shared ``sid``); ``python -m emulators.wdt`` runs one and prints the Qimen URL as its first
stdout line. Every keyword of
``make_server`` is also a flag of the command line (``--throttle-per-minute`` for ``throttle_per_minute``).

``server.emulator`` is the emulator's state, for tests:
- ``now()``: the emulator clock (aware datetime, Asia/Shanghai); the gateway answers with every order as
  it was at that time;
- ``set_now(t, running=False)``: freeze the clock at the aware datetime ``t`` (or let it run on from it);
- ``ground_truth(start, end) -> {stockout_id: order_no}``: the orders at status 110 now whose
  ``consign_time`` lies in ``[start, end)`` (aware datetimes), with their numbers as they are now;
- ``orders(when=None)``: every visible order, at ``when`` or now, in full: as the Qimen gateway returns it
  with ``batch_fields=True, privacy="masked"`` (the default switches leave fields out, see :mod:`.server`).

``server.stockins`` is the stock-in store, on the same clock:
- ``refunds(when=None)`` / ``purchases(when=None)``: every refund / purchase stock-in that exists at
  ``when`` or now, as it is then, in API order (``modified``, ``stockin_id``), as stored (``privacy`` and
  ``stockin_status_type`` not applied);
- ``data``: the final states (:func:`emulators.stockins.build_stockins`, the ground truth).

Protocol decisions are documented in :mod:`emulators.wdt.server` and the modules it names.
"""

from typing import TypedDict

from emulators.wdt.openapi2 import ROUTES as OPENAPI2_ROUTES
from emulators.wdt.openapi2 import openapi2_sign
from emulators.wdt.query import BusinessError
from emulators.wdt.server import (
    METHOD,
    METHOD_PURCHASE,
    METHOD_REFUND,
    GatewayError,
    WdtEmulatorServer,
    make_server,
)
from emulators.wdt.stockin import StockinStore
from emulators.wdt.timeline import Clock, OrderStore
from emulators.wdt.wire import qimen_sign, verify_signature


class WdtIdentity(TypedDict):
    """The Qimen identity ``make_server`` takes (and a client's config holds)."""

    app_key: str
    app_secret: str
    target_app_key: str
    sid: str


__all__ = [
    "METHOD",
    "METHOD_PURCHASE",
    "METHOD_REFUND",
    "WdtIdentity",
    "BusinessError",
    "Clock",
    "GatewayError",
    "OPENAPI2_ROUTES",
    "OrderStore",
    "StockinStore",
    "WdtEmulatorServer",
    "make_server",
    "openapi2_sign",
    "qimen_sign",
    "verify_signature",
]
