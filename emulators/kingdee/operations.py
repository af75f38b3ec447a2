"""View, Submit, Audit, UnAudit and Delete of the bills of every bill form (spec §4.5).

Decisions ([INF]/[?] points of the spec):
- Targets: ``Ids`` (a comma-separated string of FIDs) has priority over ``Numbers`` (an array of bill
  numbers), as spec §4.5 has them; both empty answers MsgCode 8 ``data数据包中的参数Numbers和Ids不能同时为空。``.
  The other shapes are refused with MsgCode 8, nothing done [text INF: the server binds Ids to a string
  and Numbers to a list of strings]: Ids as an array ``data数据包中的参数Ids必须是以逗号分隔的内码字符串，
  不能是数组。``, Numbers as a string (or any non-array) ``data数据包中的参数Numbers必须是单据编号的数组。``.
  Ids sent as a JSON number is read as its text (one id), as a string binding reads a number; an empty
  string or null counts as not sent, for either. Targets are worked
  on one by one in the order sent; DIndex is the position in that list, as for multi-number operations.
  A target that names no bill of the form fails with ``单据编号为“X”的销售出库单不存在，或者已被删除。`` (by
  Ids: ``内码为“n”的…``; the form's name, ``BillForm.name``, in every message: 销售退货单, 采购入库单); the
  others still succeed. An FID of a bill of another form names no bill of this one.
- Status flow (FDocumentStatus): A 创建 --Submit--> B 审核中 --Audit--> C 已审核 --UnAudit--> D 重新审核
  --Submit--> B. IsAutoSubmitAndAudit on Save goes from nothing straight to C. Refusals, all MsgCode 11
  with FieldName null and prefix ``单据编号为“X”的销售出库单，``: Submit of B ``单据已经提交！`` [?], of
  C ``单据已经审核！`` (the captured text); Audit of A/D ``单据未提交，不允许审核！`` [?], of C
  ``单据已经审核！``; UnAudit of A/B/D ``单据未审核，不允许反审核！`` [?]; Delete of C
  ``单据已经审核，不允许删除！`` [?].
- Delete removes bills in A, B or D: the number is free again, FID/FEntryIDs are never reused.
- Audit checks and moves stock (``inventory``): a stock-out's shortfall refuses that bill with the
  interaction prompt ``更新库存时出现可以忽略的异常数据，是否继续？`` unless ``InterationFlags`` holds
  ``STK_InvCheckResult``; a receipt (return, purchase stock-in) adds its quantity. UnAudit undoes it.
  FApproveDate is set by Audit, cleared by UnAudit.
- View: ``Id`` (FID) has priority over ``Number``; neither → MsgCode 8 ``data数据包中的参数Number和Id不能
  同时为空。``; not found → MsgCode 10 with the not-found message above. The bill (``view_object``) uses the
  ORM property names of a real View [?]: the field key without its leading ``F`` (``Id``, ``BillNo``,
  ``DocumentStatus``, ``Date``, ``CustomerID`` …; custom ``F_…`` keys and other keys as sent); base data as
  ``{"Id", "Number", "Name": [{"Key": 2052, "Value": name}]}`` or null; the sub-head as a one-element
  array and the rows as an array (``Id`` = FEntryID, ``Seq``), in row order, under the form's ORM names
  (``BillForm.subhead_orm``/``entry_orm``: ``SAL_OUTSTOCKFIN``/``SAL_OUTSTOCKENTRY``,
  ``SAL_RETURNSTOCKFIN``/``SAL_RETURNSTOCKENTRY``, ``InStockFin``/``InStockEntry``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from . import envelopes as env
from .envelopes import Problem
from .form import BillForm
from .inventory import NEGATIVE_STOCK, Inventory, allows_negative_stock
from .master import MasterData
from .schema import Field, Kind
from .store import Store
from .wire import BadRequest, lower_keys, to_bool


@dataclass(frozen=True)
class Operation:
    name: str
    verb: str  # 提交 / 审核 / 反审核 / 删除
    allowed: frozenset[str]  # FDocumentStatus values the operation accepts
    refusals: dict[str, str]  # status -> message tail when refused


OPERATIONS = {
    op.name.lower(): op
    for op in (
        Operation("Submit", "提交", frozenset("AD"), {"B": "单据已经提交！", "C": "单据已经审核！"}),
        Operation(
            "Audit",
            "审核",
            frozenset("B"),
            {"A": "单据未提交，不允许审核！", "D": "单据未提交，不允许审核！", "C": "单据已经审核！"},
        ),
        Operation("UnAudit", "反审核", frozenset("C"), dict.fromkeys("ABD", "单据未审核，不允许反审核！")),
        Operation("Delete", "删除", frozenset("ABD"), {"C": "单据已经审核，不允许删除！"}),
    )
}


def _prefix(form: BillForm, number: str) -> str:
    return f"单据编号为“{number}”的{form.name}，"


def _not_found(form: BillForm, by_id: bool, target: str) -> str:
    return f"{'内码' if by_id else '单据编号'}为“{target}”的{form.name}不存在，或者已被删除。"


def targets(data: dict[str, Any]) -> tuple[bool, list[str]]:
    """(by id, the ids or numbers) of an operation's data packet; Ids win over Numbers."""
    view = lower_keys(data)
    raw_ids, raw_numbers = view.get("ids"), view.get("numbers")
    if raw_ids is not None and not isinstance(raw_ids, (str, int, Decimal)) or isinstance(raw_ids, bool):
        raise BadRequest("data数据包中的参数Ids必须是以逗号分隔的内码字符串，不能是数组。")
    if raw_numbers not in (None, "") and not isinstance(raw_numbers, list):
        raise BadRequest("data数据包中的参数Numbers必须是单据编号的数组。")
    ids = [i.strip() for i in str(raw_ids if raw_ids is not None else "").split(",") if i.strip()]
    if ids:
        return True, ids
    numbers = [str(n).strip() for n in raw_numbers or [] if str(n).strip()]
    if numbers:
        return False, numbers
    raise BadRequest("data数据包中的参数Numbers和Ids不能同时为空。")


def find(store: Store, form: BillForm, by_id: bool, target: str) -> dict[str, Any] | None:
    if not by_id:
        return store.bill_by_number(form.form_id, target)
    return store.bill(int(target), form.form_id) if target.isdigit() else None


def run(
    op: Operation, form: BillForm, store: Store, inventory: Inventory, data: dict[str, Any], now: str
) -> dict[str, Any]:
    """Apply ``op`` to every target; the caller holds the store lock."""
    by_id, wanted = targets(data)
    negative_ok = allows_negative_stock(lower_keys(data).get("interationflags"))
    errors: list[Problem] = []
    successes: list[dict[str, Any]] = []
    messages: list[Problem] = []
    missing = 0
    for dindex, target in enumerate(wanted):
        doc = find(store, form, by_id, target)
        if doc is None:
            missing += 1
            errors.append(Problem(_not_found(form, by_id, target), None, dindex))
            continue
        head = doc["head"]
        number, status = head["FBillNo"], head["FDocumentStatus"]
        if status not in op.allowed:
            refusal = op.refusals.get(status, "单据状态不允许该操作！")
            errors.append(Problem(_prefix(form, number) + refusal, None, dindex))
            continue
        if op.name == "Audit" and not negative_ok and inventory.shortfall(form, doc):
            errors.append(Problem(NEGATIVE_STOCK, None, dindex))
            continue
        _apply(op, form, store, inventory, doc, now)
        successes.append({"Id": head["FID"], "Number": number, "DIndex": dindex})
        messages.append(Problem(f"{_prefix(form, number)}{op.verb}成功！", None, dindex))
    code = env.MSG_NOT_FOUND if errors and missing == len(errors) else env.MSG_VALIDATION
    return env.operation_result(errors, successes, messages, code)


def _apply(op: Operation, form: BillForm, store: Store, inventory: Inventory, doc: dict[str, Any], now: str) -> None:
    fid = doc["head"]["FID"]
    if op.name == "Delete":
        store.delete(fid)
    elif op.name == "Submit":
        store.set_status(fid, "B", now)
    elif op.name == "Audit":
        inventory.audit(form, store.set_status(fid, "C", now))
    elif op.name == "UnAudit":
        inventory.unaudit(form, store.set_status(fid, "D", now))


# --------------------------------------------------------------------------------------------- View
def view(form: BillForm, store: Store, master: MasterData, data: dict[str, Any]) -> dict[str, Any]:
    d = lower_keys(data)
    fid, number = str(d.get("id") or "").strip(), str(d.get("number") or "").strip()
    if fid in ("", "0") and not number:
        raise BadRequest("data数据包中的参数Number和Id不能同时为空。")
    by_id = fid not in ("", "0")
    doc = find(store, form, by_id, fid if by_id else number)
    if doc is None:
        return env.failure(_not_found(form, by_id, fid if by_id else number), env.MSG_NOT_FOUND)
    entries = doc["entries"]
    if to_bool(d.get("issortbyseq"), False):
        entries = sorted(entries, key=lambda e: e["fields"].get(form.k.seq) or 0)
    return env.view_result(view_object(form, doc, master, entries))


def view_object(
    form: BillForm, doc: dict[str, Any], master: MasterData, entries: list[dict[str, Any]]
) -> dict[str, Any]:
    head = doc["head"]
    ref = _ref_writer(master)
    entry_id = form.k.entry_id
    bill = {"Id": head["FID"]}
    bill.update(_fields(form.head_fields, head, ref, skip={"FID"}))
    bill.update(doc["extra"])
    sub = {"Id": head["FID"], **_fields(form.subhead_fields, head, ref), **doc["sub_extra"]}
    bill[form.subhead_orm] = [sub]
    bill[form.entry_orm] = [
        {"Id": e["fields"].get(entry_id), **_fields(form.entry_fields, e["fields"], ref, skip={entry_id}), **e["extra"]}
        for e in entries
    ]
    return bill


def _fields(
    specs: tuple[Field, ...],
    values: dict[str, Any],
    ref: Callable[[Field, Any], Any],
    *,
    skip: frozenset[str] | set[str] = frozenset(),
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for spec in specs:
        if spec.key in skip:
            continue
        value = values.get(spec.key)
        out[orm_name(spec.key)] = ref(spec, value) if spec.kind is Kind.BASE else value
    return out


def orm_name(key: str) -> str:
    """``FBillNo`` → ``BillNo``: the ORM property name of a field key."""
    return key[1:] if len(key) > 1 and key[0] == "F" and key[1].isupper() else key


def _ref_writer(master: MasterData) -> Callable[[Field, Any], Any]:
    def write(spec: Field, value: Any) -> Any:
        if not value:
            return None
        record = master.get(value.get("Form", spec.ref_form or ""), value["Id"])
        name = record.get("FName") if record else None
        return {"Id": value["Id"], "Number": value["Number"], "Name": [{"Key": 2052, "Value": name}]}

    return write
