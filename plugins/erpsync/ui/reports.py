"""What a window's staged files say: counts for lists and the trend, and the full report of one
window (quality, quarantine, Kingdee outcomes, Data Docs pages).

A window folded into its DAG's key index (``erpsync.keys``) gives its outcome counts from there, so
the trend over 720 windows reads no load report; the others count their load report's rows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from erpsync.keys import DagKeys
from erpsync.staging import WindowFolder
from erpsync.ui.staged import Duck, Staging

# outcome -> (中文, English); the order pages show them in
OUTCOMES: dict[str, tuple[str, str]] = {
    "created": ("已创建", "created in Kingdee"),
    "existing": ("已存在", "already in Kingdee"),
    "would_create": ("将创建", "would be created (dry run)"),
    "rejected": ("被拒绝", "rejected by Kingdee"),
    "held": ("暂扣", "held: base data missing in Kingdee"),
    "quarantined": ("隔离", "quarantined by a quality rule"),
    "unmapped": ("未映射", "could not be mapped"),
}
PROBLEMS = ("rejected", "held", "quarantined", "unmapped")  # a valid order that is not in Kingdee
ROW_LIMIT = 1000  # rows of one table on a page; the count says how many there are
QUALITY = "quality/summary.json"


def _rows(duck: Duck, sql: str, files: Sequence[str], **params: Any) -> list[dict[str, Any]]:
    if not files:
        return []
    return duck.rows(
        sql.format(src="read_parquet($files, filename=true, union_by_name=true, hive_partitioning=false)"),
        {"files": list(files), **params},
    )


@dataclass
class WindowSummary:
    dag_id: str
    folder: WindowFolder
    extract: dict[str, Any] | None
    quality: dict[str, Any] | None
    complete: dict[str, Any] | None
    outcomes: dict[str, int]
    loaded: bool  # the load step wrote its report

    @property
    def window(self) -> Any:
        return self.folder.window

    @property
    def filtered(self) -> bool:
        return self.folder.filters_digest is not None

    @property
    def dry_run(self) -> bool:
        return self.folder.dry_run

    @property
    def orders(self) -> int | None:
        for source in (self.extract, self.quality):
            if source and isinstance(source.get("orders"), int):
                return source["orders"]
        return None

    @property
    def checked(self) -> int | None:
        return self.quality.get("orders") if self.quality else None

    @property
    def quarantined_orders(self) -> int | None:
        return self.quality.get("quarantined_orders") if self.quality else None

    @property
    def passed(self) -> int | None:
        if self.checked is None or self.quarantined_orders is None:
            return None
        return self.checked - self.quarantined_orders

    @property
    def problems(self) -> int:
        return sum(self.outcomes.get(o, 0) for o in PROBLEMS)

    @property
    def in_kingdee(self) -> int:
        return self.outcomes.get("created", 0) + self.outcomes.get("existing", 0)

    @property
    def status(self) -> str:
        """complete | problems | dry_run | loaded | pruned | not_loaded"""
        if self.complete is not None and self.extract is None and self.quality is None and not self.loaded:
            return "pruned"
        if self.complete is not None:
            return "complete"
        if self.loaded and self.problems:
            return "problems"
        if self.loaded and self.outcomes.get("would_create"):
            return "dry_run"
        return "loaded" if self.loaded else "not_loaded"


def report_parts(staging: Staging, folder: WindowFolder) -> list[str]:
    report = f"{folder.dag_dir.name}/{folder.name}/load_report"
    names = sorted(n for n in staging.listdir(report) if n.startswith("part-") and n.endswith(".parquet"))
    return [staging.duck_name(f"{report}/{n}") for n in names]


def summaries(
    staging: Staging, duck: Duck, dag_id: str, folders: Sequence[WindowFolder], keys: DagKeys | None = None
) -> list[WindowSummary]:
    """One summary per folder, in the order given. Outcome counts: from the DAG's key index (``keys``)
    for the windows it holds whose files are still there (a window pruned to ``complete.json`` reads as
    pruned), for the others from their load reports, in one query."""
    found = {
        f.name: [staging.json_at(f"{dag_id}/{f.name}/{n}") for n in ("extract_summary.json", QUALITY, "complete.json")]
        for f in folders
    }
    indexed = keys.indexed if keys is not None else {}
    from_index = {f.name for f in folders if f.name in indexed and found[f.name][0] is not None}
    parts = {f.name: report_parts(staging, f) for f in folders if f.name not in from_index}
    counts: dict[str, dict[str, int]] = defaultdict(dict, {n: dict(indexed[n].outcomes) for n in from_index})
    files = [p for names in parts.values() for p in names]
    for row in _rows(duck, "select filename, outcome, count(*) as n from {src} group by all", files):
        folder = staging.from_duck(row["filename"]).split("/")[1]
        counts[folder][str(row["outcome"])] = counts[folder].get(str(row["outcome"]), 0) + int(row["n"])
    return [
        WindowSummary(
            dag_id=dag_id,
            folder=f,
            extract=found[f.name][0],
            quality=found[f.name][1],
            complete=found[f.name][2],
            outcomes=counts.get(f.name, {}),
            loaded=bool(counts.get(f.name)) if f.name in from_index else bool(parts[f.name]),
        )
        for f in folders
    ]


@dataclass
class WindowDetail:
    summary: WindowSummary
    filters: dict[str, Any] | None
    by_rule: list[dict[str, Any]]
    quarantine: list[dict[str, Any]]
    quarantine_total: int
    problems: list[dict[str, Any]]  # rejected, held, unmapped, quarantined rows of the load report
    problems_total: int
    loaded: list[dict[str, Any]]  # created, existing, would_create
    loaded_total: int
    unmapped: list[dict[str, Any]]
    suites: list[dict[str, Any]]
    docs: list[dict[str, str]] = field(default_factory=list)  # {"label", "path" (under quality/docs/)}


def detail(staging: Staging, duck: Duck, summary: WindowSummary) -> WindowDetail:
    path = summary.folder.path
    quarantine_file = [staging.duck_name(path / "quarantine.parquet")] if (path / "quarantine.parquet").exists() else []
    by_rule = _rows(
        duck,
        """
        select suite, "check", rule, "column", count(distinct coalesce(order_id, order_no)) as orders, count(*) as rows
        from {src} group by all order by orders desc, suite, "column"
    """,
        quarantine_file,
    )
    quarantine = _rows(
        duck,
        """
        select order_no, order_id, line_id, suite, "check", "column", value
        from {src} order by order_no nulls first, order_id, suite, "column", line_id limit $limit
    """,
        quarantine_file,
        limit=ROW_LIMIT,
    )
    quarantine_total = sum(r["rows"] for r in by_rule)

    parts = report_parts(staging, summary.folder)
    problems = _rows(
        duck,
        """
        select outcome, order_no, order_id, bill_no, field, message, "at" from {src}
        where outcome in ('rejected', 'held', 'unmapped', 'quarantined')
        order by case outcome when 'rejected' then 0 when 'held' then 1 when 'unmapped' then 2 else 3 end, order_no
        limit $limit
    """,
        parts,
        limit=ROW_LIMIT,
    )
    loaded = _rows(
        duck,
        """
        select outcome, bill_no, order_no, order_id, kingdee_number, kingdee_id, "at" from {src}
        where outcome in ('created', 'existing', 'would_create') order by outcome, bill_no limit $limit
    """,
        parts,
        limit=ROW_LIMIT,
    )
    unmapped_file = [staging.duck_name(path / "unmapped.parquet")] if (path / "unmapped.parquet").exists() else []
    unmapped = _rows(
        duck,
        "select order_no, order_id, field, message from {src} order by order_no limit $limit",
        unmapped_file,
        limit=ROW_LIMIT,
    )
    outcomes = summary.outcomes
    return WindowDetail(
        summary=summary,
        filters=staging.json(path / "filters.json"),
        by_rule=by_rule,
        quarantine=quarantine,
        quarantine_total=quarantine_total,
        problems=problems,
        problems_total=sum(outcomes.get(o, 0) for o in PROBLEMS),
        loaded=loaded,
        loaded_total=sum(outcomes.get(o, 0) for o in ("created", "existing", "would_create")),
        unmapped=unmapped,
        suites=_suites(staging, path),
        docs=_docs(staging, path),
    )


def _suites(staging: Staging, path: Any) -> list[dict[str, Any]]:
    """Each suite's GX result (quality/<suite>.json): its success and statistics."""
    quality = path / "quality"
    if not quality.exists():
        return []
    suites = []
    for child in sorted(quality.iterdir(), key=lambda p: p.name):
        if not child.name.endswith(".json") or child.name == "summary.json":
            continue
        result = staging.json(child)
        if not isinstance(result, dict):
            continue
        stats = result.get("statistics") or {}
        suites.append(
            {
                "name": child.name.removesuffix(".json"),
                "success": result.get("success"),
                "evaluated": stats.get("evaluated_expectations"),
                "successful": stats.get("successful_expectations"),
                "unsuccessful": stats.get("unsuccessful_expectations"),
                "percent": stats.get("success_percent"),
            }
        )
    return suites


def _docs(staging: Staging, path: Any) -> list[dict[str, str]]:
    """The Data Docs pages worth opening: each validation result, then each suite.

    GX's index.html lists them with JavaScript from CDNs, which the pages are not allowed to load
    (offline machines, and data values in those pages are not escaped by GX): link the pages."""
    pages = []
    for name in staging.find(path / "quality" / "docs"):
        parts = name.split("/")
        if not name.endswith(".html"):
            continue
        if parts[0] == "validations" and len(parts) >= 4:  # validations/<suite>/<run id>/<time>/<page>.html
            pages.append(
                {
                    "kind": "validation",
                    "label": parts[1],
                    "detail": " / ".join(parts[2:-1]),
                    "path": name,
                    "run": parts[2],
                }
            )
        elif parts[0] == "expectations":
            pages.append({"kind": "suite", "label": parts[-1].removesuffix(".html"), "detail": "", "path": name})
    return sorted(pages, key=lambda p: (p["kind"] != "validation", p["label"], p["detail"]))
