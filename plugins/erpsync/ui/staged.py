"""Reading the staging root for the pages: its DAG and window folders, small JSON files, and DuckDB
over its Parquet files, whether the root is a local folder or object storage.

Only names found by listing the root, or checked against the patterns the pipeline writes, ever
become paths: nothing a user types does.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from fsspec.implementations.dirfs import DirFileSystem

from erpsync.staging import (
    StoragePath,
    WindowFolder,
    child_names,
    folders,
    is_local,
    parse_folder,
    window_folders,
    window_names,
)
from erpsync.windows import SHANGHAI, Window

DAG_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,249}$")  # the scheme's dag_id pattern (and Airflow's length)
_PROTOCOL = "erpsync"  # DuckDB reads object storage through this fsspec name, rooted at the staging root


class _Rooted(DirFileSystem):
    """The staging root's filesystem under its own protocol name, so DuckDB's own s3/gcs/http
    readers never compete with the connection Airflow configured."""

    protocol = _PROTOCOL


class Staging:
    """The staging root as the pages read it."""

    def __init__(self, root: StoragePath, zones: Mapping[str, str] | None = None) -> None:
        self.root = root
        self.zones = dict(zones or {})  # dag_id -> its scheme's zone, in which its folders are keyed
        self.local = is_local(root)
        self._base = root.path.rstrip("/")
        self._names: dict[str, list[str]] = {}

    # -- folders ------------------------------------------------------------------------------
    def dag_ids(self) -> list[str]:
        if not self.root.exists():
            return []
        return sorted(c.name for c in self.root.iterdir() if DAG_ID.match(c.name) and c.is_dir())

    def zone(self, dag_id: str) -> str:
        """The zone of ``dag_id``'s window keys (a DAG whose scheme is gone: the default zone)."""
        return self.zones.get(dag_id, SHANGHAI)

    def windows(self, dag_id: str) -> list[WindowFolder]:
        return window_folders(self.root, dag_id, self.zone(dag_id)) if DAG_ID.match(dag_id) else []

    def names(self, dag_id: str) -> list[str]:
        """The names of ``dag_id``'s window folders, newest first, unparsed (a year of hourly windows
        is 8,760 of them: the pages parse only those they show). Listed once per page: a Staging
        lives for one request."""
        if dag_id not in self._names:
            self._names[dag_id] = window_names(self.root, dag_id) if DAG_ID.match(dag_id) else []
        return self._names[dag_id]

    def folders(self, dag_id: str, names: list[str]) -> list[WindowFolder]:
        """The window folders ``names`` of ``dag_id`` (from ``names``), in that order."""
        return folders(self.root / dag_id, names, self.zone(dag_id)) if DAG_ID.match(dag_id) else []

    def parse(self, dag_id: str, name: str) -> tuple[Window, str | None, bool] | None:
        """What the folder ``name`` of ``dag_id`` stands for (``erpsync.staging.parse_folder``)."""
        return parse_folder(name, self.zone(dag_id))

    def window(self, dag_id: str, name: str) -> WindowFolder | None:
        """The folder ``name`` of ``dag_id`` if it is a window folder that exists."""
        parsed = self.parse(dag_id, name)
        if parsed is None or not DAG_ID.match(dag_id):
            return None
        found = WindowFolder(self.root / dag_id, name, *parsed)
        return found if found.path.exists() else None

    def relative(self, path: StoragePath) -> str:
        """``path`` relative to the root (e.g. ``dag/window=…/orders.parquet``)."""
        full = path.path.rstrip("/")
        if not full.startswith(self._base):
            raise ValueError(f"{path} is not under the staging root {self.root}")
        return full[len(self._base) :].lstrip("/")

    def find(self, folder: StoragePath) -> list[str]:
        """Every file under ``folder``, relative to it, sorted."""
        if not folder.exists():
            return []
        base = folder.path.rstrip("/")
        return sorted(p[len(base) :].lstrip("/") for p in folder.fs.find(folder.path))

    # -- by relative name: a path object costs 0.1 ms to make, and a year of windows is 8,760 folders
    def full(self, relative: str) -> str:
        return f"{self._base}/{relative}"

    def listdir(self, relative: str) -> list[str]:
        """The names in the folder ``relative`` (to the root); none if it is not there."""
        return child_names(self.root / relative)  # one path object per listing, not per name

    def exists(self, relative: str) -> bool:
        if self.local:
            return os.path.exists(self.full(relative))
        self.root.fs.invalidate_cache(self.full(relative))  # not the listing a client cached
        return bool(self.root.fs.exists(self.full(relative)))

    def json_at(self, relative: str) -> Any:
        """The JSON document at ``relative`` (to the root); None if it is missing or unreadable."""
        try:
            if self.local:
                with open(self.full(relative), "rb") as handle:
                    return json.loads(handle.read())
            return json.loads(self.root.fs.cat_file(self.full(relative)))
        except (FileNotFoundError, ValueError, OSError):
            return None

    # -- small files --------------------------------------------------------------------------
    @staticmethod
    def json(path: StoragePath) -> Any:
        """The JSON document at ``path``; None if it is missing or unreadable (a step still writing)."""
        try:
            return json.loads(path.read_text())
        except (FileNotFoundError, ValueError, OSError):
            return None

    # -- Parquet through DuckDB ---------------------------------------------------------------
    def duck(self) -> Duck:
        return Duck(self)

    def duck_name(self, path: StoragePath | str) -> str:
        """What DuckDB is given for a file or glob under the root (``str``: relative to the root)."""
        relative = path if isinstance(path, str) else self.relative(path)
        if self.local:
            return os.path.join(self._base, relative)
        return f"{_PROTOCOL}://{relative}"

    def from_duck(self, name: str) -> str:
        """A DuckDB ``filename`` back to a path relative to the root."""
        if self.local:
            return os.path.relpath(name, self._base).replace(os.sep, "/")
        return name.split("://", 1)[-1].lstrip("/")


class Duck:
    """An in-memory DuckDB connection that reads the staging root; every value goes in as a parameter."""

    def __init__(self, staging: Staging) -> None:
        import duckdb

        self.staging = staging
        self.con = duckdb.connect(":memory:")
        self.con.execute("set enable_progress_bar = false")  # it draws on the api-server's terminal
        self._tables: dict[tuple[tuple[str, ...], str], str] = {}
        if not staging.local:
            self.con.register_filesystem(_Rooted(path=staging.root.path, fs=staging.root.fs))

    def __enter__(self) -> Duck:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.con.close()

    def rows(self, sql: str, params: dict[str, Any] | Sequence[Any] | None = None) -> list[dict[str, Any]]:
        cursor = self.con.execute(sql, params or {})
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def table(self, files: Sequence[str], columns: str) -> str:
        """A temporary table of ``columns`` (this module's callers' SQL, never a user's) of the Parquet
        ``files``: read once per connection however many questions a page asks of them."""
        key = (tuple(files), columns)
        if key not in self._tables:
            name = f"files_{len(self._tables)}"
            source = "read_parquet($files, union_by_name=true, hive_partitioning=false)"
            self.con.execute(f"create temp table {name} as select {columns} from {source}", {"files": list(files)})
            self._tables[key] = name
        return self._tables[key]

    def parquet(self, files: Iterable[StoragePath | str]) -> list[str]:
        """DuckDB names of ``files`` (paths, or globs relative to the root) for ``read_parquet($files)``."""
        return [self.staging.duck_name(f) for f in files]


def quote_ident(name: str) -> str:
    """A column name from an API definition as a SQL identifier; refuses anything but a plain name."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", name):
        raise ValueError(f"not a column name: {name!r}")
    return f'"{name}"'
