"""Command line: ``python -m emulators.wdt [--host H] [--port P] ...``.

Prints the gateway URL ``http://H:PORT/router/qm`` as the first stdout line (flushed) so that a parent
process can read it even with ``--port 0``, then serves until SIGINT or SIGTERM and exits 0. A one-line
summary of the data set goes to stderr. Without ``--start`` the data ends yesterday (Asia/Shanghai).
"""

from __future__ import annotations

import argparse
import datetime as dt
import signal
import sys
import threading
from types import FrameType

from emulators.wdt.server import (
    DEFAULT_APP_KEY,
    DEFAULT_APP_SECRET,
    DEFAULT_SID,
    DEFAULT_TARGET_APP_KEY,
    make_server,
)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m emulators.wdt", description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--app-key", default=DEFAULT_APP_KEY, help="the caller's Qimen app_key")
    p.add_argument("--app-secret", default=DEFAULT_APP_SECRET, help="the caller's Qimen app secret")
    p.add_argument("--target-app-key", default=DEFAULT_TARGET_APP_KEY, help="WDT's Qimen app key")
    p.add_argument("--sid", default=DEFAULT_SID, help="WDT seller account")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--orders", type=int, default=200)
    p.add_argument("--start", type=dt.date.fromisoformat, default=None, help="YYYY-MM-DD")
    p.add_argument("--days", type=int, default=7)
    p.add_argument("--total-count-every-page", action="store_true",
                   help="return total_count on every page, not only page 0")
    p.add_argument("--rate-limit-per-minute", type=int, default=0, help="0 = unlimited")
    p.add_argument("--log-requests", action="store_true", help="log each request to stderr")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    server = make_server(
        args.host,
        args.port,
        app_key=args.app_key,
        app_secret=args.app_secret,
        target_app_key=args.target_app_key,
        sid=args.sid,
        seed=args.seed,
        orders=args.orders,
        start=args.start,
        days=args.days,
        total_count_every_page=args.total_count_every_page,
        rate_limit_per_minute=args.rate_limit_per_minute,
        log_requests=args.log_requests,
    )

    def stop(signum: int, frame: FrameType | None) -> None:
        # shutdown() waits for serve_forever() to return, so it must not run on the serving thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    print(server.url, flush=True)
    data = server.gateway.dataset
    print(
        f"wdt emulator: {len(data.orders)} orders, {len(data.defects)} defective, sid={args.sid}",
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
