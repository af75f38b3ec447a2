"""Save/BatchSave on BD_MATERIAL and BD_Customer: create a missing material or customer (minimal).

Decisions ([INF]/[?] points of the spec):
- Model keys, matched case-insensitively: FNumber (required: ``字段“编码”是必填项``), FName (required:
  ``字段“名称”是必填项``), FCreateOrgId (an organisation, required: ``字段“创建组织”是必填项``) and FUseOrgId
  (defaults to FCreateOrgId; a sent unknown one: ``字段“使用组织”是必填项``). BD_MATERIAL also takes
  FSpecification, FBARCODE, FIsBatchManage (default false) and FBaseUnitId (default ``Pcs``), either at
  the top level or inside a sub-head object such as ``SubHeadEntity``/``SubHeadEntity1`` where real
  material models keep them. Other keys, and id keys (FMATERIALID/FCUSTID/FID: no updates), are ignored:
  unlike the bill forms (``bills``), these forms' hundreds of standard fields are not listed, so unknown
  keys cannot be told from standard ones here and are not refused [a known leniency, master data only].
- The record is created in FCreateOrgId and usable there only, or in the sent FUseOrgId (organisation
  control, see ``master``): a bill of another organisation does not find it.
- FNumber is unique per form like a bill number: the verbatim ``违反字段唯一性要求：编码唯一。[X]在当前系统中
  已经被使用。`` (FieldName FNumber), also between two records of one batch.
- A record gets the next id of its form and is saved audited and enabled (FDocumentStatus ``C``,
  FForbidStatus ``A``) whatever IsAutoSubmitAndAudit says, so bills can use it at once: the emulator has
  no Audit for master data. It is persisted (``store.add_master``) and survives a restart.
- The answer is the §4.1 Save/BatchSave envelope (``Id``/``Number`` for Save, ``NeedReturnData`` ``{}``
  per saved record; NeedReturnFields is not applied).
"""

from __future__ import annotations

from typing import Any

from . import envelopes as env
from .bills import ConversionError, parse_bool, parse_text, resolve_reference
from .envelopes import Problem
from .master import UNIT_FORM, MasterData, number_key
from .store import Store
from .wire import lower_keys

FORMS = {"bd_material": "BD_MATERIAL", "bd_customer": "BD_Customer"}
ORG_FORM = "ORG_Organizations"
_MATERIAL_TEXT = {"fspecification": "FSpecification", "fbarcode": "FBARCODE"}


def saves(form_id: str) -> str | None:
    """The canonical form id when Save on ``form_id`` creates master data, else None."""
    return FORMS.get(form_id.lower())


def save_models(
    store: Store, master: MasterData, form_id: str, models: list[Any], now: str, *, single: bool
) -> dict[str, Any]:
    problems: list[Problem] = []
    successes: list[dict[str, Any]] = []
    seen: set[str] = set()
    for dindex, model in enumerate(models):
        record, found = _read(master, form_id, model, dindex)
        if record is not None:
            key = number_key(record["FNumber"])
            if key in seen or master.find(form_id, record["FNumber"]) is not None:
                found.append(
                    Problem(
                        f"违反字段唯一性要求：编码唯一。[{record['FNumber']}]在当前系统中已经被使用。",
                        "FNumber",
                        dindex,
                    )
                )
            seen.add(key)
        if found or record is None:
            problems.extend(found)
            continue
        form = master.form(form_id)
        assert form is not None
        record[form.id_key] = master.next_id(form_id)
        store.add_master(form_id, record, now)
        successes.append({"Id": record[form.id_key], "Number": record["FNumber"], "DIndex": dindex})
    return env.save_result(problems, successes, [{} for _ in successes], single=single)


def _read(
    master: MasterData,
    form_id: str,
    model: Any,
    dindex: int,
) -> tuple[dict[str, Any] | None, list[Problem]]:
    if not isinstance(model, dict):
        return None, [Problem(f"Model中第{dindex + 1}个数据包不是JSON对象。", None, dindex)]
    view = lower_keys(model)
    for name, value in model.items():  # sub-head objects of a material model: their keys count as top level
        sub_head = str(name).lower().startswith("subheadentity")
        if isinstance(value, dict) and form_id == "BD_MATERIAL" and sub_head:
            for key, item in lower_keys(value).items():
                view.setdefault(key, item)
    problems: list[Problem] = []

    def fail(caption: str, key: str) -> None:
        problems.append(Problem(f"字段“{caption}”是必填项", key, dindex))

    record: dict[str, Any] = {"FDocumentStatus": "C", "FForbidStatus": "A"}
    for key, caption in (("FNumber", "编码"), ("FName", "名称")):
        value = view.get(key.lower())
        text = parse_text(value).strip() if isinstance(value, (str, int)) else ""
        record[key] = text
        if not text:
            fail(caption, key)
    create_org, _ = resolve_reference(master, ORG_FORM, view.get("fcreateorgid"))
    if create_org is None:
        fail("创建组织", "FCreateOrgId")
    use_org = create_org
    if view.get("fuseorgid") not in (None, "", {}):
        use_org, _ = resolve_reference(master, ORG_FORM, view.get("fuseorgid"))
        if use_org is None:
            fail("使用组织", "FUseOrgId")
    record["FCreateOrgId"], record["FUseOrgId"] = create_org, use_org
    if form_id == "BD_MATERIAL":
        _material(master, view, record, problems, dindex)
    return record, problems


def _material(
    master: MasterData, view: dict[str, Any], record: dict[str, Any], problems: list[Problem], dindex: int
) -> None:
    for lower, key in _MATERIAL_TEXT.items():
        value = view.get(lower)
        record[key] = parse_text(value) if isinstance(value, (str, int)) else ""
    try:
        record["FIsBatchManage"] = parse_bool(view.get("fisbatchmanage"))
    except ConversionError as exc:
        problems.append(
            Problem(
                f"字段“启用批号管理”(FIsBatchManage)的值“{view.get('fisbatchmanage')}”转换失败：{exc}",
                "FIsBatchManage",
                dindex,
            )
        )
    unit_value = view.get("fbaseunitid")
    if unit_value in (None, "", {}):
        unit_value = {"FNumber": "Pcs"}
    unit, _ = resolve_reference(master, UNIT_FORM, unit_value)
    if unit is None:
        problems.append(Problem("字段“基本单位”是必填项", "FBaseUnitId", dindex))
    record["FBaseUnitId"] = unit
