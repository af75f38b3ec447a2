"""Link rows (关联关系) of a saved bill: ``FEntity_Link`` on SAL_RETURNSTOCK, ``FInStockEntry_Link`` on STK_InStock.

kingdee-returnstock-instock.md §2.7 (a), §6.5. Checked when the bill is saved, under the store lock,
for forms with a ``BillForm.link_key`` (SAL_OUTSTOCK keeps its ``FEntity_Link`` rows as sent). A link row
is an object in the row's link array, its keys prefixed with the link key, any case:
``FEntity_Link_FRuleId``, ``…_FSTableName``, ``…_FSBillId`` (the source bill's FID), ``…_FSId`` (the
source row's FEntryID); other keys (``…_FSTableId``, the ``…Qty``/``…QtyOld`` pairs) are kept as sent
and not checked (one client sends them with trailing blanks in the names, spec §2.7).

Decisions [INF] — every message text below is **invented** (the server's texts are unconfirmed, §8.2, §8.5);
each is prefixed ``单据体实体【明细信息】第【n】行分录，`` and fails the bill (MsgCode 11):
- The link value must be an array of objects: ``关联关系FEntity_Link必须是JSON数组，每个元素是一个JSON对象。``
  (FieldName the link key).
- The rule must be one the form knows (SAL_RETURNSTOCK: ``OutStock-SalReturnStock``, source SAL_OUTSTOCK,
  table ``T_SAL_OUTSTOCKENTRY``; STK_InStock: none — purchase orders are not emulated), FSTableName (when
  sent) the rule's source table, FSBillId an existing bill of the source form and FSId one of its rows;
  otherwise ``关联关系的源单不存在：转换规则“R”，源单内码“B”，源单分录内码“S”。`` (FieldName the link key).
  The source bill may be in any status (whether Save with links needs an audited source is unconfirmed).
- The row's material must be the source row's (same number): else
  ``物料“X”与源单“N”第【s】行的物料“Y”不一致。`` (FieldName the material key).
- Returned quantity: what all saved bills of the form (and the bills before it in the same batch, and the
  rows before it in the same bill) link to a source row, plus this row's FRealQty, may not exceed the
  source row's FRealQty: else ``实退数量Q超过源单“N”第【s】行的可退数量R。`` (FieldName FRealQty; R = what is
  left). A row with several link rows counts its quantity against each. An update (``updates``) does not
  count the stored quantities of the bill it replaces. Nothing is written back to the source bill, and
  deleting or updating a source bill does not look at the bills linked to it.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

from .bills import RANK_LINK, Draft, DraftEntry, row_prefix
from .form import BillForm, LinkRule
from .store import Store
from .wire import decimal_text, lower_keys

SourceRow = tuple[str, int]  # (source form id lower, FEntryID)


class LinkCheck:
    """The link checks of one Save/BatchSave call on ``form`` (the caller holds the store lock)."""

    def __init__(self, form: BillForm, store: Store) -> None:
        self.form = form
        self.store = store
        self._linked: dict[SourceRow, Decimal] | None = None  # quantity linked by saved bills, lazily

    def check(self, draft: Draft) -> dict[SourceRow, Decimal]:
        """Add the draft's link problems; the quantities it links (to ``accept`` once it is saved)."""
        usage: dict[SourceRow, Decimal] = defaultdict(Decimal)
        if self.form.link_key is None:
            return usage
        # An update: what the stored bill links is no longer used once the draft replaces it.
        own = self._usage_of(draft.stored) if draft.stored is not None else {}
        for entry in draft.entries:
            rows = _link_rows(entry, self.form.link_key)
            if rows is None:
                message = f"关联关系{self.form.link_key}必须是JSON数组，每个元素是一个JSON对象。"
                self._fail(draft, entry, message, self.form.link_key)
                continue
            for link in rows:
                self._check_link(draft, entry, link, usage, own)
        return usage

    def accept(self, usage: dict[SourceRow, Decimal], replaced: dict[str, Any] | None = None) -> None:
        """A checked draft was accepted (replacing the stored bill ``replaced``, an update): the bills after
        it in the batch see its quantities."""
        linked = self._saved()
        if replaced is not None and self.form.link_key is not None:
            for source, qty in self._usage_of(replaced).items():
                linked[source] -= qty
        for source, qty in usage.items():
            linked[source] += qty

    # -- one link row -------------------------------------------------------------------------------
    def _check_link(
        self,
        draft: Draft,
        entry: DraftEntry,
        link: dict[str, Any],
        usage: dict[SourceRow, Decimal],
        own: dict[SourceRow, Decimal],
    ) -> None:
        k, prefix = self.form.k, (self.form.link_key or "").lower() + "_"
        view = lower_keys(link)
        rule_id = _text(view.get(prefix + "fruleid"))
        bill_id, row_id = _text(view.get(prefix + "fsbillid")), _text(view.get(prefix + "fsid"))
        table = _text(view.get(prefix + "fstablename"))
        rule = self.form.link_rules.get(rule_id.lower())
        source = self._source(rule, table, bill_id, row_id)
        if rule is None or source is None:
            message = f"关联关系的源单不存在：转换规则“{rule_id}”，源单内码“{bill_id}”，源单分录内码“{row_id}”。"
            self._fail(draft, entry, message, self.form.link_key)
            return
        doc, row = source
        sk = self._source_form(rule).k
        number, seq = doc["head"]["FBillNo"], row["fields"].get(sk.seq)
        material, source_material = entry.fields.get(k.material), row["fields"].get(sk.material)
        if material and (source_material or {}).get("Number", "").upper() != material["Number"].upper():
            other = (source_material or {}).get("Number", "")
            message = f"物料“{material['Number']}”与源单“{number}”第【{seq}】行的物料“{other}”不一致。"
            self._fail(draft, entry, message, k.material)
            return
        key = (rule.source_form.lower(), int(row["fields"][sk.entry_id]))
        qty = entry.fields.get(k.qty) or Decimal(0)
        left = (row["fields"].get(sk.qty) or Decimal(0)) - self._saved()[key] + own.get(key, Decimal(0)) - usage[key]
        if qty > left:
            message = f"实退数量{decimal_text(qty)}超过源单“{number}”第【{seq}】行的可退数量{decimal_text(max(left, Decimal(0)))}。"
            self._fail(draft, entry, message, k.qty)
            return
        usage[key] += qty

    def _source_form(self, rule: LinkRule) -> BillForm:
        form = self.store.form(rule.source_form)
        assert form is not None, f"link rule to an unknown form {rule.source_form}"
        return form

    def _source(
        self, rule: LinkRule | None, table: str, bill_id: str, row_id: str
    ) -> tuple[dict[str, Any], dict[str, Any]] | None:
        if rule is None or (table and table.lower() != rule.source_table.lower()):
            return None
        if not bill_id.isdigit() or not row_id.isdigit():
            return None
        doc = self.store.bill(int(bill_id), rule.source_form)
        if doc is None:
            return None
        entry_id = self._source_form(rule).k.entry_id
        row = next((e for e in doc["entries"] if e["fields"].get(entry_id) == int(row_id)), None)
        return (doc, row) if row is not None else None

    def _saved(self) -> dict[SourceRow, Decimal]:
        """Quantity per source row that the saved bills of the form link to (read once per call)."""
        if self._linked is None:
            linked: dict[SourceRow, Decimal] = defaultdict(Decimal)
            for doc in self.store.bills(self.form.form_id):
                for source, qty in self._usage_of(doc).items():
                    linked[source] += qty
            self._linked = linked
        return self._linked

    def _usage_of(self, doc: dict[str, Any]) -> dict[SourceRow, Decimal]:
        """Quantity per source row that one saved bill links to."""
        usage: dict[SourceRow, Decimal] = defaultdict(Decimal)
        k, prefix = self.form.k, (self.form.link_key or "").lower() + "_"
        for entry in doc["entries"]:
            for link in _link_rows_of(entry["extra"], self.form.link_key or "") or []:
                view = lower_keys(link)
                rule = self.form.link_rules.get(_text(view.get(prefix + "fruleid")).lower())
                row_id = _text(view.get(prefix + "fsid"))
                if rule is not None and row_id.isdigit():
                    usage[(rule.source_form.lower(), int(row_id))] += entry["fields"].get(k.qty) or Decimal(0)
        return usage

    def _fail(self, draft: Draft, entry: DraftEntry, message: str, field_name: str | None) -> None:
        seq = entry.fields[self.form.k.seq]
        draft.fail(RANK_LINK, row_prefix(self.form, seq) + message, field_name, seq)


def _link_rows(entry: DraftEntry, link_key: str) -> list[dict[str, Any]] | None:
    return _link_rows_of(entry.extra, link_key)


def _link_rows_of(extra: dict[str, Any], link_key: str) -> list[dict[str, Any]] | None:
    """The row's link objects ([] when it has none); None when the value is not an array of objects."""
    value = lower_keys(extra).get(link_key.lower())
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        return None
    return value


def _text(value: Any) -> str:
    if value is None or isinstance(value, (dict, list, bool)):
        return ""
    return (decimal_text(value) if isinstance(value, Decimal) else str(value)).strip()
