"""One call rate per WDT app key, shared by every caller that reserves slots in the same place.

WDT allows about 60 calls a minute per app key (spec §6), whoever makes them: two runs, a backfill,
a second scheme on the same key and the workers of every host share that budget. Each caller
reserves the next free slot, one reservation at a time, then sleeps until its slot; a throttle answer
pushes the next free slot out for everyone.

Where the slots live is ``[erpsync] wdt_rate_limit_url`` (``open_limiter``):

* empty (the default) or a file path: a small SQLite file, for every process of one machine
  (``BEGIN IMMEDIATE`` serialises the reservations);
* ``redis://host:6379/1`` (``rediss://`` too): Redis, for the workers of every host; one Lua script
  reserves atomically, on the Redis server's clock, so hosts whose clocks differ still keep the pace;
* ``postgresql://user:pass@host/db``: a table ``erpsync_wdt_rate_limits`` in that database (the
  Airflow metadata database will do), one atomic upsert per reservation, on the server's clock.

The app key is hashed before it is stored: no credential in a shared file, key or table.
"""

from __future__ import annotations

import hashlib
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from erpsync.connections import ConnectionConfigError

if TYPE_CHECKING:  # psycopg2 is imported when a PostgreSQL limiter is opened
    from psycopg2.extensions import connection as PgConnection

DEFAULT_FILE = Path(tempfile.gettempdir()) / "erpsync-wdt-rate-limits.sqlite"


class RateLimiter:
    """Where the slots live differs by backend (``_reserve``, ``hold_off``, ``close``); waiting does not."""

    interval: float
    _sleep: Callable[[float], None]

    def acquire(self) -> float:
        """Reserve this caller's slot and wait for it; returns the slot (epoch seconds)."""
        slot, now = self._reserve()
        if slot > now:
            self._sleep(slot - now)
        return slot

    def _reserve(self) -> tuple[float, float]:
        """The next free slot, now taken, and the time of the reservation, on the slots' clock."""
        raise NotImplementedError

    def hold_off(self, seconds: float) -> None:
        """Nobody calls for ``seconds`` from now (after a throttle answer)."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class RateLimiterError(RuntimeError):
    """The shared limiter cannot be reached; no call is made without a slot."""


def _hashed(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


def redacted(url: str) -> str:
    """``url`` without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def open_limiter(
    url: str,
    key: str,
    interval: float,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> RateLimiter:
    """The limiter ``url`` names (see the module's docstring) for app key ``key``."""
    scheme = urlsplit(url).scheme.lower() if "://" in url else ""
    if scheme in ("redis", "rediss"):
        return RedisRateLimiter(url, key, interval, sleep)
    if scheme.startswith("postgresql") or scheme == "postgres":
        return PostgresRateLimiter(url, key, interval, sleep)
    if scheme in ("", "file"):
        path = Path(urlsplit(url).path) if scheme == "file" else Path(url) if url else DEFAULT_FILE
        return SqliteRateLimiter(path, key, interval, clock, sleep)
    raise ConnectionConfigError(
        f"[erpsync] wdt_rate_limit_url: {redacted(url)!r} is not a file path, redis:// or postgresql:// URL"
    )


_SQLITE_SCHEMA = "CREATE TABLE IF NOT EXISTS slots (key TEXT PRIMARY KEY, next_free REAL NOT NULL)"


class SqliteRateLimiter(RateLimiter):
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
        self.key = _hashed(key)
        self.interval = interval
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
            self._db.execute(_SQLITE_SCHEMA)
        return self._db

    def _reserve(self) -> tuple[float, float]:
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
        return slot, now

    def hold_off(self, seconds: float) -> None:
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


# KEYS[1]: the slot key; ARGV[1]: seconds to add (the interval, or a hold-off); ARGV[2]: 1 to reserve
# a slot, 0 to hold off; ARGV[3]: the key's lifetime. Returns {slot, now} as text (Lua numbers would
# come back truncated to integers).
_REDIS_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local next_free = tonumber(redis.call('GET', KEYS[1]) or '0')
local add = tonumber(ARGV[1])
local slot = math.max(now, next_free)
if ARGV[2] == '1' then
  next_free = slot + add
else
  next_free = math.max(next_free, now + add)
end
redis.call('SET', KEYS[1], string.format('%.6f', next_free), 'EX', ARGV[3])
return {string.format('%.6f', slot), string.format('%.6f', now)}
"""


class RedisRateLimiter(RateLimiter):
    """Calls for ``key`` at least ``interval`` seconds apart, across every host using the Redis at ``url``."""

    def __init__(self, url: str, key: str, interval: float, sleep: Callable[[float], None] = time.sleep) -> None:
        import redis

        self.url, self.interval, self._sleep = url, interval, sleep
        self.key = f"erpsync:wdt-rate-limit:{_hashed(key)}"
        self._client = redis.Redis.from_url(url, socket_timeout=30, socket_connect_timeout=10)
        self._script = self._client.register_script(_REDIS_SCRIPT)
        self._errors = (redis.RedisError,)

    def _run(self, add: float, reserve: bool) -> tuple[float, float]:
        lifetime = int(add) + 3600  # a key outlives its last slot; an idle app key leaves nothing behind
        try:
            slot, now = self._script(keys=[self.key], args=[repr(add), "1" if reserve else "0", lifetime])
        except self._errors as exc:
            raise RateLimiterError(f"WDT rate limiter {redacted(self.url)}: {exc}") from exc
        return float(slot), float(now)

    def _reserve(self) -> tuple[float, float]:
        return self._run(self.interval, reserve=True)

    def hold_off(self, seconds: float) -> None:
        self._run(seconds, reserve=False)

    def close(self) -> None:
        self._client.close()


_PG_SCHEMA = """
CREATE TABLE IF NOT EXISTS erpsync_wdt_rate_limits (
    key TEXT PRIMARY KEY,
    next_free DOUBLE PRECISION NOT NULL
)"""
_PG_NOW = "extract(epoch FROM clock_timestamp())::double precision"
_PG_ACQUIRE = f"""
INSERT INTO erpsync_wdt_rate_limits AS s (key, next_free) VALUES (%(key)s, {_PG_NOW} + %(add)s)
ON CONFLICT (key) DO UPDATE SET next_free = GREATEST(s.next_free, {_PG_NOW}) + %(add)s
RETURNING s.next_free - %(add)s, {_PG_NOW}"""
_PG_HOLD_OFF = f"""
INSERT INTO erpsync_wdt_rate_limits AS s (key, next_free) VALUES (%(key)s, {_PG_NOW} + %(add)s)
ON CONFLICT (key) DO UPDATE SET next_free = GREATEST(s.next_free, EXCLUDED.next_free)"""


class PostgresRateLimiter(RateLimiter):
    """Calls for ``key`` at least ``interval`` seconds apart, across every host using the database at ``url``."""

    def __init__(self, url: str, key: str, interval: float, sleep: Callable[[float], None] = time.sleep) -> None:
        import psycopg2

        self.url = "postgresql://" + url.split("://", 1)[1]  # a SQLAlchemy URL names its driver: postgresql+psycopg2://
        self.interval, self._sleep = interval, sleep
        self.key = _hashed(key)
        self._psycopg2 = psycopg2
        self._db: PgConnection | None = None
        self._lock = threading.Lock()

    def _execute(self, sql: str, add: float) -> tuple | None:
        with self._lock:
            try:
                if self._db is None or self._db.closed:
                    self._db = self._psycopg2.connect(self.url, connect_timeout=10)
                    self._db.autocommit = True
                    with self._db.cursor() as cur:
                        cur.execute("SELECT to_regclass('erpsync_wdt_rate_limits')")
                        if cur.fetchone()[0] is None:
                            try:
                                cur.execute(_PG_SCHEMA)
                            except self._psycopg2.errors.UniqueViolation:
                                pass  # another worker created it at the same moment
                with self._db.cursor() as cur:
                    cur.execute(sql, {"key": self.key, "add": add})  # the row lock serialises reservations
                    return cur.fetchone() if cur.description else None
            except self._psycopg2.Error as exc:
                if self._db is not None:
                    self._db.close()
                self._db = None
                raise RateLimiterError(f"WDT rate limiter {redacted(self.url)}: {exc}".strip()) from exc

    def _reserve(self) -> tuple[float, float]:
        row = self._execute(_PG_ACQUIRE, self.interval)
        assert row is not None  # RETURNING: the upsert always gives a row
        slot, now = row
        return slot, now

    def hold_off(self, seconds: float) -> None:
        self._execute(_PG_HOLD_OFF, seconds)

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
