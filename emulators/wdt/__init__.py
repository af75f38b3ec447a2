"""Emulator of the 旺店通 企业版 Qimen gateway (``wdt.stockout.order.query.trade``).

``make_server(...)`` gives a bound server with a ``.url`` (``http://HOST:PORT/router/qm``);
``python -m emulators.wdt`` runs one and prints that URL as its first stdout line. Every keyword of
``make_server`` is also a flag of the command line (``--throttle-per-minute`` for ``throttle_per_minute``).

``server.emulator`` is the emulator's state, for tests:
- ``now()``: the emulator clock (aware datetime, Asia/Shanghai); the gateway answers with every order as
  it was at that time;
- ``set_now(t, running=False)``: freeze the clock at the aware datetime ``t`` (or let it run on from it);
- ``ground_truth(start, end) -> {stockout_id: order_no}``: the orders at status 110 now whose
  ``consign_time`` lies in ``[start, end)`` (aware datetimes), with their numbers as they are now;
- ``orders(when=None)``: every visible order as the API returns it, at ``when`` or now.

Protocol decisions are documented in :mod:`emulators.wdt.server` and the modules it names.
"""

from emulators.wdt.query import BusinessError
from emulators.wdt.server import (
    METHOD,
    GatewayError,
    WdtEmulatorServer,
    make_server,
)
from emulators.wdt.timeline import Clock, OrderStore
from emulators.wdt.wire import qimen_sign, verify_signature

__all__ = [
    "METHOD",
    "BusinessError",
    "Clock",
    "GatewayError",
    "OrderStore",
    "WdtEmulatorServer",
    "make_server",
    "qimen_sign",
    "verify_signature",
]
