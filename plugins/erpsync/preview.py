"""``python -m erpsync preview``: the Kingdee payload a scheme builds for one order, field by field.

The order comes from a JSON file (one order as the API returns it, or a whole response), from the
staged windows (``--number``: newest window first), or, when the staging holds no such order and
``--window`` is given, from the source itself through the scheme's connector and connection. Nothing is posted. Each field
is printed with the value Kingdee would receive, the mapping row's value and the source values it
read; rows that send nothing are listed apart.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from erpsync.mapping.maps import MapMiss
from erpsync.scheme import Scheme, SchemeError, load_scheme
from erpsync.staging import staging_root

Record = dict[str, Any]


class PreviewError(ValueError):
    """The order asked for cannot be found or read."""


def _orders_in(data: Any, scheme: Scheme) -> list[Mapping[str, Any]]:
    api = scheme.source.api
    if isinstance(data, Mapping) and isinstance(data.get(api.list_key), list):
        return data[api.list_key]
    if isinstance(data, list):
        return data
    if isinstance(data, Mapping):
        return [data]
    raise PreviewError(f"expected an order object, a list of orders or a response with {api.list_key!r}")


def _pick(orders: Sequence[Mapping[str, Any]], number: str | None, scheme: Scheme, where: str) -> Mapping[str, Any]:
    key = scheme.source.api.number_key
    if number is not None:
        orders = [o for o in orders if str(o.get(key)) == number]
    if not orders:
        raise PreviewError(f"{where}: no order {number}")
    if len(orders) > 1:
        raise PreviewError(f"{where}: {len(orders)} orders; say which with --number ({key})")
    return orders[0]


def order_from_file(path: Path, scheme: Scheme, number: str | None) -> tuple[Record, list[Record]]:
    from erpsync.steps.extract import ExtractError, stage_rows

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return stage_rows(_pick(_orders_in(data, scheme), number, scheme, str(path)), scheme.source.api)
    except (OSError, ValueError, ExtractError) as exc:
        raise PreviewError(f"{path}: {exc}") from None


def _staged_windows(root: Any, dag_id: str) -> Iterator[Any]:
    folder = root / dag_id
    if folder.exists():
        yield from sorted(
            (p for p in folder.iterdir() if p.name.startswith("window=")), key=lambda p: p.name, reverse=True
        )


def order_from_staging(root: Any, scheme: Scheme, number: str) -> tuple[Record, list[Record], str] | None:
    """The newest staged copy of the order: its row, its lines and the window folder."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    keys = scheme.source.keys
    for folder in _staged_windows(root, scheme.dag_id):
        orders_file, lines_file = folder / "orders.parquet", folder / "lines.parquet"
        if not orders_file.exists():
            continue
        with orders_file.open("rb") as fh:
            orders = pq.read_table(fh)
        found = orders.filter(pc.fill_null(pc.equal(orders[keys.number], number), False)).to_pylist()
        if not found:
            continue
        order = found[0]
        with lines_file.open("rb") as fh:
            lines = pq.read_table(fh, filters=[(keys.order, "=", order[keys.order])]).to_pylist()
        return order, lines, str(folder)
    return None


def order_from_source(scheme: Scheme, number: str, window: Any, connection: str) -> tuple[Record, list[Record]]:
    """The order numbered ``number`` in ``window``, asked of the scheme's source through its connector."""
    from erpsync.connectors import open_reader
    from erpsync.steps.extract import stage_rows

    api = scheme.source.api
    if not api.number_param or api.number_param not in scheme.source.filter_fields:
        raise PreviewError(
            f"{scheme.path}: {api.method} cannot be asked for one order by number here "
            f"(its number_param {api.number_param or 'is not defined'}, or the scheme sets it)"
        )
    with open_reader(scheme.source, connection) as reader:
        orders = list(reader.orders(window, {api.number_param: number}))
    return stage_rows(_pick(orders, number, scheme, f"{scheme.source.system} {window}"), api)


def explain(
    scheme: Scheme, order: Record, lines: Sequence[Record], now: datetime | None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The bill and, per target field, what Kingdee receives and where it came from."""
    from erpsync.mapping.compile import compile_mapping
    from erpsync.steps.transform import line_sort_key

    mapping = compile_mapping(scheme)
    lines = sorted(lines, key=lambda line: line_sort_key(line.get(scheme.source.keys.line)))  # as a run orders them
    bill = mapping.build(order, lines, now)  # raises MappingError naming the field
    model = bill.model
    rows: list[dict[str, Any]] = []

    def add(path: str, rule: Any, target: Mapping[str, Any], resolve: Any) -> None:
        sources = {}
        for name in rule.value.placeholders:
            try:
                sources[name] = resolve(name)
            except MapMiss as exc:
                sources[name] = f"<{exc}>"
        rows.append(
            {
                "field": path,
                "label": rule.row.label,
                "sent": rule.field.key in target,
                "value": target.get(rule.field.key),
                "rule": rule.row.value,
                "sources": sources,
            }
        )

    header = mapping.resolver(order, lines)
    for rule in mapping.header:
        add(rule.field.key, rule, model, header)
    for entity, rules in mapping.subheads.items():
        for rule in rules:
            add(f"{entity}.{rule.field.key}", rule, model.get(entity, {}), header)
    for index, line in enumerate(lines):
        resolve = mapping.resolver(order, lines, line)
        for rule in mapping.entry:
            add(f"{mapping.entry_entity}[{index}].{rule.field.key}", rule, model[mapping.entry_entity][index], resolve)
    request = mapping.request
    payload = {"formid": request.form_id, "service": request.service, "data": {**request.options, "Model": [model]}}
    return payload, rows


def print_preview(payload: Mapping[str, Any], rows: Sequence[Mapping[str, Any]], out: TextIO) -> None:
    def text(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False)

    width = max((len(r["field"]) for r in rows), default=10)
    for row in (r for r in rows if r["sent"]):
        sources = ", ".join(f"{k}={v!r}" for k, v in row["sources"].items())
        print(
            f"{row['field']:<{width}}  {text(row['value'])}  <- {row['rule'] or '(empty)'}"
            + (f"  [{sources}]" if sources else "")
            + f"  {row['label']}",
            file=out,
        )
    unsent = [r for r in rows if not r["sent"]]
    if unsent:
        print("\nNot sent (no value: Kingdee applies its default):", file=out)
        for row in unsent:
            sources = ", ".join(f"{k}={v!r}" for k, v in row["sources"].items())
            print(
                f"  {row['field']:<{width}}  <- {row['rule'] or '(empty)'}" + (f"  [{sources}]" if sources else ""),
                file=out,
            )
    print("\nPayload (not posted):", file=out)
    print(json.dumps(payload, ensure_ascii=False, indent=2), file=out)


def run_preview(args: argparse.Namespace, out: TextIO) -> int:
    from erpsync.mapping.compile import MappingError
    from erpsync.windows import Window, parse_datetime

    include_dir = Path(args.include).resolve()
    if not args.order and not args.number:
        print("say which order: --order FILE.json or --number NUMBER", file=out)
        return 2
    try:
        scheme = load_scheme(Path(args.scheme), include_dir)
    except SchemeError as exc:
        print(exc, file=out)
        return 1
    zone = scheme.settings.timezone  # times without an offset are the scheme's, as a run's params
    window = (
        Window.of(
            parse_datetime(args.window[0], "window start", zone),
            parse_datetime(args.window[1], "window end", zone),
            zone,
        )
        if args.window
        else None
    )
    now = parse_datetime(args.now, "now", zone) if args.now else (window.end if window else None)
    try:
        if args.order:
            order, lines = order_from_file(Path(args.order), scheme, args.number)
            origin = args.order
        else:
            staged = order_from_staging(staging_root(args.staging_root), scheme, args.number)
            if staged is not None:
                order, lines, origin = staged
            elif window is not None:
                order, lines = order_from_source(
                    scheme, args.number, window, args.connection or scheme.source.connection
                )
                origin = f"{scheme.source.system}, {window}"
            else:
                raise PreviewError(f"{args.number} is in no staged window; give --window START END to ask the source")
        payload, rows = explain(scheme, order, lines, now)
    except PreviewError as exc:
        print(exc, file=out)
        return 1
    except MappingError as exc:
        print(f"order {args.number or ''} cannot be mapped: {exc} (the run would list it as unmapped)", file=out)
        return 1
    keys = scheme.source.keys
    print(
        f"{scheme.path.name}: order {order.get(keys.number)} (id {order.get(keys.order)}, {len(lines)} lines) "
        f"from {origin}; NOW() = {now or 'the time of the run'}\n",
        file=out,
    )
    print_preview(payload, rows, out)
    return 0


def add_preview_command(commands: Any) -> None:
    parser = commands.add_parser("preview", help="print the Kingdee payload for one order, nothing posted")
    parser.add_argument("scheme", help="the scheme file")
    parser.add_argument("--order", help="a JSON file: one order as the API returns it, or a whole response")
    parser.add_argument(
        "--number",
        "--stockout-no",
        dest="number",
        help="the order's number (the API's number_key: a stock-out's or stock-in's order_no): read from the "
        "staged windows, else from the source (with --order: which order of the file)",
    )
    parser.add_argument(
        "--window", nargs=2, metavar=("START", "END"), help="where the source is asked when staging lacks it"
    )
    parser.add_argument(
        "--staging-root", help="a path or URL (default: [erpsync] staging_root, else AIRFLOW_HOME/staging)"
    )
    parser.add_argument("--connection", help="the source connection id (default: the scheme's)")
    parser.add_argument("--now", help="what NOW()/CURDATE() give (default: the window end, else the clock)")
    parser.set_defaults(run=run_preview)
