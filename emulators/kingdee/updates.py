"""Updates through Save/BatchSave: a Model whose FID is not 0 changes that stored bill (every bill form).

kingdee-webapi.md §3.1/§3.2: ``NeedUpDateFields`` (fields to update; "更新字段时Model数据包中必须设置内码，
若更新单据体字段还需设置分录内码"), ``IsDeleteEntry`` (default true: "on update, existing entry rows not
present in the payload are deleted"), ``FID`` 0 = new bill, non-zero = update; row ``FEntryID`` 0 = new row,
non-zero = that stored row. Everything else below is decided here ([INF]/[?]; texts marked [?] are
invented in the style of the captured ones).

Decisions:
- Merge, then check the merged bill. The stored bill is turned back into a Model (its stored values
  wrapped as ``bills.Kept``: taken as they are, references not looked up again, so a kept customer or
  lot stays even if its record was disabled since; fields kept as sent as they were sent), the Model's
  keys are laid over it (any key case, the form's entity aliases too), and the result is read and checked
  by ``bills.DraftReader`` exactly like a new bill: conversions, references, must-input, lot, quantity
  and link checks apply to the merged bill, never to the partial payload, so a field not sent keeps its
  stored value and does not fail. Amounts, FPrice/FTaxPrice and the sub-head totals are recomputed from
  the merged rows (``bills.compute_amounts``). Values a default derived on create (the unit from the
  material, the receiver/settler/payer from the customer, the owner from the stock organisation) are not
  re-derived when only their source field changes: the stored value counts as sent. A sent reference is
  looked up in the organisation of the merged bill (a changed FSaleOrgId with the customer sent with it
  finds that organisation's customer).
- Keys not sent keep their stored value, with or without NeedUpDateFields [INF: the emulator never
  clears a field the Model does not name]. NeedUpDateFields empty (the default): every key the Model
  sends is updated. Non-empty: only the keys it lists are taken from the Model (header, sub-head or row
  fields, matched by key in any case; ``FEntity.FRealQty``/``SubHeadEntity.FSettleCurrID`` spellings
  accepted; an entity key itself, ``FEntity``/``SubHeadEntity``/``FInStockEntry``/``FInStockFin``, takes
  every field sent in that entity); other keys sent are ignored. A key listed in NeedUpDateFields that is
  no field of the form (its custom fields included) fails the bill like an unknown Model key
  (``元数据中标识为X的字段不存在``, MsgCode 9). NeedUpDateFields and IsDeleteEntry are read only for
  updates; a new bill (FID 0) ignores them.
- Rows (the entry array ``FEntity``/``FInStockEntry``) are touched only when the Model sends the entry
  array and NeedUpDateFields is empty or names the entry entity or one of its fields (e.g.
  ``["FRealQty"]``); otherwise every stored row is kept as it is, whatever IsDeleteEntry says (a
  header-only update never deletes rows). When rows are touched: a row whose FEntryID (any key case) is
  a row of the bill updates that row (NeedUpDateFields filters its keys); a row without FEntryID, or with
  0/``""``, is a new row and takes every key it sends (there is nothing stored to keep); stored rows the
  Model does not name are deleted when IsDeleteEntry is true (the default) and kept when it is false.
  An entry value that is not an array counts as no rows (as for new bills): with IsDeleteEntry true the
  bill then fails ``单据体实体【明细信息】至少需要录入一行分录``.
- Row order: the stored rows that stay keep their order, new rows follow in Model order; FSeq is
  renumbered 1..n; FEntryIDs of stored rows are kept, new rows get new ones (never reused). Row errors of
  the merged bill name the merged row's seq; FEntryID errors name the row's position in the Model.
- Kept as they are unless sent: FID (never changes), FBillNo (a sent ``""`` also keeps it),
  FCreateDate. FModifyDate is set to the time of the update. FDocumentStatus stays (A 创建 or D 重新审核);
  with IsAutoSubmitAndAudit true the updated bill is audited (C) after the stock check, as a new bill
  would be [INF: one client says it must not be true on update; the emulator does not refuse it].
- Refusals (the bill fails alone; the other bills of a batch are saved or refused on their own; MsgCode
  11 unless a metadata error makes it 9), each the only error of that bill:
  FID not a bill of this form: ``FID为n的单据不存在，或者已被删除。`` (FieldName FID; a bill of another form
  does not count); audited bill (C): ``单据编号为“X”的销售出库单，单据已经审核，不允许修改！`` and submitted bill
  (B): ``…，单据已经提交，不允许修改！`` (FieldName null, the form's name as in ``operations``) [?: the
  operations' style; a real server locks submitted and audited bills against edits]; a row FEntryID
  that is no row of that bill: ``单据体实体【明细信息】第【n】行分录，FEntryID为m的分录不存在，或者已被删除。``
  and the same FEntryID twice in the Model: ``…，FEntryID为m的分录在数据包中重复出现。`` (FieldName the
  form's FEntryID key) [?]; the same FID twice in one BatchSave: the later one fails
  ``FID为n的单据在本次保存的数据包中重复出现。`` (FieldName FID) [?]. A changed FBillNo must be unique among the
  other bills of the form (the verbatim DUPERR message); keeping its own number is no conflict.
- Links (``links``): an updated SAL_RETURNSTOCK/STK_InStock row's returnable quantity does not count
  the bill's own stored quantity against itself. Nothing looks at bills linked to a changed source row.
- Persisted like creates (``store``): the bill's row is rewritten in the same transaction as the other
  bills of the call, its number and query indexes updated; lots named by the merged rows are found or
  created as for new bills.
"""

from __future__ import annotations

import copy
from typing import Any

from .bills import (
    RANK_FID,
    SYSTEM_KEYS,
    ConversionError,
    Draft,
    DraftReader,
    Kept,
    fid_problem,
    parse_decimal,
    reference_text,
    row_prefix,
)
from .form import BillForm
from .store import Store

# FDocumentStatus values a bill cannot be updated in -> message tail (after ``单据编号为“X”的<form>，``)
LOCKED = {"B": "单据已经提交，不允许修改！", "C": "单据已经审核，不允许修改！"}
MSG_NO_ROW = "FEntryID为{}的分录不存在，或者已被删除。"
MSG_ROW_TWICE = "FEntryID为{}的分录在数据包中重复出现。"
MSG_FID_TWICE = "FID为{}的单据在本次保存的数据包中重复出现。"


class Need:
    """NeedUpDateFields as what it lets through: field names (lower) and whole entities."""

    def __init__(self, form: BillForm, reader: DraftReader, draft: Draft, keys: tuple[str, ...]) -> None:
        self.everything = not keys
        self.names: set[str] = set()
        self.entities: set[str] = set()
        known = (
            set(form.field_by_key)
            | set(form.entry_field_by_key)
            | reader.head_extra
            | reader.subhead_extra
            | reader.entry_extra
            | {"fid"}
        )
        for key in keys:
            entity, _, name = key.rpartition(".")
            kind = form.entity_of(name)
            if not entity and kind is not None:
                self.entities.add(kind)
            elif (entity and form.entity_of(entity) is None) or name.lower() not in known:
                draft.unknown(key)
            else:
                self.names.add(name.lower())
        entry_names = set(form.entry_field_by_key) | reader.entry_extra
        self.rows = self.everything or "entry" in self.entities or bool(self.names & entry_names)

    def takes(self, key: Any, entity: str) -> bool:
        return self.everything or entity in self.entities or str(key).lower() in self.names


def duplicate_fid(draft: Draft) -> None:
    draft.fail(RANK_FID, MSG_FID_TWICE.format(draft.fid), "FID")


def prepare(
    form: BillForm, reader: DraftReader, store: Store, draft: Draft, model: Any, options_keys: tuple[str, ...]
) -> Draft:
    """The draft of an update (``draft.fid`` not 0, read from ``model`` alone): the Model merged onto the
    stored bill and read again, or a draft carrying the update's refusal. The caller holds the store lock."""
    need = Need(form, reader, draft, options_keys)
    if draft.unknown_keys:
        draft.refuse_unknown()
        return draft
    refused = Draft(draft.dindex, fid=draft.fid)
    stored = store.bill(draft.fid, form.form_id)
    if stored is None:
        fid_problem(refused)
        return refused
    status = stored["head"].get("FDocumentStatus")
    if status in LOCKED:
        message = f"单据编号为“{stored['head']['FBillNo']}”的{form.name}，{LOCKED[status]}"
        refused.fail(RANK_FID, message, None)
        return refused
    merged, entry_ids = _merge(form, stored, model, need, reader.options.delete_entry, refused)
    if refused.problems:
        return refused
    updated = reader.read(merged, draft.dindex)
    updated.fid, updated.stored = draft.fid, stored
    for entry, entry_id in zip(updated.entries, entry_ids, strict=True):
        entry.entry_id = entry_id
    return updated


def _merge(
    form: BillForm, stored: dict[str, Any], model: dict[str, Any], need: Need, delete_entry: bool, refused: Draft
) -> tuple[dict[str, Any], list[int]]:
    """(the merged Model, the FEntryID of each of its rows, 0 for new ones); row refusals go to ``refused``."""
    head: dict[str, Any] = {"FID": stored["head"]["FID"]}
    sub: dict[str, Any] = {}
    for key, value in stored["head"].items():
        lower = key.lower()
        if lower in SYSTEM_KEYS:
            continue
        if lower in form.subhead_only:
            sub[key] = _model_value(value)
        else:
            head[key] = _model_value(value)
    head.update(copy.deepcopy(stored["extra"]))
    sub.update(copy.deepcopy(stored["sub_extra"]))
    rows: Any = None
    rows_sent = False
    for key, value in model.items():
        lower = str(key).lower()
        kind = form.entity_of(lower)
        if kind == "subhead":
            for sub_key, item in value.items() if isinstance(value, dict) else ():
                if need.takes(sub_key, "subhead"):
                    _put(sub, sub_key, item)
        elif kind == "entry":
            rows, rows_sent = value, True
        elif lower != "fid" and need.takes(key, "head"):
            _put(head, key, value)
    head[form.subhead_key] = sub
    stored_rows = stored["entries"]
    if rows_sent and need.rows:
        merged_rows = _merge_rows(form, stored_rows, rows, need, delete_entry, refused)
    else:
        merged_rows = [(_row_model(form, e), e["fields"][form.k.entry_id]) for e in stored_rows]
    head[form.entry_key] = [row for row, _ in merged_rows]
    return head, [entry_id for _, entry_id in merged_rows]


def _merge_rows(
    form: BillForm,
    stored_rows: list[dict[str, Any]],
    rows: Any,
    need: Need,
    delete_entry: bool,
    refused: Draft,
) -> list[tuple[Any, int]]:
    entry_key = form.k.entry_id
    position = {e["fields"][entry_key]: i for i, e in enumerate(stored_rows)}
    changes: dict[int, dict[str, Any]] = {}
    new_rows: list[Any] = []
    for seq, row in enumerate(rows if isinstance(rows, list) else [], start=1):
        if not isinstance(row, dict):
            new_rows.append(row)  # the reader refuses it
            continue
        raw = next((v for k, v in row.items() if str(k).lower() == entry_key.lower()), None)
        try:
            entry_id = int(parse_decimal(raw))
        except ConversionError:
            entry_id = -1
        if entry_id == 0:
            new_rows.append(row)
        elif entry_id not in position:
            refused.fail(RANK_FID, row_prefix(form, seq) + MSG_NO_ROW.format(reference_text(raw)), entry_key, seq)
        elif position[entry_id] in changes:
            refused.fail(RANK_FID, row_prefix(form, seq) + MSG_ROW_TWICE.format(entry_id), entry_key, seq)
        else:
            changes[position[entry_id]] = row
    merged: list[tuple[Any, int]] = []
    for i, entry in enumerate(stored_rows):
        if i not in changes and delete_entry:
            continue
        row_model = _row_model(form, entry)
        for key, value in changes.get(i, {}).items():
            if str(key).lower() != entry_key.lower() and need.takes(key, "entry"):
                _put(row_model, key, value)
        merged.append((row_model, entry["fields"][entry_key]))
    merged.extend((row, 0) for row in new_rows)
    return merged


def _row_model(form: BillForm, entry: dict[str, Any]) -> dict[str, Any]:
    """A stored row written back as a Model row (its FEntryID, FSeq and amounts left out)."""
    row: dict[str, Any] = {}
    for key, value in entry["fields"].items():
        lower = key.lower()
        if lower not in SYSTEM_KEYS:
            row[key] = _model_value(value)
    row.update(copy.deepcopy(entry["extra"]))
    return row


def _model_value(value: Any) -> Kept:
    """A stored field value in the merged Model: kept as it is (references are not looked up again)."""
    return Kept(copy.deepcopy(value))


def _put(values: dict[str, Any], key: Any, value: Any) -> None:
    """Set ``key`` in ``values``, replacing the same key in any case."""
    lower = str(key).lower()
    for old in [k for k in values if str(k).lower() == lower]:
        del values[old]
    values[str(key)] = value
