"""SQLite persistence of saved bills, lots, created master data and counters under ``--data-dir``.

Decisions:
- One file ``kingdee.sqlite3`` in the data dir (created with its parents when missing). Each bill is one
  row holding its JSON document; FID, FEntryID, lot ids and the auto-number sequence are counters in the
  same database. All bills saved by one Save/BatchSave call, their lots and the counters are written in
  one transaction (bills that fail validation write nothing, so this equals per-bill saving), so a
  restart loses nothing and never reuses an id or a number. ``synchronous=NORMAL`` (WAL): a committed
  bill survives the emulator process dying, not a power cut.
- FBillNo is unique per form, case-insensitively and ignoring trailing blanks (SQL Server collation).
  Auto-numbers are ``XSCKD`` + 8 digits (``XSCKD00000001``), skipping numbers a client already used;
  only saved bills consume a number. Delete removes the bill's row, which frees its number (an FID or
  FEntryID is never reused).
- Status changes (Submit/Audit/UnAudit) rewrite the bill's document in place.
- Master records created through Save on BD_MATERIAL/BD_Customer are rows of ``master_records`` and are
  loaded into the master data before the bills that may refer to them.
- Look-ups by bill number go through an in-memory dict (number key → FID), never a scan.
- Everything is also cached in memory; callers serialise access with the server's lock.
- Sessions are not stored: like a real server restart, a restart drops every session (SDK clients sign
  every request and simply get a new one; session-login clients must log in again).
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

from .master import MasterData, number_key, text_key
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
CREATE TABLE IF NOT EXISTS master_records (
    form_id TEXT NOT NULL, rid INTEGER NOT NULL, number_key TEXT NOT NULL, doc TEXT NOT NULL,
    created TEXT NOT NULL, PRIMARY KEY (form_id, rid));
CREATE UNIQUE INDEX IF NOT EXISTS master_number ON master_records (form_id, number_key);
"""


class Store:
    """Saved SAL_OUTSTOCK bills, in SQLite and in memory."""

    def __init__(self, data_dir: Path, master: MasterData) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / DB_NAME
        self._master = master
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(_SCHEMA)
        self._counters = dict(_FIRST)
        self._counters.update(dict(self._conn.execute("SELECT name, value FROM counters")))
        self._bills: dict[int, dict[str, Any]] = {}
        self._by_number: dict[str, int] = {}  # number_key -> FID: uniqueness
        self._by_text: dict[str, set[int]] = {}  # text_key -> FIDs: query filters on FBillNo
        self._load()

    def close(self) -> None:
        self._conn.close()

    # -- reading --------------------------------------------------------------------------------
    def bills(self) -> Iterator[dict[str, Any]]:
        """Saved bills in FID order."""
        return iter(sorted(self._bills.values(), key=lambda b: b["head"]["FID"]))

    def bills_matching(self, texts: frozenset[str]) -> Iterator[dict[str, Any]]:
        """Saved bills whose ``text_key(FBillNo)`` is in ``texts``, in FID order: an index look-up."""
        fids = sorted({fid for t in texts for fid in self._by_text.get(t, ())})
        return iter([self._bills[fid] for fid in fids])

    def bill(self, fid: int) -> dict[str, Any] | None:
        return self._bills.get(fid)

    def bill_by_number(self, bill_no: str) -> dict[str, Any] | None:
        fid = self._by_number.get(number_key(bill_no))
        return None if fid is None else self._bills[fid]

    def number_taken(self, bill_no: str) -> bool:
        return number_key(bill_no) in self._by_number

    def has_fid(self, fid: int) -> bool:
        return fid in self._bills

    # -- writing --------------------------------------------------------------------------------
    def remember_payload(self, digest: str, seen: str) -> bool:
        """Record a data packet's digest (``payload_digest``); False when the identical packet came before."""
        cursor = self._conn.execute("INSERT OR IGNORE INTO payloads VALUES (?, ?)", (digest, seen))
        return cursor.rowcount == 1

    def save(self, draft: Draft, *, status: str, now: str) -> dict[str, Any]:
        """Save one bill: ``save_all`` of one draft."""
        return self.save_all([(draft, status)], now=now)[0]

    def save_all(self, drafts: list[tuple[Draft, str]], *, now: str) -> list[dict[str, Any]]:
        """Assign FIDs, numbers, FEntryIDs and lots, then persist the bills in one transaction."""
        counters = dict(self._counters)
        new_lots: list[NewLot] = []
        docs: list[dict[str, Any]] = []
        # Numbers of this call, not yet in the cache: an auto-number must not take one of them.
        taken = {number_key(d.bill_no) for d, _ in drafts if d.bill_no}
        for draft, status in drafts:
            docs.append(self._document(draft, counters, new_lots, taken, status=status, now=now))
            taken.add(number_key(docs[-1]["head"]["FBillNo"]))
        rows = [
            (d["head"]["FID"], FORM_ID, d["head"]["FBillNo"], number_key(d["head"]["FBillNo"]), dumps(d), now)
            for d in docs
        ]
        with self._transaction():
            self._conn.executemany(
                "INSERT INTO lots VALUES (?, ?, ?, ?, ?)", [(i, m["Id"], m["Number"], n, now) for i, m, n in new_lots]
            )
            self._conn.executemany("INSERT INTO bills VALUES (?, ?, ?, ?, ?, ?)", rows)
            self._conn.executemany("INSERT OR REPLACE INTO counters VALUES (?, ?)", counters.items())
        self._counters = counters
        for lot_id, material, number in new_lots:
            self._master.add_lot(lot_id, _ref(material), number, now)
        for doc in docs:
            self._cache(doc)
        return docs

    def set_status(self, fid: int, status: str, now: str) -> dict[str, Any]:
        """Move a bill to ``status``; audit (C) stamps FApproveDate, leaving C clears it."""
        doc = self._bills[fid]
        head = {**doc["head"], "FDocumentStatus": status, "FModifyDate": now}
        head["FApproveDate"] = now if status == "C" else None
        updated = {**doc, "head": head}
        with self._transaction():
            self._conn.execute("UPDATE bills SET doc = ? WHERE fid = ?", (dumps(updated), fid))
        self._bills[fid] = updated
        return updated

    def delete(self, fid: int) -> dict[str, Any]:
        doc = self._bills[fid]
        with self._transaction():
            self._conn.execute("DELETE FROM bills WHERE fid = ?", (fid,))
        del self._bills[fid]
        self._by_number.pop(number_key(doc["head"]["FBillNo"]), None)
        self._by_text.get(text_key(doc["head"]["FBillNo"]), set()).discard(fid)
        return doc

    def add_master(self, form_id: str, record: dict[str, Any], now: str) -> None:
        """Persist and register a master record created through Save (its id already assigned)."""
        form = self._master.form(form_id)
        assert form is not None
        with self._transaction():
            self._conn.execute(
                "INSERT INTO master_records VALUES (?, ?, ?, ?, ?)",
                (form.form_id, record[form.id_key], number_key(record["FNumber"]), dumps(record), now),
            )
        form.add(record)

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise

    def _document(
        self, draft: Draft, counters: dict[str, int], new_lots: list[NewLot], taken: set[str], *, status: str, now: str
    ) -> dict[str, Any]:
        head = dict(draft.head)
        head["FID"] = _take(counters, "fid")
        head["FBillNo"] = draft.bill_no or self._auto_number(counters, taken)
        head["FDocumentStatus"] = status
        head["FCreateDate"] = head["FModifyDate"] = now
        head["FApproveDate"] = now if status == "C" else None
        entries = [self._entry(e, counters, new_lots) for e in draft.entries]
        return {"head": head, "extra": dict(draft.extra), "sub_extra": dict(draft.sub_extra), "entries": entries}

    def _entry(self, entry: DraftEntry, counters: dict[str, int], new_lots: list[NewLot]) -> dict[str, Any]:
        fields = dict(entry.fields)
        fields["FEntryID"] = _take(counters, "entryid")
        if entry.lot_number:
            fields["FLot"] = self._lot(fields["FMaterialID"], entry.lot_number, counters, new_lots)
        return {"fields": fields, "extra": dict(entry.extra)}

    def _lot(
        self, material: dict[str, Any], number: str, counters: dict[str, int], new_lots: list[NewLot]
    ) -> dict[str, Any]:
        found = self._master.find_lot(material["Id"], number)
        if found is not None:
            return {"Id": found["FLOTID"], "Number": found["FNumber"]}
        for lot_id, lot_material, lot_number in new_lots:  # same lot on two rows of one bill
            if lot_material["Id"] == material["Id"] and number_key(lot_number) == number_key(number):
                return {"Id": lot_id, "Number": lot_number}
        lot_id = _take(counters, "lot")
        new_lots.append((lot_id, material, number))
        return {"Id": lot_id, "Number": number}

    def _auto_number(self, counters: dict[str, int], taken: set[str]) -> str:
        while True:
            number = f"{AUTO_NUMBER_PREFIX}{_take(counters, 'billno'):08d}"
            if not self.number_taken(number) and number_key(number) not in taken:
                return number

    # -- loading --------------------------------------------------------------------------------
    def _load(self) -> None:
        for form_id, doc_text in self._conn.execute("SELECT form_id, doc FROM master_records ORDER BY rid"):
            form = self._master.form(form_id)
            record = loads(doc_text)
            if form is not None and self._master.find(form_id, record["FNumber"]) is None:
                form.add(record)
        for lot_id, material_id, material_number, number, created in self._conn.execute(
            "SELECT lot_id, material_id, material_number, number, created FROM lots ORDER BY lot_id"
        ):
            self._master.add_lot(lot_id, Ref(material_id, material_number), number, created)
        bills = self._conn.execute("SELECT doc FROM bills WHERE form_id = ? ORDER BY fid", (FORM_ID,))
        for (doc_text,) in bills:
            self._cache(_revive(loads(doc_text)))

    def _cache(self, doc: dict[str, Any]) -> None:
        head = doc["head"]
        self._bills[head["FID"]] = doc
        self._by_number[number_key(head["FBillNo"])] = head["FID"]
        self._by_text.setdefault(text_key(head["FBillNo"]), set()).add(head["FID"])


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


def payload_digest(data: Any) -> str:
    """What ValidateRepeatJson compares: the data packet with its keys sorted (pure, no lock needed)."""
    return hashlib.sha256(dumps(_sorted(data)).encode()).hexdigest()


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value
