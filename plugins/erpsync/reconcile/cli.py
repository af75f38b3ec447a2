"""``python -m erpsync reconcile <scheme name or file> --day YYYY-MM-DD [--days N] [--json] [--repush]``

Reads both systems through the scheme's connections (Airflow connections, as the DAG's tasks do),
prints a table per day (or, with ``--json``, one JSON object per day and line), stores each day under
the staging root, and exits 1 when any day has a difference. ``--repush`` saves the missing bills that
are loadable now and reconciles again.
"""

from __future__ import annotations

import argparse
import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

from erpsync.scheme import Scheme, SchemeError, load_folder, load_scheme

KIND_LABELS = {
    "missing": "缺失 missing",
    "extra": "多余 extra",
    "mismatched": "不符 mismatched",
    "deleted": "已删除 deleted",
}


def find_scheme(name: str, include_dir: Path) -> Scheme:
    """A scheme by file path, file name, scheme name or dag_id."""
    path = Path(name)
    if path.suffix in (".yaml", ".yml") and path.exists():
        return load_scheme(path.resolve(), include_dir)
    schemes, _ = load_folder(include_dir)
    for scheme in schemes:
        if name in (scheme.name, scheme.dag_id, scheme.path.stem, scheme.path.name):
            return scheme
    known = ", ".join(s.name for s in schemes)
    raise SchemeError(f"no scheme {name!r} in {include_dir / 'schemes'} (known: {known})")


def _difference_line(row: dict[str, Any]) -> str:
    who = " / ".join(str(v) for v in (row.get("wdt_no"), row.get("kingdee_bill_no")) if v)
    if row["kind"] == "mismatched":
        what = f"{row['field']}{' of ' + row['line'] if row.get('line') else ''}: WDT {row.get('wdt') or '–'}, Kingdee {row.get('kingdee') or '–'}"
    else:
        what = " · ".join(str(v) for v in (row.get("reason"), row.get("detail"), row.get("kingdee")) if v)
    return f"  {who:<34} {what}"


def print_day(result: Any, out: TextIO) -> None:
    wdt, kingdee = result.totals["wdt"], result.totals["kingdee"]
    state = "一致 matched" if result.clean else f"{len(result.differences)} differences"
    print(f"\n{result.dag_id} {result.day}: {state}", file=out)
    print(f"  {'':<10}{'单据 docs':>12}{'数量 quantity':>16}{'金额 amount':>18}", file=out)
    print(f"  {'WDT':<10}{wdt['documents']:>12}{wdt['quantity']:>16}{wdt['amount']:>18}", file=out)
    print(f"  {'Kingdee':<10}{kingdee['bills']:>12}{kingdee['quantity']:>16}{kingdee['amount']:>18}", file=out)
    gap_q = Decimal(str(wdt["quantity"])) - Decimal(str(kingdee["quantity"]))
    gap_a = Decimal(str(wdt["amount"])) - Decimal(str(kingdee["amount"]))
    print(f"  {'Δ':<10}{'':>12}{gap_q:>16}{gap_a:>18}", file=out)
    for kind, label in KIND_LABELS.items():
        rows = result.of_kind(kind)
        if rows:
            print(f"  {label} ({len(rows)})", file=out)
            for row in rows:
                print(_difference_line(row), file=out)


def run_reconcile(args: argparse.Namespace, out: TextIO) -> int:
    from contextlib import ExitStack

    from erpsync.connectors import config_errors, open_reader, open_writer
    from erpsync.reconcile import ReconcileError, days_before, reconcile, repush
    from erpsync.staging import staging_root

    include_dir = Path(args.include).resolve()
    try:
        scheme = find_scheme(args.scheme, include_dir)
        last = date.fromisoformat(args.day)
    except (SchemeError, ValueError) as exc:
        print(exc, file=out)
        return 2
    if args.days < 1:
        print("--days must be at least 1", file=out)
        return 2
    days = days_before(last, args.days)
    root = staging_root()
    try:
        with ExitStack() as stack:
            writer = stack.enter_context(open_writer(scheme.target))
            reconciled = reconcile(scheme, days, root, open_reader, writer)
            if args.repush:
                counts = repush(scheme, reconciled, root, writer)
                print(f"re-pushed: {', '.join(f'{n} {k}' for k, n in counts.items()) or 'nothing loadable'}", file=out)
                reconciled = reconcile(scheme, days, root, open_reader, writer)
    except ReconcileError as exc:
        print(exc, file=out)
        return 2
    except config_errors(scheme) as exc:
        print(exc, file=out)
        return 2
    for result in reconciled.results:
        if args.json:
            print(json.dumps(result.as_json(), ensure_ascii=False), file=out)
        else:
            print_day(result, out)
    return 0 if all(r.clean for r in reconciled.results) else 1


def add_reconcile_command(commands: Any) -> None:
    command = commands.add_parser(
        "reconcile", help="compare a scheme's documents in the source with the target's bills, per day"
    )
    command.add_argument("scheme", help="a scheme file, or a scheme's name or dag_id")
    command.add_argument("--day", required=True, help="the last day to reconcile, YYYY-MM-DD (the scheme's zone)")
    command.add_argument(
        "--days",
        type=int,
        default=1,
        help="how many days up to --day (default 1; the daily DAG uses settings.reconcile.days)",
    )
    command.add_argument("--json", action="store_true", help="one JSON object per day and line")
    command.add_argument(
        "--repush", action="store_true", help="save the missing bills loadable now, then reconcile again"
    )
    command.set_defaults(run=run_reconcile)
