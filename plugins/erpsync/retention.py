"""Retention: old window folders leave the staging root (``[erpsync] staging_retention_days``).

A window folder is pruned when its window ended more than ``keep_days`` before now. Two guards:

* a folder written to in the last ``idle`` (default a day) is left alone, so a backfill of an old
  window is not pruned under its own tasks' feet by another run's prune;
* a complete window keeps its ``complete.json`` (a few hundred bytes): preconditions (前置条件) of
  other schemes read it, and a downstream backfill over that time must still find it loaded.

Folders that are not window folders (``_gx_static``, anything someone else put there) are never
touched, and ``keep_days`` 0 keeps everything.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

import pendulum

from erpsync.staging import COMPLETE, StoragePath, remove_tree, window_folders
from erpsync.windows import SHANGHAI

log = logging.getLogger(__name__)

DEFAULT_KEEP_DAYS = 90


def keep_days() -> int:
    """``[erpsync] staging_retention_days`` (env ``AIRFLOW__ERPSYNC__STAGING_RETENTION_DAYS``); 0 = forever."""
    from airflow.sdk import conf

    days = conf.getint("erpsync", "staging_retention_days", fallback=DEFAULT_KEEP_DAYS)
    if days < 0:
        raise ValueError(f"[erpsync] staging_retention_days must be 0 (keep) or more, got {days}")
    return days


def _last_written(path: StoragePath) -> datetime | None:
    """The newest modification time of any file under ``path`` (None: no file says)."""
    newest = None
    for info in path.fs.find(path.path, detail=True).values():
        stamp = _mtime(info)
        if stamp is not None and (newest is None or stamp > newest):
            newest = stamp
    return newest


def _mtime(info: dict[str, Any]) -> datetime | None:
    # local: mtime (epoch seconds); s3/gcs/azure: LastModified/updated/last_modified (datetime or text)
    for key in ("mtime", "LastModified", "last_modified", "updated", "modified", "created"):
        value = info.get(key)
        if value is None:
            continue
        if isinstance(value, (int, float)):
            return pendulum.from_timestamp(value)
        if isinstance(value, datetime):
            return pendulum.instance(value)
        try:
            parsed = pendulum.parse(str(value))
        except (ValueError, TypeError):
            continue
        if isinstance(parsed, datetime):  # not a bare time or a duration
            return parsed
    return None


def prune(
    root: StoragePath,
    dag_id: str,
    keep_days: int,
    now: datetime,
    *,
    timezone: str = SHANGHAI,
    idle: timedelta = timedelta(days=1),
) -> list[str]:
    """Delete the window folders of ``dag_id`` (a scheme in ``timezone``) whose window ended more than ``keep_days`` before
    ``now`` (keeping ``complete.json`` of complete windows); return the names of the folders pruned."""
    if keep_days <= 0:
        return []
    cutoff = pendulum.instance(now) - timedelta(days=keep_days)
    pruned = []
    for folder in window_folders(root, dag_id, timezone):
        if folder.window.end >= cutoff:
            continue
        children = list(folder.path.iterdir())
        if all(child.name == COMPLETE for child in children) and children:
            continue  # pruned before: only the marker is left
        written = _last_written(folder.path)
        if written is not None and written > pendulum.instance(now) - idle:
            log.info(
                "Keeping %s/%s: written %s, less than %s ago (a rerun of an old window?)",
                dag_id,
                folder.name,
                written,
                idle,
            )
            continue
        if any(child.name == COMPLETE for child in children):
            for child in children:
                if child.name == COMPLETE:
                    continue
                if child.is_dir():
                    remove_tree(child)
                else:
                    child.unlink(missing_ok=True)
        else:
            remove_tree(folder.path)
        pruned.append(folder.name)
    if pruned:
        log.info(
            "Pruned %d window folders of %s that ended before %s (retention %d days)",
            len(pruned),
            dag_id,
            cutoff,
            keep_days,
        )
    return pruned
