"""One run of a scheme over one window: what every step is given.

The DAG builds a :class:`Run` in each task from the scheme and the manifest the tasks pass along
(window, filters, dry run; XCom carries nothing else); a test or a shell builds one with
:meth:`Run.open`. The steps read all they need from it: the scheme (source API, suites, form, load
settings), the compiled mapping, the window and its staging folder.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from erpsync.mapping.compile import BillMapping, compile_mapping
from erpsync.scheme import Scheme
from erpsync.staging import RunFiles, StoragePath, staging_root
from erpsync.windows import Window


@dataclass(frozen=True)
class Run:
    scheme: Scheme
    window: Window
    files: RunFiles
    filters: Mapping[str, str] = field(default_factory=dict)
    dry_run: bool = False
    run_id: str = "manual"  # names the validation results (Airflow's run id in a DAG run)
    compiled: BillMapping | None = field(default=None, repr=False)  # the DAG's, compiled once at parse time

    @property
    def mapping(self) -> BillMapping:
        """The scheme's compiled mapping (compiled on first use when the run was not given it)."""
        if self.compiled is None:
            object.__setattr__(self, "compiled", compile_mapping(self.scheme))
        assert self.compiled is not None
        return self.compiled

    @classmethod
    def open(
        cls,
        scheme: Scheme,
        window: Window,
        root: StoragePath | None = None,
        *,
        filters: Mapping[str, str] | None = None,
        dry_run: bool = False,
        run_id: str = "manual",
        mapping: BillMapping | None = None,
    ) -> Run:
        """The run of ``scheme`` over ``window`` (in the scheme's zone: it names the staging folder),
        staged under ``root`` (default: the staging root)."""
        window = window.in_timezone(scheme.settings.timezone)
        filters = dict(filters or {})
        files = RunFiles(root if root is not None else staging_root(), scheme.dag_id, window, filters, dry_run)
        return cls(scheme, window, files, filters, dry_run, run_id, mapping)

    @classmethod
    def from_manifest(
        cls,
        scheme: Scheme,
        manifest: Mapping[str, Any],
        *,
        root: StoragePath | None = None,
        run_id: str = "manual",
        mapping: BillMapping | None = None,
    ) -> Run:
        """The run a task's manifest (``as_manifest``) describes."""
        return cls.open(
            scheme,
            Window.from_dict(manifest["window"]),
            root,
            filters=manifest.get("filters") or {},
            dry_run=bool(manifest.get("dry_run")),
            run_id=run_id,
            mapping=mapping,
        )

    def as_manifest(self) -> dict[str, Any]:
        """What the next task needs to rebuild this run (JSON, for XCom)."""
        return {"window": self.window.as_dict(), "filters": dict(self.filters), "dry_run": self.dry_run}

    @property
    def whole(self) -> bool:
        """Whether the run covered its whole window for real (no filters, not a dry run)."""
        return not self.filters and not self.dry_run
