"""SQLite persistence of saved bills (every bill form), lots, created master data and counters under
``--data-dir``.

Decisions:
- One file ``kingdee.sqlite3`` in the data dir (created with its parents when missing). Each bill is one
  row holding its JSON document and its form id; FID, FEntryID, lot ids and the auto-number sequences are
  counters in the same database. All bills saved by one Save/BatchSave call, their lots and the counters
  are written in one transaction (bills that fail validation write nothing, so this equals per-bill
  saving), so a restart loses nothing and never reuses an id or a number. ``synchronous=NORMAL`` (WAL): a
  committed bill survives the emulator process dying, not a power cut.
- FIDs and FEntryIDs come from one counter each for all bill forms [INF: a real server has one sequence
  per table; here an FID names one bill of one form, whatever the form, which no client can tell apart].
- FBillNo is unique per form, case-insensitively and ignoring trailing blanks (SQL Server collation).
  Auto-numbers follow each form's coding rule (``BillForm.auto_number``: ``XSCKD00000001``,
  ``XSTHD000001``, ``CGRK000001``), one sequence per form, skipping numbers a client already used; only
  saved bills consume a number. Delete removes the bill's row, which frees its number (an FID or FEntryID
  is never reused).
- Status changes (Submit/Audit/UnAudit) and updates (Save with FID, ``updates``) rewrite the bill's
  document in place; an update is written in the same transaction as the other bills of its call, keeps
  FID, FCreateDate and the FEntryIDs of the rows that stay, and re-indexes the bill's number.
- Master records created through Save on BD_MATERIAL/BD_Customer are rows of ``master_records`` and are
  loaded into the master data before the bills that may refer to them.
- Look-ups by bill number go through an in-memory dict per form (number key → FID), never a scan; the
  header and sub-head fields kept as sent (standard and custom fields) are indexed the same way for
  queries (text value → FIDs; bills holding something else than text there are always candidates).
- Everything is also cached in memory; callers serialise access with the server's lock.
- Ground truth for tests: ``read_bills(form)`` gives every saved bill of a form, shaped like its Model
  (see there).
- Sessions are not stored: like a real server restart, a restart drops every session (SDK clients sign
  every request and simply get a new one; session-login clients must log in again).
"""

from __future__ import annotations

import copy
import hashlib
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

from .bills import Draft, DraftEntry
from .form import BillForm
from .master import MasterData, number_key, text_key
from .schema import Field, Kind, Ref
from .wire import dumps, loads

DB_NAME = "kingdee.sqlite3"
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
    """Saved bills of every bill form, in SQLite and in memory."""

    def __init__(self, data_dir: Path, master: MasterData, forms: Callable[[str], BillForm | None]) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / DB_NAME
        self._master = master
        self._forms = forms
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(_SCHEMA)
        self._counters = dict(_FIRST)
        self._counters.update(dict(self._conn.execute("SELECT name, value FROM counters")))
        self._bills: dict[int, dict[str, Any]] = {}
        self._by_number: dict[tuple[str, str], int] = {}  # (form, number_key) -> FID: uniqueness
        # (form, lower field key) -> text_key(value) -> FIDs: query look-ups on FBillNo and the header
        # fields kept as sent; ``_unindexed``: the FIDs whose value there is not text (always candidates)
        self._by_text: dict[tuple[str, str], dict[str, set[int]]] = {}
        self._unindexed: dict[tuple[str, str], set[int]] = {}
        self._load()

    def close(self) -> None:
        self._conn.close()

    def form(self, form_id: str) -> BillForm | None:
        """The bill form ``form_id`` (any case) as the server has it."""
        return self._forms(form_id)

    # -- reading --------------------------------------------------------------------------------
    def bills(self, form_id: str | None = None) -> Iterator[dict[str, Any]]:
        """Saved bills (of ``form_id``; None: of every form) in FID order."""
        docs = [d for d in self._bills.values() if form_id is None or d["form"].lower() == form_id.lower()]
        return iter(sorted(docs, key=lambda b: b["head"]["FID"]))

    def bills_matching(self, form_id: str, key: str, texts: frozenset[str]) -> Iterator[dict[str, Any]]:
        """Saved bills of ``form_id`` whose ``key`` (FBillNo or a header field kept as sent) may be one of
        ``texts`` (``text_key`` values), in FID order: an index look-up."""
        index_key = (form_id.lower(), key.lower())
        found = self._by_text.get(index_key, {})
        fids = {fid for t in texts for fid in found.get(t, ())} | self._unindexed.get(index_key, set())
        return iter([self._bills[fid] for fid in sorted(fids)])

    def bill(self, fid: int, form_id: str | None = None) -> dict[str, Any] | None:
        doc = self._bills.get(fid)
        if doc is None or (form_id is not None and doc["form"].lower() != form_id.lower()):
            return None
        return doc

    def bill_by_number(self, form_id: str, bill_no: str) -> dict[str, Any] | None:
        fid = self._by_number.get((form_id.lower(), number_key(bill_no)))
        return None if fid is None else self._bills[fid]

    def number_taken(self, form_id: str, bill_no: str) -> bool:
        return (form_id.lower(), number_key(bill_no)) in self._by_number

    def read_bills(self, form: BillForm) -> list[dict[str, Any]]:
        """Every saved bill of ``form`` in FID order, shaped like its Model: the header fields, the sub-head
        object under its key (``SubHeadEntity``/``FInStockFin``) and the rows under the entry key
        (``FEntity``/``FInStockEntry``), each with every modelled field (FID, FBillNo, FDocumentStatus,
        FEntryID, FSeq and the computed amounts included); base data as its number (``"PRE001"``) or None,
        money and quantities as exact Decimals, and the fields kept as sent (standard and custom) as sent.
        The caller holds the server's lock (``KingdeeEmulator.read_bills`` does)."""
        out: list[dict[str, Any]] = []
        for doc in self.bills(form.form_id):
            head = doc["head"]
            bill = _plain(form.head_fields, head)
            bill.update(copy.deepcopy(doc["extra"]))
            bill[form.subhead_key] = {**_plain(form.subhead_fields, head), **copy.deepcopy(doc["sub_extra"])}
            bill[form.entry_key] = [
                {**_plain(form.entry_fields, e["fields"]), **copy.deepcopy(e["extra"])} for e in doc["entries"]
            ]
            out.append(bill)
        return out

    # -- writing --------------------------------------------------------------------------------
    def remember_payload(self, digest: str, seen: str) -> bool:
        """Record a data packet's digest (``payload_digest``); False when the identical packet came before."""
        cursor = self._conn.execute("INSERT OR IGNORE INTO payloads VALUES (?, ?)", (digest, seen))
        return cursor.rowcount == 1

    def save(self, form: BillForm, draft: Draft, *, status: str, now: str) -> dict[str, Any]:
        """Save one bill: ``save_all`` of one draft."""
        return self.save_all(form, [(draft, status)], now=now)[0]

    def save_all(self, form: BillForm, drafts: list[tuple[Draft, str]], *, now: str) -> list[dict[str, Any]]:
        """Assign FIDs, numbers, FEntryIDs and lots, then persist the bills in one transaction."""
        counters = dict(self._counters)
        new_lots: list[NewLot] = []
        docs: list[dict[str, Any]] = []
        # Numbers of this call, not yet in the cache: an auto-number must not take one of them.
        taken = {number_key(d.bill_no) for d, _ in drafts if d.bill_no}
        for draft, status in drafts:
            docs.append(self._document(form, draft, counters, new_lots, taken, status=status, now=now))
            taken.add(number_key(docs[-1]["head"]["FBillNo"]))
        rows = [
            (d["head"]["FID"], form.form_id, d["head"]["FBillNo"], number_key(d["head"]["FBillNo"]), dumps(d), now)
            for d, (draft, _) in zip(docs, drafts, strict=True)
            if draft.stored is None
        ]
        # Updates (``updates``): the bill's row is rewritten, its FID and creation time stay.
        changed = [
            (d["head"]["FBillNo"], number_key(d["head"]["FBillNo"]), dumps(d), d["head"]["FID"])
            for d, (draft, _) in zip(docs, drafts, strict=True)
            if draft.stored is not None
        ]
        with self._transaction():
            self._conn.executemany(
                "INSERT INTO lots VALUES (?, ?, ?, ?, ?)", [(i, m["Id"], m["Number"], n, now) for i, m, n in new_lots]
            )
            self._conn.executemany("UPDATE bills SET bill_no = ?, bill_no_key = ?, doc = ? WHERE fid = ?", changed)
            self._conn.executemany("INSERT INTO bills VALUES (?, ?, ?, ?, ?, ?)", rows)
            self._conn.executemany("INSERT OR REPLACE INTO counters VALUES (?, ?)", counters.items())
        self._counters = counters
        for lot_id, material, number in new_lots:
            self._master.add_lot(lot_id, _ref(material), number, now)
        for doc, (draft, _) in zip(docs, drafts, strict=True):
            if draft.stored is not None:
                self._uncache(self._bills[doc["head"]["FID"]])
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
        self._uncache(doc)
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
        self,
        form: BillForm,
        draft: Draft,
        counters: dict[str, int],
        new_lots: list[NewLot],
        taken: set[str],
        *,
        status: str,
        now: str,
    ) -> dict[str, Any]:
        head = dict(draft.head)
        if draft.stored is not None:  # an update: FID and creation time stay, an empty number keeps it
            before = draft.stored["head"]
            head["FID"] = before["FID"]
            head["FBillNo"] = draft.bill_no or before["FBillNo"]
            head["FCreateDate"] = before.get("FCreateDate")
        else:
            head["FID"] = _take(counters, "fid")
            head["FBillNo"] = draft.bill_no or self._auto_number(form, counters, taken)
            head["FCreateDate"] = now
        head["FDocumentStatus"] = status
        head["FModifyDate"] = now
        head["FApproveDate"] = now if status == "C" else None
        entries = [self._entry(form, e, counters, new_lots) for e in draft.entries]
        return {
            "form": form.form_id,
            "head": head,
            "extra": dict(draft.extra),
            "sub_extra": dict(draft.sub_extra),
            "entries": entries,
        }

    def _entry(
        self, form: BillForm, entry: DraftEntry, counters: dict[str, int], new_lots: list[NewLot]
    ) -> dict[str, Any]:
        fields = dict(entry.fields)
        fields[form.k.entry_id] = entry.entry_id or _take(counters, "entryid")
        if entry.lot_number:
            fields[form.k.lot] = self._lot(fields[form.k.material], entry.lot_number, counters, new_lots)
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

    def _auto_number(self, form: BillForm, counters: dict[str, int], taken: set[str]) -> str:
        counters.setdefault(form.number_counter, 1)
        while True:
            number = form.auto_number(_take(counters, form.number_counter))
            if not self.number_taken(form.form_id, number) and number_key(number) not in taken:
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
        for form_id, doc_text in self._conn.execute("SELECT form_id, doc FROM bills ORDER BY fid"):
            bill_form = self._forms(form_id)
            if bill_form is not None:  # a form this emulator no longer has stays in the file, unused
                self._cache(_revive(bill_form, {**loads(doc_text), "form": bill_form.form_id}))

    def _uncache(self, doc: dict[str, Any]) -> None:
        fid, form = doc["head"]["FID"], doc["form"].lower()
        del self._bills[fid]
        self._by_number.pop((form, number_key(doc["head"]["FBillNo"])), None)
        for key, value in _indexed_values(doc):
            if isinstance(value, str):
                self._by_text.get((form, key), {}).get(text_key(value), set()).discard(fid)
            else:
                self._unindexed.get((form, key), set()).discard(fid)

    def _cache(self, doc: dict[str, Any]) -> None:
        head = doc["head"]
        fid, form = head["FID"], doc["form"].lower()
        self._bills[fid] = doc
        self._by_number[(form, number_key(head["FBillNo"]))] = fid
        for key, value in _indexed_values(doc):
            if isinstance(value, str):
                self._by_text.setdefault((form, key), {}).setdefault(text_key(value), set()).add(fid)
            else:
                self._unindexed.setdefault((form, key), set()).add(fid)


def _indexed_values(doc: dict[str, Any]) -> Iterable[tuple[str, Any]]:
    """(lower key, value) of what the text index holds: FBillNo and the header and sub-head fields kept as
    sent (a header value wins over a sub-head value of the same key, as in queries)."""
    yield "fbillno", doc["head"]["FBillNo"]
    seen: set[str] = set()
    for values in (doc["extra"], doc["sub_extra"]):
        for key, value in values.items():
            lower = key.lower()
            if lower not in seen and value is not None:
                seen.add(lower)
                yield lower, value


def _plain(specs: tuple[Field, ...], values: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for spec in specs:
        value = values.get(spec.key)
        out[spec.key] = (value or {}).get("Number") if spec.kind is Kind.BASE else value
    return out


def _take(counters: dict[str, int], name: str) -> int:
    value = counters[name]
    counters[name] = value + 1
    return value


def _ref(value: dict[str, Any]) -> Ref:
    return Ref(value["Id"], value["Number"])


def _revive(form: BillForm, doc: dict[str, Any]) -> dict[str, Any]:
    """Known decimal fields come back as Decimal even when stored as JSON integers."""
    _revive_fields(doc["head"], form.field_by_key)
    for entry in doc["entries"]:
        _revive_fields(entry["fields"], form.entry_field_by_key)
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
