"""Emulator of the 旺店通 企业版 Qimen gateway (``wdt.stockout.order.query.trade``).

``make_server(...)`` gives a bound server with a ``.url`` (``http://HOST:PORT/router/qm``);
``python -m emulators.wdt`` runs one and prints that URL as its first stdout line. Every protocol
decision is documented in :mod:`emulators.wdt.server`.
"""

from emulators.wdt.server import (
    METHOD,
    BusinessError,
    GatewayError,
    WdtEmulatorServer,
    make_server,
    qimen_sign,
    verify_signature,
)

__all__ = [
    "METHOD",
    "BusinessError",
    "GatewayError",
    "WdtEmulatorServer",
    "make_server",
    "qimen_sign",
    "verify_signature",
]
