"""Master data seeded from ``emulators.dataset`` (read-only) plus the lots created by saved bills.

Decisions ([INF]/[?] points of the spec):
- Forms and their id keys: BD_MATERIAL (FMATERIALID), BD_Customer (FCUSTID), BD_Supplier (FSUPPLIERID),
  ORG_Organizations (FORGID), BD_STOCK (FSTOCKID), BD_Department (FDEPTID), BD_Currency (FCURRENCYID),
  BOS_BillType (FBILLTYPEID, a 32-hex string id like the real ones), plus the system presets a bill needs:
  BD_UNIT (every material's base unit is ``Pcs``), BD_StockStatus (``KCZT01_SYS`` 可用 …), the lot master
  BD_BatchMainFile (FLOTID), which fills up as bills with lots are saved, and the assistant data
  (辅助资料): the categories BOS_ASSISTANTDATA (FID; ``THLX`` 退货类型, ``THYY`` 退货原因 — category numbers
  [INF]) and their values BOS_ASSISTANTDATA_DETAIL (FENTRYID; FNumber, FName and FDataValue = the value's
  name, FId = its category). Form ids, numbers and field keys match case-insensitively (SQL Server's
  default collation). ``FMasterId`` aliases the id key.
- Scopes: a bill type belongs to one bill form (BOS_BillType.FBillFormID: ``XSCKD01_SYS`` is SAL_OUTSTOCK's,
  ``XSTHD01_SYS`` SAL_RETURNSTOCK's, ``RKD01_SYS`` STK_InStock's), and an assistant-data value to one
  category. A bill field only finds records of its scope (``Field.scope``, ``in_scope``): a bill type of
  another form, or a 退货原因 code sent as 退货类型, is not found, like an unknown number [INF: the real
  field's filter (单据类型 of the bill's form, 辅助资料 of the field's category)].
- Ids are stable: a fixed range per form in catalog order (PRE001 is currency 1, as in a real tenant).
- Every seeded record is audited (FDocumentStatus ``C``) and enabled (FForbidStatus ``A``), except the
  catalog's disabled ones (``Catalog.kingdee_disabled``: FForbidStatus ``B``). A disabled record stays
  queryable (FForbidStatus shows it) and keeps its number taken, but no bill can use it (``usable``).
- Organisation control (``Catalog.kingdee_orgs``) of BD_Customer, BD_Supplier, BD_MATERIAL and BD_STOCK is
  modelled as a real multi-organisation tenant stores it: one record per use organisation, all with the
  same number and FMasterId (the id of the create organisation's record), FCreateOrgId the create
  organisation and FUseOrgId the organisation that record is for. The create organisation's records
  take the form's fixed id range in catalog order; the allocated copies follow, in catalog then
  organisation order. A query by number therefore answers one row per use organisation, and a bill
  resolves such a number only among the records of the organisation its field is used in (see
  ``bills``). The other forms are shared by every organisation (no FCreateOrgId/FUseOrgId).
- Extra values per record come from ``Catalog.kingdee_fields`` (e.g. FBillFormID, an assistant value's
  category); a base-data value there is a number, resolved to the record of the field's form.
- BD_MATERIAL and BD_Customer also grow through Save (see ``basedata``): new records take the next id
  after the highest one of their form and carry FCreateOrgId/FUseOrgId (one use organisation).
- Readers may look records up without the server's lock: records are only ever added, each with one
  dict assignment, and scans copy the values first.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from emulators.dataset import Catalog

from .schema import Field, Kind, Ref, field_index

UNIT_FORM = "BD_UNIT"
STOCK_STATUS_FORM = "BD_StockStatus"
LOT_FORM = "BD_BatchMainFile"
BILL_TYPE_FORM = "BOS_BillType"
SUPPLIER_FORM = "BD_Supplier"
ASSISTANT_FORM = "BOS_ASSISTANTDATA"
ASSISTANT_DETAIL_FORM = "BOS_ASSISTANTDATA_DETAIL"
DEFAULT_UNIT = "Pcs"
DEFAULT_STOCK_STATUS = "KCZT01_SYS"

_UNITS = {"Pcs": "Pcs", "kg": "千克"}
_STOCK_STATUSES = {"KCZT01_SYS": "可用", "KCZT02_SYS": "待检", "KCZT03_SYS": "冻结"}

_COMMON = (
    Field("FNumber", "编码", Kind.TEXT),
    Field("FName", "名称", Kind.TEXT),
    Field("FDocumentStatus", "数据状态", Kind.ENUM),
    Field("FForbidStatus", "禁用状态", Kind.ENUM),
)


_ORG_FIELDS = (
    Field("FCreateOrgId", "创建组织", Kind.BASE, "ORG_Organizations"),
    Field("FUseOrgId", "使用组织", Kind.BASE, "ORG_Organizations"),
)
ORG_FORM = "ORG_Organizations"
ENABLED, DISABLED = "A", "B"


def master_id(record: dict[str, Any], id_key: str) -> Any:
    """FMasterId of a record: shared by the copies of one record in several organisations."""
    return record.get("FMasterId", record.get(id_key))


def usable(record: dict[str, Any], org_id: Any = None) -> bool:
    """Whether a bill may use the record: enabled and, when ``org_id`` is given and the record is
    organisation-controlled, the record of that use organisation."""
    if record.get("FForbidStatus") == DISABLED:
        return False
    if org_id is None or "FUseOrgId" not in record:
        return True
    use_org = record.get("FUseOrgId")
    return isinstance(use_org, dict) and use_org.get("Id") == org_id


def in_scope(form: MasterForm, record: dict[str, Any], scope: str | None) -> bool:
    """Whether the record belongs to ``scope`` (a bill form, an assistant-data category); None: any."""
    if scope is None or form.scope_key is None:
        return True
    value = record.get(form.scope_key)
    if isinstance(value, dict):
        value = value.get("Number")
    return str(value or "").casefold() == scope.casefold()


def _id_order(rid: Any) -> tuple[int, Any]:
    return (0, rid) if isinstance(rid, int) else (1, str(rid))


def number_key(number: Any) -> str:
    """Numbers compare like SQL Server strings: case-insensitive, trailing blanks ignored."""
    return str(number).rstrip().upper()


def text_key(number: Any) -> str:
    """A number as a query filter compares text (``query._as_text``): the key of the look-up indexes."""
    return str(number).rstrip().casefold()


@dataclass
class MasterForm:
    form_id: str
    caption: str
    id_key: str
    first_id: int
    extra_fields: tuple[Field, ...] = ()
    scope_key: str | None = None  # the field a record's scope is read from (``in_scope``)
    records: dict[Any, dict[str, Any]] = field(default_factory=dict)  # id -> record
    by_number: dict[str, list[Any]] = field(default_factory=dict)  # upper number -> ids
    by_text: dict[str, list[Any]] = field(default_factory=dict)  # text_key(number) -> ids, for queries

    @property
    def fields(self) -> dict[str, Field]:
        id_field = Field(self.id_key, "内码", Kind.TEXT if self.form_id == BILL_TYPE_FORM else Kind.INT)
        index = field_index((id_field, *_COMMON, *self.extra_fields))
        index["fmasterid"] = id_field
        return index

    def add(self, record: dict[str, Any]) -> None:
        rid = record[self.id_key]
        self.records[rid] = record
        self.by_number.setdefault(number_key(record["FNumber"]), []).append(rid)
        self.by_text.setdefault(text_key(record["FNumber"]), []).append(rid)


class MasterData:
    """All forms a query or a bill reference can reach, keyed case-insensitively."""

    def __init__(self, catalog: Catalog) -> None:
        self._forms: dict[str, MasterForm] = {}
        self._seed(catalog)

    # -- look-ups ---------------------------------------------------------------------------------
    def form(self, form_id: str) -> MasterForm | None:
        return self._forms.get(form_id.lower())

    def get(self, form_id: str, rid: Any) -> dict[str, Any] | None:
        form = self.form(form_id)
        return form.records.get(rid) if form else None

    def find(self, form_id: str, number: str) -> dict[str, Any] | None:
        """The record with this number (first one when a lot number exists for several materials)."""
        form = self.form(form_id)
        ids = form.by_number.get(number_key(number), []) if form else []
        return form.records[ids[0]] if form and ids else None

    def find_all(self, form_id: str, number: str) -> list[dict[str, Any]]:
        """Every record with this number (one per use organisation), in id order."""
        form = self.form(form_id)
        ids = list(form.by_number.get(number_key(number), [])) if form else []
        return [form.records[i] for i in sorted(ids, key=_id_order)] if form else []

    def find_by_name(self, form_id: str, name: str) -> dict[str, Any] | None:
        found = self.find_all_by_name(form_id, name)
        return found[0] if found else None

    def find_all_by_name(self, form_id: str, name: str) -> list[dict[str, Any]]:
        form = self.form(form_id)
        if not form:
            return []
        wanted = name.rstrip().casefold()
        records = list(form.records.values())  # a copy: a record may be added meanwhile
        return [r for r in records if str(r["FName"]).rstrip().casefold() == wanted]

    def copies(self, form_id: str, rid: Any) -> list[dict[str, Any]]:
        """The records sharing the FMasterId ``rid`` (the record itself and its allocated copies)."""
        form = self.form(form_id)
        if not form:
            return []
        records = list(form.records.values())
        return [r for r in records if master_id(r, form.id_key) == rid]

    def find_lot(self, material_id: Any, number: str) -> dict[str, Any] | None:
        form = self._forms[LOT_FORM.lower()]
        for rid in form.by_number.get(number_key(number), []):
            if form.records[rid]["FMaterialID"]["Id"] == material_id:
                return form.records[rid]
        return None

    def ref(self, form_id: str, record: dict[str, Any]) -> Ref:
        form = self.form(form_id)
        assert form is not None
        return Ref(record[form.id_key], record["FNumber"])

    def next_id(self, form_id: str) -> int:
        form = self.form(form_id)
        assert form is not None
        return max([form.first_id - 1, *form.records]) + 1

    def add_lot(self, lot_id: int, material: Ref, number: str, created: str) -> None:
        self._forms[LOT_FORM.lower()].add(
            {
                "FLOTID": lot_id,
                "FNumber": number,
                "FName": number,
                "FDocumentStatus": "C",
                "FForbidStatus": "A",
                "FMaterialID": material.as_json(),
                "FCreateDate": created,
            }
        )

    # -- seeding ----------------------------------------------------------------------------------
    def _register(
        self,
        form: MasterForm,
        rows: dict[str, str],
        extra: dict[str, dict[str, Any]] | None = None,
        catalog: Catalog | None = None,
    ) -> None:
        self._forms[form.form_id.lower()] = form
        disabled = catalog.kingdee_disabled.get(form.form_id, frozenset()) if catalog else frozenset()
        orgs = catalog.kingdee_orgs.get(form.form_id, {}) if catalog else {}
        values = catalog.kingdee_fields.get(form.form_id, {}) if catalog else {}
        allocated: list[tuple[dict[str, Any], str]] = []
        for i, (number, name) in enumerate(rows.items()):
            rid: Any = form.first_id + i
            if form.form_id == BILL_TYPE_FORM:
                rid = hashlib.md5(f"{BILL_TYPE_FORM}:{number}".encode()).hexdigest()
            record = {
                form.id_key: rid,
                "FNumber": number,
                "FName": name,
                "FDocumentStatus": "C",
                "FForbidStatus": DISABLED if number in disabled else ENABLED,
            }
            record.update((extra or {}).get(number, {}))
            record.update(self._values(form, values.get(number, {})))
            if number in orgs:
                create_org, use_orgs = orgs[number]
                record.update(FMasterId=rid, FCreateOrgId=self._org(create_org), FUseOrgId=self._org(create_org))
                allocated += [(record, org) for org in use_orgs if org != create_org]
            form.add(record)
        for offset, (record, org) in enumerate(allocated, start=len(rows)):
            form.add({**record, form.id_key: form.first_id + offset, "FUseOrgId": self._org(org)})

    def _values(self, form: MasterForm, values: dict[str, Any]) -> dict[str, Any]:
        """Catalog values of a record; a base-data value is a number of the field's form."""
        specs = {f.key.lower(): f for f in form.extra_fields}
        out: dict[str, Any] = {}
        for key, value in values.items():
            spec = specs.get(key.lower())
            assert spec is not None, f"{form.form_id} has no field {key}"
            if spec.kind is Kind.BASE:
                found = self.find(spec.ref_form or "", value)
                assert found is not None, f"unknown {spec.ref_form} {value} in the catalog"
                value = self.ref(spec.ref_form or "", found).as_json()
            out[spec.key] = value
        return out

    def _org(self, number: str) -> dict[str, Any]:
        org = self.find(ORG_FORM, number)
        assert org is not None, f"unknown organisation {number} in the catalog"
        return self.ref(ORG_FORM, org).as_json()

    def _seed(self, catalog: Catalog) -> None:
        master = catalog.kingdee_master
        self._register(MasterForm(UNIT_FORM, "计量单位", "FUNITID", 10101), _UNITS)
        self._register(MasterForm(STOCK_STATUS_FORM, "库存状态", "FStockStatusId", 10000), _STOCK_STATUSES)
        orgs = MasterForm(ORG_FORM, "组织机构", "FORGID", 100001)
        self._register(orgs, master[ORG_FORM])
        self._register(
            MasterForm("BD_Customer", "客户", "FCUSTID", 200001, extra_fields=_ORG_FIELDS),
            master["BD_Customer"],
            catalog=catalog,
        )
        self._register(
            MasterForm(SUPPLIER_FORM, "供应商", "FSUPPLIERID", 700001, extra_fields=_ORG_FIELDS),
            master.get(SUPPLIER_FORM, {}),
            catalog=catalog,
        )
        self._register(
            MasterForm("BD_STOCK", "仓库", "FSTOCKID", 400001, extra_fields=_ORG_FIELDS),
            master["BD_STOCK"],
            catalog=catalog,
        )
        self._register(MasterForm("BD_Department", "部门", "FDEPTID", 500001), master["BD_Department"])
        self._register(MasterForm("BD_Currency", "币别", "FCURRENCYID", 1), master["BD_Currency"])
        bill_types = MasterForm(
            BILL_TYPE_FORM,
            "单据类型",
            "FBILLTYPEID",
            0,
            extra_fields=(Field("FBillFormID", "业务对象", Kind.TEXT),),
            scope_key="FBillFormID",
        )
        self._register(bill_types, master[BILL_TYPE_FORM], catalog=catalog)
        self._register(MasterForm(ASSISTANT_FORM, "辅助资料类别", "FID", 900001), master.get(ASSISTANT_FORM, {}))
        details = MasterForm(
            ASSISTANT_DETAIL_FORM,
            "辅助资料",
            "FENTRYID",
            800001,
            extra_fields=(
                Field("FDataValue", "辅助资料名称", Kind.TEXT),
                Field("FId", "类别", Kind.BASE, ASSISTANT_FORM),
            ),
            scope_key="FId",
        )
        names = master.get(ASSISTANT_DETAIL_FORM, {})
        data_values = {number: {"FDataValue": name} for number, name in names.items()}
        self._register(details, names, data_values, catalog=catalog)
        self._seed_materials(catalog)
        self._forms[LOT_FORM.lower()] = MasterForm(
            LOT_FORM,
            "批号主档",
            "FLOTID",
            600001,
            extra_fields=(
                Field("FMaterialID", "物料", Kind.BASE, "BD_MATERIAL"),
                Field("FCreateDate", "创建日期", Kind.DATE),
            ),
        )

    def _seed_materials(self, catalog: Catalog) -> None:
        unit = self.find(UNIT_FORM, DEFAULT_UNIT)
        assert unit is not None
        unit_ref = self.ref(UNIT_FORM, unit).as_json()
        extra = {
            s.spec_no: {
                "FSpecification": s.spec_name,
                "FIsBatchManage": s.batch_managed,
                "FBARCODE": s.barcode,
                "FBaseUnitId": unit_ref,
            }
            for s in catalog.skus
            if s.known_to_kingdee
        }
        form = MasterForm(
            "BD_MATERIAL",
            "物料",
            "FMATERIALID",
            300001,
            extra_fields=(
                Field("FSpecification", "规格型号", Kind.TEXT),
                Field("FIsBatchManage", "启用批号管理", Kind.BOOL),
                Field("FBARCODE", "条码", Kind.TEXT),
                Field("FBaseUnitId", "基本单位", Kind.BASE, UNIT_FORM),
                *_ORG_FIELDS,
            ),
        )
        retired = {"FSpecification": "", "FIsBatchManage": False, "FBARCODE": "", "FBaseUnitId": unit_ref}
        for number in catalog.kingdee_master["BD_MATERIAL"]:
            extra.setdefault(number, retired)  # disabled goods are no longer in the WDT catalog
        self._register(form, catalog.kingdee_master["BD_MATERIAL"], extra, catalog=catalog)
