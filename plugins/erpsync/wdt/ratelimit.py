"""One call rate per WDT app key, shared by every process on the machine.

WDT allows about 60 calls a minute per app key (spec §6), whoever makes them: two runs, a backfill
and a second scheme on the same key share that budget. Each caller reserves the next free slot in a
small SQLite file (``BEGIN IMMEDIATE`` serialises the reservations across processes), then sleeps
until its slot. A throttle answer pushes the next free slot out for everyone.

Workers on several hosts each have their own file; the Airflow pool named after the WDT connection
caps how many extract tasks run at once across hosts.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

_SCHEMA = "CREATE TABLE IF NOT EXISTS slots (key TEXT PRIMARY KEY, next_free REAL NOT NULL)"


class SharedRateLimiter:
    """Calls for ``key`` at least ``interval`` seconds apart, across every process using ``path``."""

    def __init__(
        self,
        path: Path,
        key: str,
        interval: float,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.path = Path(path)
        self.key = hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]  # no app key in a shared file
        self.interval = interval
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
            self._db.execute(_SCHEMA)
        return self._db

    def acquire(self) -> float:
        """Reserve this caller's slot and wait for it; returns the slot (epoch seconds)."""
        with self._lock:
            db = self._connection()
            db.execute("BEGIN IMMEDIATE")  # one reservation at a time, across processes
            try:
                now = self._clock()
                row = db.execute("SELECT next_free FROM slots WHERE key = ?", (self.key,)).fetchone()
                slot = max(now, row[0] if row else now)
                db.execute(
                    "INSERT INTO slots (key, next_free) VALUES (?, ?) "
                    "ON CONFLICT(key) DO UPDATE SET next_free = excluded.next_free",
                    (self.key, slot + self.interval),
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        if slot > now:
            self._sleep(slot - now)
        return slot

    def hold_off(self, seconds: float) -> None:
        """Nobody calls for ``seconds`` from now (after a throttle answer)."""
        with self._lock:
            db = self._connection()
            until = self._clock() + seconds
            db.execute(
                "INSERT INTO slots (key, next_free) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET next_free = MAX(next_free, excluded.next_free)",
                (self.key, until),
            )

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
