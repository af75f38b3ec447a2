"""Validate: the scheme's Great Expectations suites over the staged orders and lines; failing orders are quarantined.

The suites are files in GX's own JSON form that the scheme names (``source.expectations``: one for the
orders, one for the lines; by default ``include/expectations/``). Their ``meta`` names the columns
that identify a row in the results (``index_columns``) and the columns read as exact decimals
(``decimal_columns``). A stock-out is quarantined as a whole when its header or any of its lines
breaks a rule: a bill with a line missing would be wrong, not just incomplete. ``quarantine.parquet``
lists each broken rule with the order (``order_id``, ``order_no``), the line (``line_id``) and the
offending value as received, the key columns being the ones the API definition names.

The rules run as vectorised checks compiled from the suites (``erpsync.steps.rules``) over the staged
Parquet files one row group at a time, so memory stays flat whatever the window's size, and GX is not
imported (that alone took seconds a run). ``quality/<suite>.json`` is each suite's result in GX's
result JSON, ``quality/summary.json`` the counts the reports read, and ``quality/docs/`` the Data Docs
pages (``erpsync.steps.quality_docs``).
"""

from __future__ import annotations

import io
import json
import logging
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from erpsync.run import Run
from erpsync.staging import RunFiles, StoragePath, write_bytes, write_json
from erpsync.steps.quality_docs import GX_STATIC, Validation, gx_version, shared_static, write_site
from erpsync.steps.rules import (
    Scan,
    Suite,
    ValidationSetupError,
    describe,
    load_suite,
    rule_result,
    scan,
    string_array,
    suite_result,
)

__all__ = [
    "GX_STATIC",
    "QUARANTINE_COLUMNS",
    "ValidateResult",
    "ValidationSetupError",
    "describe",
    "shared_static",
    "validate",
]

log = logging.getLogger(__name__)

QUARANTINE_COLUMNS = ["order_id", "order_no", "line_id", "suite", "rule", "check", "column", "value"]
DATASOURCE = "staging"  # the first half of each result's batch id, "staging-<suite>"
# pandas' record of a frame of "string" columns: pandas reads quarantine.parquet back as it always has
_PANDAS_METADATA = {
    "index_columns": [],
    "column_indexes": [],
    "columns": [
        {"name": c, "field_name": c, "pandas_type": "object", "numpy_type": "string", "metadata": None}
        for c in QUARANTINE_COLUMNS
    ],
}


@dataclass(frozen=True)
class ValidateResult:
    orders: int
    lines: int
    quarantined_orders: int
    broken_rules: int
    docs_index: str


def validate(run: Run) -> ValidateResult:
    """Run the scheme's ``orders`` suite on the staged orders and its ``lines`` suite on their lines
    (either may be absent: no rules for that table)."""
    files, keys = run.files, run.scheme.source.keys
    suites = {table: load_suite(path) for table, path in run.scheme.source.suites.items()}
    began = datetime.now(UTC)
    # lines first: a failing line names its order by number, which the orders' pass then looks up
    lines = scan(files.lines, suites.get("lines"), keys)
    lookup = keys.number not in lines.names
    wanted = {b.order_id for t in lines.tallies for b in t.broken if b.order_id is not None} if lookup else set()
    orders = scan(files.orders, suites.get("orders"), keys, lookup=wanted)

    quarantine: list[dict[str, str | None]] = []
    validations = []
    for table, found, path in (("orders", orders, files.orders), ("lines", lines, files.lines)):
        suite = suites.get(table)
        if suite is None:
            continue
        result = _result(suite, found, path, run.run_id, began, files)
        write_json(result, files.quality / f"{suite.name}.json")
        validations.append(Validation(suite, result, _batch_id(suite), path.name, run.run_id, began))
        numbers = orders.numbers if table == "lines" and lookup else None
        quarantine.extend(_quarantine_rows(suite, found, numbers))
    docs_index = write_site(files, validations)

    _write_quarantine(quarantine, files.quarantine)
    bad_orders = len({r["order_id"] if r["order_id"] is not None else r["order_no"] for r in quarantine} - {None})
    by_rule = Counter((r["suite"], r["rule"], r["column"]) for r in quarantine)
    summary = {
        "orders": orders.rows,
        "lines": lines.rows,
        "quarantined_orders": bad_orders,
        "broken_rules": len(quarantine),
        "by_rule": [{"suite": s, "rule": rule, "column": c, "count": n} for (s, rule, c), n in sorted(by_rule.items())],
    }
    write_json(summary, files.quality / "summary.json")
    for row in quarantine:
        log.warning(
            "Quarantined order %s (id %s, line %s): breaks %s (%s), value %r",
            row["order_no"],
            row["order_id"],
            row["line_id"],
            row["check"],
            row["rule"],
            row["value"],
        )
    return ValidateResult(
        orders=orders.rows,
        lines=lines.rows,
        quarantined_orders=bad_orders,
        broken_rules=len(quarantine),
        docs_index=str(docs_index),
    )


def _batch_id(suite: Suite) -> str:
    return f"{DATASOURCE}-{suite.name}"


def _result(
    suite: Suite, found: Scan, path: StoragePath, run_name: str, began: datetime, files: RunFiles
) -> dict[str, Any]:
    """The suite's GX result JSON (ExpectationSuiteValidationResult)."""
    batch_id = _batch_id(suite)
    meta = {
        "great_expectations_version": gx_version(),
        "validator": "erpsync.steps.rules: the suite as vectorised checks over the Parquet row groups (pyarrow)",
        "batch_spec": {"path": str(path), "reader": "pyarrow.parquet, one row group at a time"},
        "batch_markers": {"ge_load_time": began.strftime("%Y%m%dT%H%M%S.%fZ")},
        "active_batch_definition": {
            "datasource_name": DATASOURCE,
            "data_connector_name": "parquet",
            "data_asset_name": suite.name,
            "batch_identifiers": {"window": files.window.key},
        },
        "validation_id": None,
        "checkpoint_id": None,
        "run_id": {"run_name": run_name, "run_time": began.isoformat()},
        "validation_time": began.isoformat(),
        "batch_parameters": {},
    }
    results = [
        rule_result(rule, tally, suite, batch_id) for rule, tally in zip(suite.rules, found.tallies, strict=True)
    ]
    return suite_result(suite, results, meta)


def _quarantine_rows(suite: Suite, found: Scan, numbers: dict[str, str | None] | None) -> list[dict[str, str | None]]:
    """One row per (rule, failing row); ``numbers`` gives the order number of rows without one (lines)."""
    rows = []
    for tally in found.tallies:
        for broken in tally.broken:
            order_no = broken.order_no
            if numbers is not None and broken.order_id is not None:
                order_no = numbers.get(broken.order_id)
            rows.append(
                {
                    "order_id": broken.order_id,
                    "order_no": order_no,
                    "line_id": broken.line_id,
                    "suite": suite.name,
                    "rule": broken.rule.type,
                    "check": broken.rule.check,
                    "column": broken.rule.column,
                    "value": broken.value,
                }
            )
    return rows


def _write_quarantine(rows: list[dict[str, str | None]], path: StoragePath) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema(
        [(c, pa.string()) for c in QUARANTINE_COLUMNS], metadata={"pandas": json.dumps(_PANDAS_METADATA)}
    )
    table = pa.Table.from_arrays([string_array([r[c] for r in rows]) for c in QUARANTINE_COLUMNS], schema=schema)
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    write_bytes(buffer.getvalue(), path)
