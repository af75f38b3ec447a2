"""On-hand stock per (material, stock), for the negative-stock check of an audit (spec §3.1, §5).

Decisions ([INF]/[?] points of the spec):
- Stock is kept per (material, stock) in the material's base unit, without lots, stock status or owner.
  A material is counted by its FMasterId, so its records in several organisations (``master``) share
  one level per stock (a stock belongs to one organisation anyway). The seeded on-hand quantity of every
  seeded material in every seeded stock is drawn from ``random.Random("kingdee-inventory-<seed>")`` in
  (material id, stock id) order over the create organisations' records: 0 for about one pair in
  ten, else a whole number from 1 to 40, so ordinary bills audit and some hit the check. A material
  created later through Save starts at 0 everywhere.
- Only audited bills (FDocumentStatus ``C``) move stock: auditing (IsAutoSubmitAndAudit or Audit) a
  SAL_OUTSTOCK takes each row's FRealQty off, auditing a SAL_RETURNSTOCK or STK_InStock puts it in
  (``BillForm.stock_sign``); UnAudit reverses it. On start the level is recomputed as seed plus/minus the
  audited bills in the store, so it survives a restart without a table of its own.
- The check runs when a stock-out is audited: if, with all rows of the bill summed per (material, stock),
  a level would fall below zero, the audit is refused with the interaction prompt ``NEGATIVE_STOCK``
  unless the request's ``InterationFlags`` (``;``-separated, case-insensitive) holds
  ``STK_InvCheckResult``; with it the level may go negative. Receipts (returns, purchase stock-ins) are
  never checked, neither when audited nor when unaudited (taking their quantity out again) [INF: spec
  kingdee-returnstock-instock.md §2.6 says a return never meets the interaction; the unaudit check of a
  real server is not modelled]. Rows without a material or stock (saved with ValidateFlag false) are not
  counted. How the refusal is answered is in ``envelopes.interaction``.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from .form import BillForm
from .master import MasterData, MasterForm, master_id

NEGATIVE_STOCK = "更新库存时出现可以忽略的异常数据，是否继续？"
INV_CHECK_FLAG = "STK_InvCheckResult"
Key = tuple[Any, Any]  # (material id, stock id)


def allows_negative_stock(interaction_flags: Any) -> bool:
    flags = str(interaction_flags or "").split(";")
    return any(f.strip().lower() == INV_CHECK_FLAG.lower() for f in flags)


class Inventory:
    def __init__(self, master: MasterData, seed: int) -> None:
        rng = random.Random(f"kingdee-inventory-{seed}")
        self._levels: dict[Key, Decimal] = defaultdict(Decimal)
        materials = master.form("BD_MATERIAL")
        stocks = master.form("BD_STOCK")
        assert materials is not None and stocks is not None
        self._materials = materials
        originals = sorted(i for i, r in materials.records.items() if master_id(r, materials.id_key) == i)
        for material_id in originals:
            for stock_id in sorted(i for i, r in stocks.records.items() if master_id(r, stocks.id_key) == i):
                quantity = 0 if rng.random() < 0.1 else rng.randint(1, 40)
                self._levels[(material_id, stock_id)] = Decimal(quantity)

    def level(self, material_id: Any, stock_id: Any) -> Decimal:
        return self._levels.get((material_id, stock_id), Decimal(0))

    def shortfall(self, form: BillForm, doc: dict[str, Any]) -> bool:
        """Whether auditing this bill would drive some (material, stock) level below zero (stock-outs only)."""
        if form.stock_sign > 0:
            return False
        return any(self.level(*key) - qty < 0 for key, qty in _quantities(form, doc, self._materials).items())

    def audit(self, form: BillForm, doc: dict[str, Any]) -> None:
        """The bill was audited: its quantities leave (stock-out) or enter (receipt) the stock."""
        for key, qty in _quantities(form, doc, self._materials).items():
            self._levels[key] += form.stock_sign * qty

    def unaudit(self, form: BillForm, doc: dict[str, Any]) -> None:
        """The bill was unaudited: what its audit did is undone."""
        for key, qty in _quantities(form, doc, self._materials).items():
            self._levels[key] -= form.stock_sign * qty

    def replay(self, docs: Iterable[tuple[BillForm, dict[str, Any]]]) -> None:
        for form, doc in docs:
            if doc["head"].get("FDocumentStatus") == "C":
                self.audit(form, doc)


def _quantities(form: BillForm, doc: dict[str, Any], materials: MasterForm) -> dict[Key, Decimal]:
    """Quantities per (material master id, stock) of a bill document or a draft (``entries`` of ``fields``)."""
    k = form.k
    demand: dict[Key, Decimal] = defaultdict(Decimal)
    for entry in doc["entries"]:
        fields = entry["fields"] if isinstance(entry, dict) else entry.fields
        material, stock = fields.get(k.material), fields.get(k.stock)
        qty = fields.get(k.qty)
        if material and stock and isinstance(qty, Decimal):
            record = materials.records.get(material["Id"])
            demand[(master_id(record, materials.id_key) if record else material["Id"], stock["Id"])] += qty
    return demand
