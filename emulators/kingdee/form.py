"""What the emulator knows of one bill form: its entities, fields, rules, defaults and numbers.

A ``BillForm`` is a small declarative definition (``outstock``: SAL_OUTSTOCK, ``returnstock``:
SAL_RETURNSTOCK, ``instock``: STK_InStock, registered in ``forms``). The generic code reads a Model by
it (``bills``), stores and numbers its bills (``store``), queries them (``query``) and runs the
operations on them (``operations``); it names the fields it works with by their SAL_OUTSTOCK spelling
(``ROLES``) and finds each form's own spelling through ``BillForm.k`` (``FMaterialID`` is ``FMaterialId``
on SAL_RETURNSTOCK, ``FIsFree`` is ``FGiveAway`` on STK_InStock), so the error FieldNames, queries and
View properties use the form's own keys.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from functools import cached_property
from typing import Any

from .schema import Field, Kind, field_index

# Fields every bill form has and the emulator fills itself (record dates, totals, row ids, row amounts),
# in the order the forms list them.
RECORD_DATES: tuple[Field, ...] = (
    Field("FCreateDate", "创建日期", Kind.DATE),
    Field("FModifyDate", "最后修改日期", Kind.DATE),
    Field("FApproveDate", "审核日期", Kind.DATE),
)
BILL_TOTALS: tuple[Field, ...] = (
    Field("FBillAmount", "金额", Kind.DECIMAL),
    Field("FBillTaxAmount", "税额", Kind.DECIMAL),
    Field("FBillAllAmount", "价税合计", Kind.DECIMAL),
)
ROW_KEYS: tuple[Field, ...] = (Field("FEntryID", "实体主键", Kind.INT), Field("FSeq", "序号", Kind.INT))
ROW_AMOUNTS: tuple[Field, ...] = (
    Field("FEntryTaxAmount", "税额", Kind.DECIMAL),
    Field("FAmount", "金额", Kind.DECIMAL),
    Field("FAllAmount", "价税合计", Kind.DECIMAL),
)

Preset = Callable[[str, str], dict[str, Any] | None]  # (form, number) -> a reference, or None


@dataclass(frozen=True)
class HeadContext:
    """What a form's header defaults are computed from."""

    head: dict[str, Any]  # header and sub-head values read from the Model (before any default)
    preset: Preset  # a seeded record as a reference ({"Id", "Number"}), e.g. the default bill type
    today: str  # the server's local date, ``yyyy-MM-ddT00:00:00``


@dataclass(frozen=True)
class RowContext:
    """What a form's row defaults are computed from."""

    head: dict[str, Any]  # the header, its defaults applied
    fields: dict[str, Any]  # the row's values read from the Model
    sent: frozenset[str]  # the row keys (canonical) the Model sent
    unit: dict[str, Any] | None  # the material's base unit as a reference (None: no material)
    preset: Preset

    def sent_or(self, key: str, default: Any) -> Any:
        """The row's value of ``key`` when the Model sent it, else ``default``."""
        return self.fields.get(key) if key in self.sent else default


@dataclass(frozen=True)
class Keys:
    """The form's own spelling of the fields the generic code works with (attribute = role)."""

    bill_no: str
    stock_org: str
    owner_head: str
    owner_type_head: str
    included_tax: str
    bill_amount: str
    bill_tax_amount: str
    bill_all_amount: str
    entry_id: str
    seq: str
    material: str
    unit: str
    stock: str
    qty: str
    price: str
    tax_price: str
    tax_rate: str
    tax_amount: str
    amount: str
    all_amount: str
    gift: str
    lot: str
    owner: str
    owner_type: str


# Each role's SAL_OUTSTOCK key: another form's key is the one spelled the same but for case, unless
# ``BillForm.roles`` names it.
ROLES = {
    "bill_no": "FBillNo",
    "stock_org": "FStockOrgId",
    "owner_head": "FOwnerIdHead",
    "owner_type_head": "FOwnerTypeIdHead",
    "included_tax": "FIsIncludedTax",
    "bill_amount": "FBillAmount",
    "bill_tax_amount": "FBillTaxAmount",
    "bill_all_amount": "FBillAllAmount",
    "entry_id": "FEntryID",
    "seq": "FSeq",
    "material": "FMaterialID",
    "unit": "FUnitID",
    "stock": "FStockID",
    "qty": "FRealQty",
    "price": "FPrice",
    "tax_price": "FTaxPrice",
    "tax_rate": "FEntryTaxRate",
    "tax_amount": "FEntryTaxAmount",
    "amount": "FAmount",
    "all_amount": "FAllAmount",
    "gift": "FIsFree",
    "lot": "FLot",
    "owner": "FOwnerID",
    "owner_type": "FOwnerTypeID",
}


@dataclass(frozen=True)
class LinkRule:
    """A conversion rule (关联规则) whose link rows a bill may carry: where its source rows live."""

    source_form: str  # the bill form whose rows are linked (FSBillId = its FID, FSId = a row's FEntryID)
    source_table: str  # the entry table a link row names in FSTableName


@dataclass(frozen=True)
class BillForm:
    form_id: str
    name: str  # 销售出库单: used in the messages of the operations
    subhead_key: str  # the one-to-one sub-head object (SubHeadEntity, FInStockFin)
    entry_key: str  # the entry array (FEntity, FInStockEntry)
    subhead_orm: str  # View's property of the sub-head (SAL_OUTSTOCKFIN)
    entry_orm: str  # View's property of the rows (SAL_OUTSTOCKENTRY)
    head_fields: tuple[Field, ...]
    subhead_fields: tuple[Field, ...]
    entry_fields: tuple[Field, ...]
    # Standard fields kept as sent, without meaning (queryable); any case.
    head_standard: tuple[str, ...]
    subhead_standard: tuple[str, ...]
    entry_standard: tuple[str, ...]
    head_required: tuple[str, ...]  # canonical keys, in the order their errors are listed
    entry_required: tuple[str, ...]
    # Organisation-controlled base data: field key (any case) -> the organisation field it is looked up in.
    org_of: dict[str, str]
    head_defaults: Callable[[HeadContext], dict[str, Any]]  # applied to keys the Model did not send
    row_defaults: Callable[[RowContext], dict[str, Any]]
    number_prefix: str  # auto-numbers: prefix + ``number_digits`` digits
    number_digits: int
    number_counter: str  # the store's counter of auto-numbers
    negative_qty: str  # message tail for a negative quantity, ``{caption}`` = the quantity's caption
    roles: dict[str, str] = field(default_factory=dict)  # role -> key where the spelling differs (``ROLES``)
    entity_aliases: bool = False  # also accept ``<FormId>__<EntityKey>`` for the sub-head and entry keys
    link_key: str | None = None  # the rows' link entity (FEntity_Link), checked when ``link_rules`` is set
    link_rules: dict[str, LinkRule] = field(default_factory=dict)  # lower-cased rule id -> rule
    stock_sign: int = -1  # what auditing a bill does to stock: -1 issues (out), +1 receives (in)
    entry_caption: str = "明细信息"

    # -- derived ---------------------------------------------------------------------------------
    @cached_property
    def field_by_key(self) -> dict[str, Field]:
        """Header and sub-head fields by lower-cased key: one namespace, as in queries."""
        return field_index(self.head_fields + self.subhead_fields)

    @cached_property
    def entry_field_by_key(self) -> dict[str, Field]:
        return field_index(self.entry_fields)

    @cached_property
    def head_only(self) -> dict[str, Field]:
        return field_index(self.head_fields)

    @cached_property
    def subhead_only(self) -> dict[str, Field]:
        return field_index(self.subhead_fields)

    @cached_property
    def head_standard_keys(self) -> frozenset[str]:
        return frozenset(k.lower() for k in self.head_standard)

    @cached_property
    def subhead_standard_keys(self) -> frozenset[str]:
        return frozenset(k.lower() for k in self.subhead_standard)

    @cached_property
    def entry_standard_keys(self) -> frozenset[str]:
        return frozenset(k.lower() for k in self.entry_standard)

    @cached_property
    def org_fields(self) -> dict[str, str]:
        return {k.lower(): v for k, v in self.org_of.items()}

    @cached_property
    def k(self) -> Keys:
        every = {**self.field_by_key, **self.entry_field_by_key}
        found = {}
        for f in fields(Keys):
            name = self.roles.get(f.name) or every[ROLES[f.name].lower()].key
            found[f.name] = name
        return Keys(**found)

    def entity_of(self, key: str) -> str | None:
        """``"subhead"``/``"entry"`` when ``key`` (any case) names the sub-head or the entry entity."""
        lower = key.lower()
        for kind, entity in (("subhead", self.subhead_key), ("entry", self.entry_key)):
            if lower == entity.lower() or (self.entity_aliases and lower == f"{self.form_id}__{entity}".lower()):
                return kind
        return None

    def auto_number(self, sequence: int) -> str:
        return f"{self.number_prefix}{sequence:0{self.number_digits}d}"
