"""Where a day's reconciliation is kept: ``<staging root>/<dag_id>/reconcile/day=YYYY-MM-DD/``, beside the
scheme's window folders, each run replacing the day's files:

- ``summary.json``: day, scheme, totals of both sides, the count of each kind, when it ran;
- ``differences.parquet``: every difference (``compare.DIFFERENCE_COLUMNS``, text);
- ``totals.parquet``: both sides per party, warehouse and material (``compare.GROUP_COLUMNS``, text);
- ``repush/``: the report of the last re-push, if any (the load report's columns).
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import pendulum

from erpsync.reconcile.compare import DIFFERENCE_COLUMNS, GROUP_COLUMNS, DayResult
from erpsync.staging import StoragePath, read_json, read_parquet, write_json, write_parquet

FOLDER = "reconcile"
_DAY = re.compile(r"^day=(\d{4}-\d{2}-\d{2})$")


def day_folder(root: StoragePath, dag_id: str, day: date | str) -> StoragePath:
    text = day if isinstance(day, str) else day.isoformat()
    return root / dag_id / FOLDER / f"day={text}"


def write_day(root: StoragePath, result: DayResult) -> StoragePath:
    import pandas as pd

    folder = day_folder(root, result.dag_id, result.day)
    folder.mkdir(parents=True, exist_ok=True)
    differences = pd.DataFrame(result.differences, columns=DIFFERENCE_COLUMNS).astype("string")
    write_parquet(differences, folder / "differences.parquet")
    write_parquet(pd.DataFrame(result.groups, columns=GROUP_COLUMNS).astype("string"), folder / "totals.parquet")
    write_json(
        {
            "day": result.day,
            "scheme": result.scheme,
            "dag_id": result.dag_id,
            "totals": result.totals,
            "counts": result.counts,
            "reconciled_at": pendulum.now("UTC").isoformat(),
        },
        folder / "summary.json",
    )
    return folder


def reconciled_days(root: StoragePath, dag_id: str) -> list[dict[str, Any]]:
    """The summaries of every reconciled day of ``dag_id``, newest first."""
    base = root / dag_id / FOLDER
    if not base.exists():
        return []
    found = []
    for child in base.iterdir():
        if _DAY.match(child.name) and (child / "summary.json").exists():
            found.append(read_json(child / "summary.json"))
    return sorted(found, key=lambda s: s["day"], reverse=True)


def read_day(root: StoragePath, dag_id: str, day: str) -> DayResult | None:
    """The stored reconciliation of ``day``; None if the day was never reconciled."""
    folder = day_folder(root, dag_id, day)
    if not (folder / "summary.json").exists():
        return None
    summary = read_json(folder / "summary.json")

    def rows(name: str) -> list[dict[str, Any]]:
        import pandas as pd

        frame = read_parquet(folder / name)
        return [{k: (None if pd.isna(v) else v) for k, v in r.items()} for r in frame.to_dict("records")]

    return DayResult(
        summary["day"],
        summary["scheme"],
        summary["dag_id"],
        summary["totals"],
        rows("totals.parquet"),
        rows("differences.parquet"),
    )
