"""Where a run's files live, and writing them atomically.

The staging root is a URL-backed path (Airflow's ``ObjectStoragePath``: a local folder by default,
object storage when workers run on several hosts). Each window of each DAG has its own folder, so a
rerun of a window overwrites exactly its own files and nothing else.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from erpsync.windows import SHANGHAI, Window, WindowError

if TYPE_CHECKING:  # pandas is imported by the functions that need it: DAG parsing never does
    import pandas as pd


class StoragePath(Protocol):
    """The part of the pathlib/UPath API the steps use."""

    @property
    def name(self) -> str: ...

    def __truediv__(self, other: str, /) -> StoragePath: ...
    def open(self, mode: str = ...) -> Any: ...
    def mkdir(self, *, parents: bool = ..., exist_ok: bool = ...) -> None: ...
    def exists(self) -> bool: ...
    def is_file(self) -> bool: ...
    def rename(self, target: Any) -> Any: ...
    def unlink(self, missing_ok: bool = ...) -> None: ...
    def read_text(self) -> str: ...
    def read_bytes(self) -> bytes: ...
    def iterdir(self) -> Any: ...

    @property
    def fs(self) -> Any: ...  # the fsspec filesystem (ObjectStoragePath / UPath)

    @property
    def path(self) -> str: ...

    @property
    def parent(self) -> StoragePath: ...


def staging_root(location: str | None = None) -> StoragePath:
    """Where windows are staged: ``location`` (a URL or a local path), else ``[erpsync] staging_root``
    (env ``AIRFLOW__ERPSYNC__STAGING_ROOT``), else ``$AIRFLOW_HOME/staging``."""
    import os

    from airflow.sdk import ObjectStoragePath, conf

    if location is None:
        home = Path(os.environ.get("AIRFLOW_HOME", "~/airflow")).expanduser().resolve()
        location = conf.get("erpsync", "staging_root", fallback=(home / "staging").as_uri())
    if "://" not in location or location.startswith("file://"):
        return ObjectStoragePath(location if "://" in location else Path(location).resolve().as_uri())
    root = ObjectStoragePath(location)
    uncached_listings(root.fs)
    return root


def uncached_listings(fs: Any) -> None:
    """Make ``fs`` ask the store for every listing and file size instead of its listings cache.

    Other processes on other hosts write the staging root: a worker replaces a window's files, the
    api-server shows them. fsspec filesystems (s3fs's among them) keep every listing they made, with
    each object's size and ETag, for as long as the process lives, and Airflow keeps one filesystem per
    connection: a long-lived reader would list a window as it was when first read and fail to open
    its replaced files (s3fs ``FileExpired``: the cached ETag is gone)."""
    cache = getattr(fs, "dircache", None)
    if cache is not None:
        cache.use_listings_cache = False  # fsspec's DirCache then stores nothing
        cache.clear()


COMPLETE = "complete.json"  # a window whose orders are all in Kingdee (see preconditions)
FINISHED = "finished.json"  # a whole window whose load ended, red or green, and the problems it reported


class RunFiles:
    """The files of one window of one DAG: ``<root>/<dag_id>/window=<start>_<end>[,filters=<digest>][,dry_run]/``.

    A run narrowed by filters gets its own folder, named by a digest of them: no value a user types
    ever becomes part of a path. ``filters.json`` in the folder says which they were. A dry run gets
    its own folder too, so it never replaces what a real load of the window recorded.
    """

    def __init__(
        self,
        root: StoragePath,
        dag_id: str,
        window: Window,
        filters: dict[str, str] | None = None,
        dry_run: bool = False,
    ) -> None:
        self.window = window
        self.dir = root / dag_id / window_folder(window, filters, dry_run)
        self.filters = self.dir / "filters.json"
        self.orders = self.dir / "orders.parquet"
        self.lines = self.dir / "lines.parquet"
        self.extract_summary = self.dir / "extract_summary.json"
        self.quarantine = self.dir / "quarantine.parquet"
        self.quality = self.dir / "quality"
        self.bills = self.dir / "bills.jsonl"
        self.unmapped = self.dir / "unmapped.parquet"
        self.request = self.dir / "request.json"
        self.load_report = self.dir / "load_report"  # one Parquet part per chunk: see append_part
        self.complete = self.dir / COMPLETE
        self.finished = self.dir / FINISHED
        self.calls = self.dir / "calls"  # one Parquet part per task attempt: see erpsync.calls


def window_folder(window: Window, filters: dict[str, str] | None = None, dry_run: bool = False) -> str:
    """The name of a run's folder: the window, then the digest of its filters, then whether it is a dry run."""
    return (
        f"window={window.key}"
        + (f",filters={filters_digest(filters)}" if filters else "")
        + (",dry_run" if dry_run else "")
    )


# window=<key>[,filters=<digest>][,dry_run], as window_folder names them
_FOLDER = re.compile(
    r"^window=(?P<key>\d{8}T\d{6}_\d{8}T\d{6})(?:,filters=(?P<digest>[0-9a-f]{16}))?(?P<dry>,dry_run)?$"
)


@dataclass(frozen=True)
class WindowFolder:
    """A window folder of a DAG under the staging root."""

    path: StoragePath
    name: str
    window: Window
    filters_digest: str | None  # set: a run narrowed by filters, not the whole window
    dry_run: bool = False  # a dry run: nothing was posted

    @property
    def whole(self) -> bool:
        """The window's real record: neither narrowed by filters nor a dry run."""
        return self.filters_digest is None and not self.dry_run


def parse_folder(name: str, timezone: str = SHANGHAI) -> tuple[Window, str | None, bool] | None:
    """The window, filters digest and dry-run flag a folder name stands for; None if no window folder.
    ``timezone`` is the zone of the scheme whose folder it is (its keys are wall-clock times there)."""
    match = _FOLDER.match(name)
    if match is None:
        return None
    try:
        return Window.from_key(match["key"], timezone), match["digest"], match["dry"] is not None
    except WindowError:
        return None


def window_folders(root: StoragePath, dag_id: str, timezone: str = SHANGHAI) -> list[WindowFolder]:
    """The window folders of ``dag_id`` (a scheme in ``timezone``), newest window first (whole windows
    before narrowed or dry runs)."""
    folder = root / dag_id
    if not folder.exists():
        return []
    found = []
    for child in folder.iterdir():
        parsed = parse_folder(child.name, timezone)
        if parsed is not None:
            found.append(WindowFolder(child, child.name, *parsed))
    return sorted(found, key=lambda f: (f.window.start, f.window.end, f.whole, f.name), reverse=True)


def filters_digest(filters: dict[str, str]) -> str:
    canonical = json.dumps(filters, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def _atomic_write(path: StoragePath, data: bytes) -> None:
    """Write to a temporary sibling and rename it over ``path``: readers see the old or the new file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
    try:
        with tmp.open("wb") as fh:
            fh.write(data)
        tmp.rename(path)
    finally:
        if tmp.exists():
            tmp.unlink(missing_ok=True)


def write_parquet(frame: pd.DataFrame, path: StoragePath) -> None:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    _atomic_write(path, buffer.getvalue())


def read_parquet(path: StoragePath) -> pd.DataFrame:
    import pandas as pd

    with path.open("rb") as fh:
        return pd.read_parquet(fh)


def append_part(frame: pd.DataFrame, folder: StoragePath, index: int) -> None:
    """Add part ``index`` to a folder of Parquet parts: appending costs one part, not a rewrite of all."""
    write_parquet(frame, folder / f"part-{index:06d}.parquet")


def read_parts(folder: StoragePath, columns: list[str]) -> pd.DataFrame:
    """All parts of a folder written by ``append_part``, in part order (empty frame if none)."""
    import pandas as pd

    parts = sorted(folder.iterdir(), key=lambda p: p.name) if folder.exists() else []
    frames = [read_parquet(p) for p in parts if p.name.startswith("part-") and p.name.endswith(".parquet")]
    if not frames:
        return pd.DataFrame(columns=columns).astype("string")
    return pd.concat(frames, ignore_index=True)


def remove_tree(target: StoragePath) -> None:
    if target.exists():
        target.fs.rm(target.path, recursive=True)


def write_json(data: Any, path: StoragePath) -> None:
    _atomic_write(path, json.dumps(data, ensure_ascii=False, indent=2).encode("utf-8"))


def read_json(path: StoragePath) -> Any:
    return json.loads(path.read_text())


def write_jsonl(records: list[dict[str, Any]], path: StoragePath) -> None:
    text = "".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in records)
    _atomic_write(path, text.encode("utf-8"))


def read_jsonl(path: StoragePath) -> list[dict[str, Any]]:
    with path.open("rb") as fh:
        return [json.loads(line) for line in fh.read().decode("utf-8").splitlines() if line.strip()]


def put_file(local: Path, path: StoragePath) -> None:
    """Copy a local file to ``path`` in pieces (no whole copy in memory), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
    try:
        with open(local, "rb") as source, tmp.open("wb") as target:
            while block := source.read(1 << 20):
                target.write(block)
        tmp.rename(path)
    finally:
        if tmp.exists():
            tmp.unlink(missing_ok=True)


def write_bytes(data: bytes, path: StoragePath) -> None:
    _atomic_write(path, data)


def replace_tree(local: Path, target: StoragePath) -> None:
    """Make ``target`` a copy of the local folder ``local``, dropping what a previous run left there."""
    remove_tree(target)
    for file in sorted(p for p in local.rglob("*") if p.is_file()):
        destination = target
        for part in file.relative_to(local).parts:
            destination = destination / part
        write_bytes(file.read_bytes(), destination)
