"""Command line: ``python -m emulators.wdt [--host H] [--port P] ...``.

Prints the Qimen gateway URL ``http://H:PORT/router/qm`` as the first stdout line (flushed) so that a
parent process can read it even with ``--port 0``, then serves until SIGINT or SIGTERM and exits 0. The
direct openapi2 endpoint is served on the same port under ``http://H:PORT/openapi2/`` (e.g.
``…/openapi2/stockout_order_query_trade.php``, ``stockin_order_query_refund.php``,
``stockin_order_query_purchase.php``); a one-line summary of the data set and both addresses go to
stderr. The stock-in methods (``wdt.stockin.order.query.refund``/``.purchase``) are served from the same
``--seed/--orders/--start/--days`` (:mod:`emulators.stockins`). Without ``--start`` the data ends
yesterday (Asia/Shanghai).

Every flag is the ``make_server`` keyword of the same name (dashes for underscores); defaults in brackets:
  identity   Qimen: --app-key [12345678] --app-secret [secret] --target-app-key [21363512];
             openapi2: --openapi2-appkey [test2-xx] --openapi2-appsecret [12345] (the spec's worked
             example); both: --sid [test2]
  data       --seed [1] --orders [200] --start YYYY-MM-DD [days before today] --days [7]
  clock      --now 'YYYY-MM-DD HH:MM:SS' (Asia/Shanghai): the emulator's clock starts there and runs on
             with real time [the wall clock]; the gateway answers with every order as it was then
  history    --late-rate R [1.0]: share of completed orders that complete 2-48 h after shipping (the
             others within minutes); --renumber-rate R [0]: share of orders rejected and re-approved
             before shipping, which changes their order_no/stockout_no; --churn-rate R [0]: share of
             page reads during which one pending event in the queried window happens now
  faults     --latency-ms N [0]; --error-rate R [0]: share of calls answered HTTP 500/502/503;
             --throttle-per-minute N [0 = unlimited]: calls beyond N per app key (Qimen app_key,
             openapi2 appkey) in a sliding minute answer WDT code 1012
  (faults, quota, churn and clocks are the same on both transports)
  limits     --max-span-minutes N [43200 = 30 days]; --timestamp-tolerance-s N [600] (Qimen);
             --openapi2-timestamp-tolerance-s N [300] (openapi2)
  shape      --total-count-every-page; --top-error-shape (Qimen gateway errors as TOP ``error_response``);
             --batch-fields/--no-batch-fields [absent]; --privacy masked|absent [absent];
             --stockin-status-type mixed|int|str [mixed: refund status a number, purchase a string]
  --log-requests: log each request to stderr
"""

from __future__ import annotations

import argparse
import datetime as dt
import signal
import sys
import threading
from types import FrameType
from typing import Any

from emulators.wdt import openapi2
from emulators.wdt.server import (
    DEFAULT_APP_KEY,
    DEFAULT_APP_SECRET,
    DEFAULT_SID,
    DEFAULT_TARGET_APP_KEY,
    make_server,
)
from emulators.wdt.stockin import STATUS_TYPES
from emulators.wdt.timeline import SHANGHAI


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m emulators.wdt",
        description=__doc__.splitlines()[0],
        epilog="The direct openapi2 endpoint is served on the same port: http://HOST:PORT/openapi2/"
        "stockout_order_query_trade.php (identity --openapi2-appkey/--openapi2-appsecret and --sid).",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--app-key", default=DEFAULT_APP_KEY, help="the caller's Qimen app_key")
    p.add_argument("--app-secret", default=DEFAULT_APP_SECRET, help="the caller's Qimen app secret")
    p.add_argument("--target-app-key", default=DEFAULT_TARGET_APP_KEY, help="WDT's Qimen app key")
    p.add_argument("--sid", default=DEFAULT_SID, help="WDT seller account (both transports)")
    p.add_argument(
        "--openapi2-appkey", default=openapi2.DEFAULT_APPKEY, help="the WDT appkey of the direct openapi2 endpoint"
    )
    p.add_argument(
        "--openapi2-appsecret",
        default=openapi2.DEFAULT_APPSECRET,
        help="the WDT appsecret of the direct openapi2 endpoint",
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--orders", type=int, default=200)
    p.add_argument("--start", type=dt.date.fromisoformat, default=None, help="YYYY-MM-DD")
    p.add_argument("--days", type=int, default=7)
    p.add_argument(
        "--total-count-every-page", action="store_true", help="return total_count on every page, not only page 0"
    )
    p.add_argument(
        "--now",
        type=_shanghai_datetime,
        default=None,
        help="'YYYY-MM-DD HH:MM:SS' Asia/Shanghai; the emulator clock starts there and runs on",
    )
    p.add_argument(
        "--late-rate",
        type=float,
        default=1.0,
        help="share of completed orders completing 2-48 h after shipping (others: minutes)",
    )
    p.add_argument(
        "--renumber-rate",
        type=float,
        default=0.0,
        help="share of orders rejected and re-approved before shipping (new order_no)",
    )
    p.add_argument(
        "--churn-rate",
        type=float,
        default=0.0,
        help="share of page reads during which a pending event in the window happens now",
    )
    p.add_argument("--latency-ms", type=int, default=0, help="every call waits this long")
    p.add_argument("--error-rate", type=float, default=0.0, help="share of calls answered HTTP 5xx")
    p.add_argument(
        "--throttle-per-minute",
        type=int,
        default=0,
        help="calls per app key (Qimen app_key, openapi2 appkey) per sliding minute before code 1012; 0 = unlimited",
    )
    p.add_argument("--max-span-minutes", type=int, default=43200, help="longest start_time..end_time")
    p.add_argument("--timestamp-tolerance-s", type=int, default=600, help="allowed Qimen timestamp skew")
    p.add_argument(
        "--openapi2-timestamp-tolerance-s",
        type=int,
        default=openapi2.DEFAULT_TIMESTAMP_TOLERANCE_S,
        help="allowed openapi2 timestamp skew (spec: 5 minutes)",
    )
    p.add_argument(
        "--top-error-shape",
        action="store_true",
        help="gateway errors as TOP error_response instead of Qimen response/flag=failure",
    )
    p.add_argument(
        "--batch-fields",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="lines carry batch_no/product_date/expire_date (unconfirmed for 企业版; default absent)",
    )
    p.add_argument(
        "--privacy",
        choices=("masked", "absent"),
        default="absent",
        help="淘系 buyers' personal fields via Qimen left out (default) or masked",
    )
    p.add_argument(
        "--stockin-status-type",
        choices=STATUS_TYPES,
        default="mixed",
        help="JSON type of the stock-ins' status: mixed (refund number, purchase string, as observed), int or str",
    )
    p.add_argument("--log-requests", action="store_true", help="log each request to stderr")
    return p.parse_args(argv)


def _shanghai_datetime(value: str) -> dt.datetime:
    return dt.datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=SHANGHAI)


def server_options(args: argparse.Namespace) -> dict[str, Any]:
    """The make_server keywords for parsed flags (every flag but host and port, same names)."""
    return {k: v for k, v in vars(args).items() if k not in ("host", "port")}


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    server = make_server(args.host, args.port, **server_options(args))

    def stop(signum: int, frame: FrameType | None) -> None:
        # shutdown() waits for serve_forever() to return, so it must not run on the serving thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    print(server.url, flush=True)
    data = server.gateway.dataset
    stockins = server.stockins.data
    print(
        f"wdt emulator: {len(data.orders)} orders, {len(data.defects)} defective, "
        f"{len(stockins.refunds)} refund and {len(stockins.purchases)} purchase stock-ins, sid={args.sid}, "
        f"clock {server.emulator.now():%Y-%m-%d %H:%M:%S}; Qimen at {server.url}, "
        f"openapi2 at {server.openapi2_url} (appkey={args.openapi2_appkey})",
        file=sys.stderr,
        flush=True,
    )
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
