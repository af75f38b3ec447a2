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
from datetime import timedelta
from functools import cached_property
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
KEYS = "keys.parquet"  # every number each order of the window is found by, and its outcome (erpsync.keys)


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
        self.keys = self.dir / KEYS


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
_KEY_HALF = re.compile(r"(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})", re.ASCII)
KEY_TIME = "%Y%m%dT%H%M%S"  # a window key's half, as strftime writes it
NAME_START, NAME_END = slice(7, 22), slice(23, 38)  # a window folder name's keys: window=<start>_<end>…


@dataclass(frozen=True)
class WindowFolder:
    """A window folder of a DAG under the staging root."""

    dag_dir: StoragePath  # the DAG's folder: joining a path costs a fifth of a millisecond, so ``path`` waits
    name: str
    window: Window
    filters_digest: str | None  # set: a run narrowed by filters, not the whole window
    dry_run: bool = False  # a dry run: nothing was posted

    @cached_property
    def path(self) -> StoragePath:
        return self.dag_dir / self.name

    @property
    def whole(self) -> bool:
        """The window's real record: neither narrowed by filters nor a dry run."""
        return self.filters_digest is None and not self.dry_run


def _key_window(key: str, timezone: str) -> Window:
    """``Window.from_key`` without pendulum's format parser, which costs 0.2 ms a key: the pages and
    each load's policy list thousands of folders. The same instants (pendulum.from_format builds them
    with ``pendulum.datetime`` too), the same refusals."""
    import pendulum

    start, _, end = key.partition("_")
    first, last = _KEY_HALF.fullmatch(start), _KEY_HALF.fullmatch(end)
    if first is None or last is None:
        return Window.from_key(key, timezone)
    try:
        zone = pendulum.timezone(timezone)
        (y, mo, d, h, mi, s), (y2, mo2, d2, h2, mi2, s2) = (map(int, m.groups()) for m in (first, last))
        return Window(
            pendulum.datetime(y, mo, d, h, mi, s, tz=zone), pendulum.datetime(y2, mo2, d2, h2, mi2, s2, tz=zone)
        )
    except ValueError as exc:
        raise WindowError(f"not a window key: {key!r}") from exc


def parse_folder(name: str, timezone: str = SHANGHAI) -> tuple[Window, str | None, bool] | None:
    """The window, filters digest and dry-run flag a folder name stands for; None if no window folder.
    ``timezone`` is the zone of the scheme whose folder it is (its keys are wall-clock times there)."""
    match = _FOLDER.match(name)
    if match is None:
        return None
    try:
        return _key_window(match["key"], timezone), match["digest"], match["dry"] is not None
    except WindowError:
        return None


def child_names(folder: StoragePath) -> list[str]:
    """The names in ``folder`` (none if it does not exist), as listed now. A year of hourly windows is
    8,760 names: ``iterdir`` makes a path object of each (0.4 ms apiece), fsspec's local ``ls`` takes
    50 ms, ``os.listdir`` 3 ms; an object store's listing is asked afresh, not its client's cache."""
    import os

    try:
        if is_local(folder):
            return os.listdir(folder.path)
        fs = folder.fs
        fs.invalidate_cache(folder.path)
        listed = fs.ls(folder.path, detail=False)
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [str(p).rstrip("/").rsplit("/", 1)[-1] for p in listed]


def window_names(root: StoragePath, dag_id: str) -> list[str]:
    """The names of ``dag_id``'s window folders, newest window first (a window's narrowed and dry runs
    before it: names sort as their keys, wall-clock times), without parsing them."""
    names = []
    for name in child_names(root / dag_id):
        if _FOLDER.match(name) is not None and name[NAME_START] < name[NAME_END]:
            names.append(name)
    return sorted(names, reverse=True)


def window_folders(
    root: StoragePath, dag_id: str, timezone: str = SHANGHAI, overlapping: Window | None = None
) -> list[WindowFolder]:
    """The window folders of ``dag_id`` (a scheme in ``timezone``), newest window first (whole windows
    before narrowed or dry runs); with ``overlapping``, only those that overlap it, and only their names
    are parsed (a load asks this of a year of windows: 8,760 names)."""
    names = window_names(root, dag_id)
    if overlapping is not None:
        # wall-clock keys sort as the instants within a zone's offset changes: a day either side
        # keeps every folder that can overlap, and the parsed windows decide
        around = overlapping.in_timezone(timezone)
        low, high = (
            (around.start - timedelta(days=1)).strftime(KEY_TIME),
            (around.end + timedelta(days=1)).strftime(KEY_TIME),
        )
        names = [n for n in names if n[NAME_START] < high and n[NAME_END] > low]
    found = folders(root / dag_id, names, timezone)
    if overlapping is not None:
        found = [f for f in found if f.window.start < overlapping.end and overlapping.start < f.window.end]
    return sorted(found, key=lambda f: (f.window.start, f.window.end, f.whole, f.name), reverse=True)


def folders(dag_dir: StoragePath, names: list[str], timezone: str = SHANGHAI) -> list[WindowFolder]:
    """The window folders ``names`` of the DAG folder ``dag_dir``, in that order (names that are not
    window folders left out)."""
    found = []
    for name in names:
        parsed = parse_folder(name, timezone)
        if parsed is not None:
            found.append(WindowFolder(dag_dir, name, *parsed))
    return found


def is_local(path: StoragePath) -> bool:
    """Whether ``path`` is on the local filesystem (DuckDB then reads it by its own path)."""
    protocols = path.fs.protocol
    return bool({"file", "local"} & set([protocols] if isinstance(protocols, str) else protocols))


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
