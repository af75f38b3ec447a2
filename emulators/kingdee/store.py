"""SQLite persistence of saved bills, lots and counters under ``--data-dir``.

Decisions:
- One file ``kingdee.sqlite3`` in the data dir (created with its parents when missing). Each bill is one
  row holding its JSON document; FID, FEntryID, lot ids and the auto-number sequence are counters in the
  same database, written in the same transaction as the bill, so a restart loses nothing and never
  reuses an id or a number.
- FBillNo is unique per form, case-insensitively and ignoring trailing blanks (SQL Server collation).
  Auto-numbers are ``XSCKD`` + 8 digits (``XSCKD00000001``), skipping numbers a client already used;
  only saved bills consume a number.
- Everything is also cached in memory; callers serialise access with the server's lock.
- Sessions are not stored: like a real server restart, a restart drops every session (SDK clients sign
  every request and simply get a new one; session-login clients must log in again).
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from .master import MasterData, number_key
from .outstock import ENTRY_FIELD_BY_KEY, FIELD_BY_KEY, FORM_ID, Draft, DraftEntry
from .schema import Kind, Ref
from .wire import dumps, loads

DB_NAME = "kingdee.sqlite3"
AUTO_NUMBER_PREFIX = "XSCKD"
NewLot = tuple[int, dict[str, Any], str]  # (lot id, material reference, lot number) created by a save
_FIRST = {"fid": 100001, "entryid": 100001, "billno": 1, "lot": 600001}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS bills (
    fid INTEGER PRIMARY KEY, form_id TEXT NOT NULL, bill_no TEXT NOT NULL,
    bill_no_key TEXT NOT NULL, doc TEXT NOT NULL, created TEXT NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS bills_number ON bills (form_id, bill_no_key);
CREATE TABLE IF NOT EXISTS lots (
    lot_id INTEGER PRIMARY KEY, material_id INTEGER NOT NULL, material_number TEXT NOT NULL,
    number TEXT NOT NULL, created TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS payloads (digest TEXT PRIMARY KEY, seen TEXT NOT NULL);
"""


class Store:
    """Saved SAL_OUTSTOCK bills, in SQLite and in memory."""

    def __init__(self, data_dir: Path, master: MasterData) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / DB_NAME
        self._master = master
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.executescript(_SCHEMA)
        self._counters = dict(_FIRST)
        self._counters.update(dict(self._conn.execute("SELECT name, value FROM counters")))
        self._bills: dict[int, dict[str, Any]] = {}
        self._by_number: dict[str, int] = {}
        self.head_extra_keys: dict[str, str] = {}  # lower -> key as first sent
        self.entry_extra_keys: dict[str, str] = {}
        self._load()

    def close(self) -> None:
        self._conn.close()

    # -- reading --------------------------------------------------------------------------------
    def bills(self) -> Iterator[dict[str, Any]]:
        """Saved bills in FID order."""
        return iter(sorted(self._bills.values(), key=lambda b: b["head"]["FID"]))

    def number_taken(self, bill_no: str) -> bool:
        return number_key(bill_no) in self._by_number

    def has_fid(self, fid: int) -> bool:
        return fid in self._bills

    # -- writing --------------------------------------------------------------------------------
    def remember_payload(self, data: Any, seen: str) -> bool:
        """Record a BatchSave data packet; False when the identical packet came before."""
        digest = hashlib.sha256(dumps(_sorted(data)).encode()).hexdigest()
        cursor = self._conn.execute("INSERT OR IGNORE INTO payloads VALUES (?, ?)", (digest, seen))
        return cursor.rowcount == 1

    def save(self, draft: Draft, *, audited: bool, now: str) -> dict[str, Any]:
        """Assign FID, number, FEntryIDs and lots, then persist the bill in one transaction."""
        counters = dict(self._counters)
        new_lots: list[NewLot] = []
        doc = self._document(draft, counters, new_lots, audited=audited, now=now)
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            for lot_id, material, number in new_lots:
                self._conn.execute("INSERT INTO lots VALUES (?, ?, ?, ?, ?)",
                                   (lot_id, material["Id"], material["Number"], number, now))
            self._conn.execute(
                "INSERT INTO bills VALUES (?, ?, ?, ?, ?, ?)",
                (doc["head"]["FID"], FORM_ID, doc["head"]["FBillNo"], number_key(doc["head"]["FBillNo"]),
                 dumps(doc), now))
            self._conn.executemany("INSERT OR REPLACE INTO counters VALUES (?, ?)", counters.items())
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._counters = counters
        for lot_id, material, number in new_lots:
            self._master.add_lot(lot_id, _ref(material), number, now)
        self._cache(doc)
        return doc

    def _document(self, draft: Draft, counters: dict[str, int], new_lots: list[NewLot], *, audited: bool,
                  now: str) -> dict[str, Any]:
        head = dict(draft.head)
        head["FID"] = _take(counters, "fid")
        head["FBillNo"] = draft.bill_no or self._auto_number(counters)
        head["FDocumentStatus"] = "C" if audited else "A"
        head["FCreateDate"] = head["FModifyDate"] = now
        head["FApproveDate"] = now if audited else None
        entries = [self._entry(e, counters, new_lots) for e in draft.entries]
        return {"head": head, "extra": dict(draft.extra), "sub_extra": dict(draft.sub_extra),
                "entries": entries}

    def _entry(self, entry: DraftEntry, counters: dict[str, int],
               new_lots: list[NewLot]) -> dict[str, Any]:
        fields = dict(entry.fields)
        fields["FEntryID"] = _take(counters, "entryid")
        if entry.lot_number:
            fields["FLot"] = self._lot(fields["FMaterialID"], entry.lot_number, counters, new_lots)
        return {"fields": fields, "extra": dict(entry.extra)}

    def _lot(self, material: dict[str, Any], number: str, counters: dict[str, int],
             new_lots: list[NewLot]) -> dict[str, Any]:
        found = self._master.find_lot(material["Id"], number)
        if found is not None:
            return {"Id": found["FLOTID"], "Number": found["FNumber"]}
        for lot_id, lot_material, lot_number in new_lots:  # same lot on two rows of one bill
            if lot_material["Id"] == material["Id"] and number_key(lot_number) == number_key(number):
                return {"Id": lot_id, "Number": lot_number}
        lot_id = _take(counters, "lot")
        new_lots.append((lot_id, material, number))
        return {"Id": lot_id, "Number": number}

    def _auto_number(self, counters: dict[str, int]) -> str:
        while True:
            number = f"{AUTO_NUMBER_PREFIX}{_take(counters, 'billno'):08d}"
            if not self.number_taken(number):
                return number

    # -- loading --------------------------------------------------------------------------------
    def _load(self) -> None:
        for lot_id, material_id, material_number, number, created in self._conn.execute(
                "SELECT lot_id, material_id, material_number, number, created FROM lots ORDER BY lot_id"):
            self._master.add_lot(lot_id, Ref(material_id, material_number), number, created)
        bills = self._conn.execute("SELECT doc FROM bills WHERE form_id = ? ORDER BY fid", (FORM_ID,))
        for (doc_text,) in bills:
            self._cache(_revive(loads(doc_text)))

    def _cache(self, doc: dict[str, Any]) -> None:
        head = doc["head"]
        self._bills[head["FID"]] = doc
        self._by_number[number_key(head["FBillNo"])] = head["FID"]
        for key in [*doc["extra"], *doc["sub_extra"]]:
            self.head_extra_keys.setdefault(key.lower(), key)
        for entry in doc["entries"]:
            for key in entry["extra"]:
                self.entry_extra_keys.setdefault(key.lower(), key)


def _take(counters: dict[str, int], name: str) -> int:
    value = counters[name]
    counters[name] = value + 1
    return value


def _ref(value: dict[str, Any]) -> Ref:
    return Ref(value["Id"], value["Number"])


def _revive(doc: dict[str, Any]) -> dict[str, Any]:
    """Known decimal fields come back as Decimal even when stored as JSON integers."""
    _revive_fields(doc["head"], FIELD_BY_KEY)
    for entry in doc["entries"]:
        _revive_fields(entry["fields"], ENTRY_FIELD_BY_KEY)
    return doc


def _revive_fields(fields: dict[str, Any], specs: dict[str, Any]) -> None:
    for key, value in fields.items():
        spec = specs.get(key.lower())
        if spec is not None and spec.kind is Kind.DECIMAL and value is not None:
            fields[key] = Decimal(value)


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value
