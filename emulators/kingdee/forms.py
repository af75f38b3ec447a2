"""The bill forms the emulator saves, and the tenant's custom fields on them.

Forms: SAL_OUTSTOCK (``outstock``), SAL_RETURNSTOCK (``returnstock``) and STK_InStock (``instock``); a form
id matches case-insensitively. Each one supports Save, BatchSave (and BatchSaveQuery), ExecuteBillQuery/
BillQuery, View, Submit, Audit, UnAudit and Delete, with the same faults.

Decisions on custom fields (扩展字段; the server's ``custom_fields``, CLI ``--custom-fields``) [INF]:
- A custom field belongs to one form, as a Kingdee extension extends one form's metadata. Each item is
  ``[FORM:][ENTITY.]KEY``: FORM a bill form id (any case; without it, SAL_OUTSTOCK — the option's
  meaning before the other forms existed), ENTITY that form's sub-head or entry key (``SubHeadEntity``/
  ``FEntity`` for SAL_OUTSTOCK and SAL_RETURNSTOCK, ``FInStockFin``/``FInStockEntry`` for STK_InStock;
  without it, the header). Examples: ``F_ora_Text_ckdh`` (SAL_OUTSTOCK header),
  ``SAL_RETURNSTOCK:F_ora_Text_rkdh``, ``STK_InStock:FInStockEntry.F_ora_Line``.
- Default ``F_ora_Text_ysdh,F_ora_Text_ckdh``: the two header fields the user's tenant has on SAL_OUTSTOCK
  (include/schemes/sales_outstock.yaml); SAL_RETURNSTOCK and STK_InStock have none by default (nothing is
  known of the tenant's extensions there), so an ``F_…`` key sent to them is unknown (MsgCode 9) unless
  the option names it.
- A custom field is saved as sent and can be queried in FieldKeys, FilterString and OrderString of its
  form (e.g. ``F_ora_Text_ckdh in ('CK…')``, how a client finds the bills Kingdee numbered itself); a
  header or sub-head one is indexed for ``=``/``IN`` look-ups like FBillNo (``query``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .form import BillForm
from .instock import INSTOCK
from .outstock import DEFAULT_CUSTOM_FIELDS, OUTSTOCK
from .returnstock import RETURNSTOCK, returnstock

FORMS: tuple[BillForm, ...] = (OUTSTOCK, RETURNSTOCK, INSTOCK)
_BY_ID = {f.form_id.lower(): f for f in FORMS}


class BillForms:
    """The server's bill forms (SAL_RETURNSTOCK lenient about FReturnType when ``default_return_type``)."""

    def __init__(self, default_return_type: str | None = None) -> None:
        forms = [f if f is not RETURNSTOCK else returnstock(default_return_type) for f in FORMS]
        self._by_id = {f.form_id.lower(): f for f in forms}

    def get(self, form_id: str) -> BillForm | None:
        return self._by_id.get(form_id.strip().lower())

    def __iter__(self) -> Iterator[BillForm]:
        return iter(self._by_id.values())


@dataclass(frozen=True)
class FormCustomFields:
    """One form's custom fields, lower-cased keys per entity."""

    head: frozenset[str] = frozenset()
    subhead: frozenset[str] = frozenset()
    entry: frozenset[str] = frozenset()


@dataclass(frozen=True)
class CustomFields:
    """The tenant's custom fields, per form (lower-cased form id)."""

    by_form: dict[str, FormCustomFields] = field(default_factory=dict)

    def of(self, form_id: str) -> FormCustomFields:
        return self.by_form.get(form_id.lower(), FormCustomFields())

    @staticmethod
    def parse(specs: Any) -> CustomFields:
        """Items ``[FORM:][ENTITY.]KEY`` (module docstring); a string is comma-separated."""
        items = specs.split(",") if isinstance(specs, str) else list(specs)
        found: dict[str, dict[str, set[str]]] = {}
        for item in (str(i).strip() for i in items):
            if not item:
                continue
            form_part, colon, rest = item.rpartition(":")
            form = _BY_ID.get(form_part.strip().lower()) if colon else OUTSTOCK
            entity, _, key = rest.rpartition(".")
            kinds = {"": "head", form.subhead_key.lower(): "subhead", form.entry_key.lower(): "entry"} if form else {}
            kind = kinds.get(entity.strip().lower())
            if form is None or kind is None or not key.strip():
                forms = ", ".join(f"{f.form_id} ({f.subhead_key}/{f.entry_key})" for f in FORMS)
                raise ValueError(
                    f"custom field {item!r}: write [FORM:]KEY, [FORM:]SUBHEAD.KEY or [FORM:]ENTRY.KEY; "
                    f"forms and their entities: {forms}"
                )
            per_form = found.setdefault(form.form_id.lower(), {"head": set(), "subhead": set(), "entry": set()})
            per_form[kind].add(key.strip().lower())
        return CustomFields(
            {
                form_id: FormCustomFields(frozenset(k["head"]), frozenset(k["subhead"]), frozenset(k["entry"]))
                for form_id, k in found.items()
            }
        )


DEFAULT_CUSTOM = CustomFields.parse(DEFAULT_CUSTOM_FIELDS)

__all__ = ["DEFAULT_CUSTOM", "DEFAULT_CUSTOM_FIELDS", "FORMS", "BillForms", "CustomFields", "FormCustomFields"]
