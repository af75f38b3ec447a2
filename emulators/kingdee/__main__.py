"""``python -m emulators.kingdee``: run the Kingdee WebAPI emulator until SIGINT/SIGTERM.

Flags (defaults in brackets): ``--host`` [127.0.0.1], ``--port`` [8090; 0 = a free port], ``--acct-id``,
``--username``, ``--app-id``, ``--app-secret`` [``DEFAULT_CREDENTIALS``], ``--password`` (ValidateUser's
password) [the app secret], ``--data-dir`` (SQLite lives here; created if missing) [.demo/kingdee],
``--seed`` (the catalog seed shared with the WDT emulator; also seeds the stock levels and every random
fault decision) [0], ``--verify-api-signature`` (also check X-Api-Signature), ``--session-ttl-s`` (a
session ends this many seconds after it was opened) [never], ``--custom-fields`` (the tenant's custom
fields, comma-separated, ``[FORM:][ENTITY.]KEY``: FORM a bill form, default SAL_OUTSTOCK, ENTITY its
sub-head or entry key, default the header, e.g. ``SAL_RETURNSTOCK:FEntity.F_x``; ``""`` = none)
[F_ora_Text_ysdh,F_ora_Text_ckdh], ``--default-return-type`` (SAL_RETURNSTOCK rows that do not send
FReturnType get this 退货类型, e.g. THLX01_SYS) [none: FReturnType is required], ``--max-request-bytes`` (a longer request body is refused the way
ASP.NET's maxRequestLength refuses it; 0 = no limit) [4194304], ``--verbose`` (log requests to stderr).

Latency and faults (see ``faults.py``; all off by default): ``--latency-ms`` (every service call waits
this long) [0], ``--per-bill-ms`` (Save/BatchSave answer no sooner than this per bill) [0],
``--error-rate`` (share of calls answered HTTP 500, nothing done) [0], ``--lost-response-rate`` (share
of Save/BatchSave calls that are committed, then the connection is closed or HTTP 500 answered,
alternately) [0], ``--max-concurrent`` (calls beyond this many in progress get HTTP 503 at once)
[unlimited], ``--network-control-rate`` (share of Save/BatchSave/Submit/Audit/UnAudit/Delete calls
answered MsgCode 13, nothing written) [0], ``--call-limit-per-minute`` (calls beyond this many in a
sliding minute answered MsgCode 14) [unlimited], ``--response-error-rate`` (share of calls answered with
a ``response_error:`` text, nothing done) [0].

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
from .forms import DEFAULT_CUSTOM_FIELDS
from .server import DEFAULT_MAX_REQUEST_BYTES, make_server


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m emulators.kingdee",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Kingdee K/3 Cloud WebAPI emulator (SAL_OUTSTOCK, SAL_RETURNSTOCK, STK_InStock). "
        "Prints its URL as the first line.",
    )
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
    parser.add_argument(
        "--session-ttl-s",
        type=float,
        default=None,
        help="a session ends this many seconds after it was opened (default: never)",
    )
    parser.add_argument(
        "--custom-fields",
        default=",".join(DEFAULT_CUSTOM_FIELDS),
        help="the tenant's custom fields, comma-separated: [FORM:][ENTITY.]KEY (FORM default SAL_OUTSTOCK, "
        "ENTITY its sub-head or entry key, default the header); '' for none",
    )
    parser.add_argument(
        "--default-return-type",
        default=None,
        help="SAL_RETURNSTOCK rows without FReturnType get this 退货类型 (e.g. THLX01_SYS); default: required",
    )
    parser.add_argument(
        "--max-request-bytes",
        type=_non_negative,
        default=DEFAULT_MAX_REQUEST_BYTES,
        help="larger request bodies get ASP.NET's HTTP 500 'maximum request length "
        "exceeded' page (default: 4 MB, ASP.NET's maxRequestLength); 0 = no limit",
    )
    faults = parser.add_argument_group("latency and faults", "all random decisions follow --seed")
    faults.add_argument("--latency-ms", type=float, default=0, help="every service call waits this long")
    faults.add_argument("--per-bill-ms", type=float, default=0, help="Save/BatchSave: extra time per bill")
    faults.add_argument("--error-rate", type=_rate, default=0, help="share of calls answered HTTP 500")
    faults.add_argument(
        "--lost-response-rate",
        type=_rate,
        default=0,
        help="share of Save/BatchSave calls committed whose reply is then lost",
    )
    faults.add_argument(
        "--max-concurrent",
        type=_positive,
        default=None,
        help="calls beyond this many in progress are answered HTTP 503 (default: unlimited)",
    )
    faults.add_argument(
        "--network-control-rate", type=_rate, default=0, help="share of write calls answered MsgCode 13 (网控冲突)"
    )
    faults.add_argument(
        "--call-limit-per-minute",
        type=_positive,
        default=None,
        help="calls beyond this many in a sliding minute get MsgCode 14 (default: unlimited)",
    )
    faults.add_argument(
        "--response-error-rate", type=_rate, default=0, help="share of calls answered with a response_error: text"
    )
    parser.add_argument("--verbose", action="store_true", help="log requests to stderr")
    return parser.parse_args(argv)


def _rate(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"a rate is between 0 and 1, not {text}")
    return value


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {text}")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {text}")
    return value


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    server = make_server(
        args.host,
        args.port,
        acct_id=args.acct_id,
        username=args.username,
        app_id=args.app_id,
        app_secret=args.app_secret,
        data_dir=args.data_dir,
        seed=args.seed,
        password=args.password,
        verify_api_signature=args.verify_api_signature,
        session_ttl_s=args.session_ttl_s,
        latency_ms=args.latency_ms,
        per_bill_ms=args.per_bill_ms,
        error_rate=args.error_rate,
        lost_response_rate=args.lost_response_rate,
        max_concurrent=args.max_concurrent,
        network_control_rate=args.network_control_rate,
        call_limit_per_minute=args.call_limit_per_minute,
        response_error_rate=args.response_error_rate,
        custom_fields=args.custom_fields,
        default_return_type=args.default_return_type,
        max_request_bytes=args.max_request_bytes,
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
