"""What every page needs: the schemes (re-read when a file changes), the staging root, and the DAGs
the signed-in user may read (Airflow's auth manager decides, as for its own pages)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from erpsync.scheme import Scheme, load_folder
from erpsync.staging import StoragePath
from erpsync.ui.staged import Staging

_lock = threading.Lock()
_cache: dict[Path, tuple[tuple[Any, ...], dict[str, Scheme], list[str]]] = {}


def _signature(include_dir: Path) -> tuple[Any, ...]:
    files = sorted(
        p for sub in ("schemes", "apis", "expectations") for p in (include_dir / sub).glob("*") if p.is_file()
    )
    return tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in files)


def current_schemes(include_dir: Path) -> tuple[dict[str, Scheme], list[str]]:
    """dag_id -> scheme for every scheme that loads, and the problems of those that do not."""
    signature = _signature(include_dir)
    with _lock:
        cached = _cache.get(include_dir)
        if cached is not None and cached[0] == signature:
            return cached[1], cached[2]
    schemes, found = load_folder(include_dir)  # one broken file must not hide the other DAGs' reports
    problems = [str(p) for p in found]
    by_dag: dict[str, Scheme] = {}
    for scheme in schemes:
        by_dag.setdefault(scheme.dag_id, scheme)
    with _lock:
        _cache[include_dir] = (signature, by_dag, problems)
    return by_dag, problems


def readable_dags(user: Any, dag_ids: set[str]) -> set[str]:
    """The DAGs of ``dag_ids`` the user may read."""
    from airflow.api_fastapi.app import get_auth_manager

    if not dag_ids:
        return set()
    return set(get_auth_manager().filter_authorized_dag_ids(dag_ids=set(dag_ids), user=user, method="GET"))


def may_read_runs(user: Any, dag_id: str) -> bool:
    """Whether the user may read the runs of ``dag_id`` (a window's report is run data)."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails

    return bool(
        get_auth_manager().is_authorized_dag(
            method="GET", access_entity=DagAccessEntity.RUN, details=DagDetails(id=dag_id), user=user
        )
    )


@dataclass
class Context:
    staging: Staging
    include_dir: Path
    schemes: dict[str, Scheme]  # every loadable scheme, readable or not
    scheme_problems: list[str]
    dags: list[str]  # the DAGs this user may read: schemes and staged folders alike
    user: Any

    def scheme(self, dag_id: str) -> Scheme | None:
        return self.schemes.get(dag_id)

    def readable_schemes(self) -> dict[str, Scheme | None]:
        return {d: self.schemes.get(d) for d in self.dags}


def build(root: Callable[[], StoragePath], include_dir: Path, user: Any) -> Context:
    schemes, problems = current_schemes(include_dir)
    staging = Staging(root(), {dag_id: s.settings.timezone for dag_id, s in schemes.items()})
    known = set(schemes) | set(staging.dag_ids())
    return Context(staging, include_dir, schemes, problems, sorted(readable_dags(user, known)), user)
