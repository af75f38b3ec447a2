"""Transform: one Kingdee Model per valid order of the window, from the scheme's compiled mapping.

Memory stays flat whatever the window's size: orders are read ``chunk_rows`` at a time, and only the
columns the mapping reads (``BillMapping.source_columns``) and the keys; ``bills.jsonl`` is written as
each chunk is built, to a local file copied into place at the end (a reader never sees part of it).

Lines are matched to their orders by merging the two files as streams. The extract step writes each
order's lines right after the order, in the order of ``orders.parquet`` (the paginator yields every
order once, with its lines), so ``lines.parquet`` is a run of lines per order, in that same order. A
chunk takes the lines whose order id is among its orders (in any order within the chunk) and stops at
the first line of a later order, which waits for its chunk. A line still waiting at the end (its order
is not in ``orders.parquet``, or the files are not in one sequence) fails the step before any file is
written: a bill never loses a line silently. Lines without an order id belong to no order and are
skipped, as before (the validate step lists them).

Quarantined orders (``order_id`` of ``quarantine.parquet``) and orders without an id are skipped. A
bill's lines are in line-id order: numerically where ids are numbers, then as text, stable otherwise.
An order the mapping cannot build (a value that is not a number, a missing bill number, no lines…) is
listed in ``unmapped.parquet`` with the field and the reason, never dropped silently. Column names are
the API definition's (``SourceKeys``); the files written name them ``order_id``, ``order_no``.

A rerun begins by removing the window's key file (:func:`erpsync.keys.drop_keys`): the orders it lists may
have been read again, and the load writes it anew.
"""

from __future__ import annotations

import logging
import re
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from erpsync.keys import drop_keys
from erpsync.mapping.compile import Bill, BillMapping, MappingError
from erpsync.run import Run
from erpsync.scheme import Scheme, SourceKeys
from erpsync.staging import RunFiles, StoragePath, put_file, write_json

log = logging.getLogger(__name__)

UNMAPPED_COLUMNS = ["order_id", "order_no", "field", "message"]
CHUNK_ROWS = 1000  # orders per chunk: as fast as 20,000 (measured), a few MB

# what pandas.to_numeric reads as a number: ASCII digits, sign, fraction, exponent, inf ("nan" is not one)
_NUMBER = re.compile(
    r"[ \t\n\v\f\r]*[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf(?:inity)?)[ \t\n\v\f\r]*",
    re.IGNORECASE | re.ASCII,
)


class TransformError(RuntimeError):
    """Staged files the transform cannot read as one window (not a problem of one order)."""


@dataclass(frozen=True)
class TransformResult:
    bills: int
    unmapped: int
    skipped_quarantined: int


def line_sort_key(line_id: Any) -> tuple[int, float, str]:
    """Where the former pandas sort put a line: by ``to_numeric`` value (ids that are not numbers after
    all numbers), then by the id as text; ids missing last."""
    if line_id is None:
        return (2, 0.0, "")
    text = line_id if isinstance(line_id, str) else str(line_id)
    if (text.isascii() and text.isdigit()) or _NUMBER.fullmatch(text):
        return (0, float(text), text)
    return (1, 0.0, text)


def _chunks(path: StoragePath, wanted: Iterable[str], rows: int, key: str) -> Iterator[list[dict[str, Any]]]:
    """The file's rows as dicts, ``rows`` at a time, with only the ``wanted`` columns it has."""
    import pyarrow.parquet as pq

    with path.open("rb") as handle:
        parquet = pq.ParquetFile(handle)
        names = parquet.schema_arrow.names
        if key not in names:
            raise TransformError(f"{path.name} has no column {key}")
        wanted = set(wanted)
        columns = [c for c in names if c in wanted]  # a mapped field the file lacks is NULL, as .get() gives
        buffer: list[dict[str, Any]] = []
        # a row group at a time (extract writes them of 10,000 rows): iter_batches' memory grows with the file
        for group in range(parquet.num_row_groups):
            table = parquet.read_row_group(group, columns=columns, use_threads=False)
            for batch in table.to_batches(max_chunksize=rows):
                # column lists zipped into dicts: several times faster than RecordBatch.to_pylist()
                values = [column.to_pylist() for column in batch.columns]
                buffer.extend(dict(zip(batch.schema.names, row, strict=True)) for row in zip(*values, strict=True))
                while len(buffer) >= rows:
                    yield buffer[:rows]
                    buffer = buffer[rows:]
            del table
        if buffer:
            yield buffer


class _Lines:
    """``lines.parquet`` read alongside the orders: each chunk of orders takes the lines that follow."""

    def __init__(self, files: RunFiles, columns: set[str], keys: SourceKeys, rows: int) -> None:
        self._key = keys.order
        self._rows = (line for chunk in _chunks(files.lines, columns, rows, keys.order) for line in chunk)
        self.waiting = self._next()

    def _next(self) -> dict[str, Any] | None:
        while (line := next(self._rows, None)) is not None and line[self._key] is None:
            pass  # a line without an order id belongs to no order
        return line

    def take(self, orders: list[dict[str, Any]]) -> dict[Any, list[dict[str, Any]]]:
        """The lines of these orders, by order id: up to the first line of an order not among them."""
        key = self._key
        lines: dict[Any, list[dict[str, Any]]] = {o[key]: [] for o in orders if o[key] is not None}
        while self.waiting is not None and self.waiting[key] in lines:
            lines[self.waiting[key]].append(self.waiting)
            self.waiting = self._next()
        return lines

    def close(self) -> None:
        self._rows.close()


def _quarantined(files: RunFiles) -> set[str]:
    import pyarrow.parquet as pq

    with files.quarantine.open("rb") as handle:
        return {v for v in pq.read_table(handle, columns=["order_id"]).column(0).to_pylist() if v is not None}


def bill_record(bill: Bill, order: Mapping[str, Any], keys: SourceKeys, requires: Sequence[str]) -> dict[str, Any]:
    """A ``bills.jsonl`` record: the bill, the order it was built from, and the values the bills it
    requires hold (``target.requires``' source fields, in that order)."""
    record = {
        "bill_no": bill.bill_no,
        "order_id": str(order.get(keys.order)),
        "order_no": order.get(keys.number),
        "model": bill.model,
    }
    if requires:
        record["requires"] = [order.get(f) for f in requires]
    return record


def save_request(scheme: Scheme, mapping: BillMapping) -> dict[str, Any]:
    """How the target is to save the scheme's bills (``request.json``): form, bill key, options, the
    base-data forms to check and the bills they require."""
    request = mapping.request
    return {
        "form_id": request.form_id,
        "bill_key": mapping.bill_key,  # the field the target looks bills up by: the one they were built with
        "service": request.service,
        "options": dict(request.options),
        "base_data": dict(request.base_data),
        "requires": [r.model_dump(exclude={"value"}) for r in scheme.target.requires],
    }


def transform(run: Run, chunk_rows: int = CHUNK_ROWS) -> TransformResult:
    """Build the window's bills; the window's end is what NOW()/CURDATE() give in the mapping, so
    reruns build the same bills."""
    mapping, files, keys, now = run.mapping, run.files, run.scheme.source.keys, run.window.end
    import msgspec  # Airflow's own dependency: the bytes of json.dumps(ensure_ascii=False), 10x faster
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1, got {chunk_rows}")
    drop_keys(files.dir)
    order_columns, line_columns = mapping.source_columns()
    quarantined = _quarantined(files)
    encode = msgspec.json.Encoder().encode
    empty = pd.DataFrame(columns=UNMAPPED_COLUMNS).astype("string")
    unmapped_schema = pa.Schema.from_pandas(empty, preserve_index=False)  # as write_parquet writes it
    bills = unmapped = skipped = 0

    def line_order(line: dict[str, Any]) -> tuple[int, float, str]:
        return line_sort_key(line.get(keys.line))

    with tempfile.TemporaryDirectory(prefix="erpsync-transform-") as tmp:
        bills_file, unmapped_file = Path(tmp) / "bills.jsonl", Path(tmp) / "unmapped.parquet"
        lines = _Lines(files, line_columns | {keys.order, keys.line}, keys, chunk_rows)
        with open(bills_file, "wb") as out, pq.ParquetWriter(unmapped_file, unmapped_schema) as unmapped_out:
            requires = [r.source_field for r in run.scheme.target.requires]
            read = order_columns | {keys.order, keys.number, *requires}
            order_chunks = _chunks(files.orders, read, chunk_rows, keys.order)
            for orders in order_chunks:
                lines_of = lines.take(orders)
                failed: list[dict[str, Any]] = []
                for order in orders:
                    order_id = order[keys.order]
                    if order_id is None or order_id in quarantined:
                        skipped += 1
                        continue
                    order_lines = lines_of[order_id]
                    if len(order_lines) > 1:
                        order_lines.sort(key=line_order)
                    order_no = order.get(keys.number)
                    try:
                        bill = mapping.build(order, order_lines, now)
                    except MappingError as exc:
                        failed.append(
                            {
                                "order_id": str(order_id),
                                "order_no": order_no,
                                "field": exc.field,
                                "message": exc.message,
                            }
                        )
                        log.warning("Order %s (id %s) cannot be mapped: %s", order_no, order_id, exc)
                        continue
                    out.write(encode(bill_record(bill, order, keys, requires)))
                    out.write(b"\n")
                    bills += 1
                if failed:
                    unmapped_out.write_table(pa.Table.from_pylist(failed, schema=unmapped_schema))
                    unmapped += len(failed)
        left = lines.waiting
        lines.close()
        if left is not None:
            raise TransformError(
                f"{files.lines.name}: line {left.get(keys.line)!r} of order {left[keys.order]!r} does not follow"
                f" its order in {files.orders.name}'s sequence (or the order is not there), as extract writes them"
            )
        put_file(bills_file, files.bills)
        put_file(unmapped_file, files.unmapped)
    write_json(save_request(run.scheme, mapping), files.request)
    log.info("Built %d bills; %d orders unmapped, %d quarantined", bills, unmapped, skipped)
    return TransformResult(bills=bills, unmapped=unmapped, skipped_quarantined=skipped)
