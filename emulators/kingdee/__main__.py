"""``python -m emulators.kingdee``: run the Kingdee WebAPI emulator until SIGINT/SIGTERM.

Flags (defaults in brackets): ``--host`` [127.0.0.1], ``--port`` [8090; 0 = a free port], ``--acct-id``,
``--username``, ``--app-id``, ``--app-secret`` [``DEFAULT_CREDENTIALS``], ``--password`` (ValidateUser's
password) [the app secret], ``--data-dir`` (SQLite lives here; created if missing) [.demo/kingdee],
``--seed`` (the catalog seed shared with the WDT emulator) [0], ``--verify-api-signature`` (also check
X-Api-Signature), ``--session-idle-seconds`` (expire idle sessions) [never], ``--verbose`` (log requests
to stderr).

The first line on stdout is exactly the server URL, ``http://HOST:PORT/k3cloud/``, flushed at once;
nothing else is written to stdout. Exit status 0 after a clean stop.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from . import DEFAULT_CREDENTIALS
from .server import make_server


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m emulators.kingdee", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Kingdee K/3 Cloud WebAPI emulator (SAL_OUTSTOCK). Prints its URL as the first line.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090, help="0 picks a free port")
    parser.add_argument("--acct-id", default=DEFAULT_CREDENTIALS["acct_id"], help="data-center id (账套)")
    parser.add_argument("--username", default=DEFAULT_CREDENTIALS["username"])
    parser.add_argument("--app-id", default=DEFAULT_CREDENTIALS["app_id"], help="<clientId>_<32 chars>")
    parser.add_argument("--app-secret", default=DEFAULT_CREDENTIALS["app_secret"])
    parser.add_argument("--password", default=None, help="ValidateUser password; default: the app secret")
    parser.add_argument("--data-dir", default=".demo/kingdee", help="SQLite lives here; created if missing")
    parser.add_argument("--seed", type=int, default=0, help="catalog seed shared with the WDT emulator")
    parser.add_argument("--verify-api-signature", action="store_true", help="also check X-Api-Signature")
    parser.add_argument("--session-idle-seconds", type=float, default=None, help="expire idle sessions")
    parser.add_argument("--verbose", action="store_true", help="log requests to stderr")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    server = make_server(
        args.host, args.port, acct_id=args.acct_id, username=args.username, app_id=args.app_id,
        app_secret=args.app_secret, data_dir=args.data_dir, seed=args.seed, password=args.password,
        verify_api_signature=args.verify_api_signature, session_idle_seconds=args.session_idle_seconds,
        verbose=args.verbose,
    )

    def stop(signum: int, frame: FrameType | None) -> None:
        # shutdown() waits for serve_forever(), which runs in this very thread: ask from another one.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    sys.stdout.write(server.url + "\n")
    sys.stdout.flush()
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
