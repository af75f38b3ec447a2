"""Response shapes of spec §4 (Save/BatchSave envelope, query wrappers, login results).

Decisions ([INF]/[?] points of the spec):
- JSON types follow the captured real payloads, not the all-strings doc template: ``IsSuccess`` bool,
  ``MsgCode``/``DIndex``/``Id`` integers, ``ErrorCode`` the integer 500 and present only on failure.
- A BatchSave where some bills fail still lists the saved ones in ``SuccessEntitys`` and returns
  ``NeedReturnData`` for them; a response where every bill failed has no ``NeedReturnData`` (as captured).
- MsgCode of a Save/BatchSave answer: 0 when every bill was saved, 11 (验证失败) when some failed, 9
  (指定字段/值不存在) when some bill sent a field the form does not have (``bills``).
- ``NeedReturnData`` holds one object per saved bill (``{}`` when nothing was requested), so a
  one-bill save answers ``[{}]`` like the doc template.
- Query errors are wrapped ``[[{"Result": …}]]`` for ExecuteBillQuery (captured) and ``[{"Result": …}]``
  for BillQuery [?]: the error object sits where that service puts a row.
- An interaction (the negative-stock prompt of an audit) [?] is answered like a validation failure of
  that bill: ``IsSuccess`` false, an ``Errors`` entry ``{"FieldName": null, "Message": <the prompt>,
  "DIndex": <the bill's index>}`` among the others, MsgCode 11. The client answers it by sending the
  request again with the interaction's flag in ``InterationFlags``.
- Submit/Audit/UnAudit/Delete answer the §4.1 envelope without Id/Number/NeedReturnData; each target
  that succeeded is in ``SuccessEntitys`` (``{"Id", "Number", "DIndex"}``, DIndex = position in Ids or
  Numbers) and has a ``SuccessMessages`` entry ``单据编号为“X”的销售出库单，审核成功！`` (提交/审核/反审核/
  删除, after the captured AR audit message). MsgCode 11 when a target failed, 10 (未找到对应数据) when
  every failure is a bill that does not exist.
- View [?]: ``{"Result": {"ResponseStatus": {…IsSuccess true, MsgCode 0…}, "Result": <bill>}}``; the
  bill object's shape is in ``operations.view_object``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# spec §4.2
MSG_DEFAULT = 0
MSG_CONTEXT_LOST = 1
MSG_EXCEPTION = 4
MSG_PARAMETER = 8
MSG_NO_SUCH_FIELD = 9
MSG_NOT_FOUND = 10
MSG_VALIDATION = 11

SESSION_LOST = "会话信息已丢失，请重新登录"


@dataclass(frozen=True)
class Problem:
    """One entry of ``ResponseStatus.Errors``."""

    message: str
    field_name: str | None = None
    dindex: int = 0

    def as_json(self) -> dict[str, Any]:
        return {"FieldName": self.field_name, "Message": self.message, "DIndex": self.dindex}


def response_status(
    errors: list[Problem], successes: list[dict[str, Any]], msg_code: int, messages: list[Problem] | None = None
) -> dict[str, Any]:
    status: dict[str, Any] = {}
    if errors:
        status["ErrorCode"] = 500
    status.update(
        {
            "IsSuccess": not errors,
            "Errors": [e.as_json() for e in errors],
            "SuccessEntitys": successes,
            "SuccessMessages": [m.as_json() for m in messages or []],
            "MsgCode": msg_code,
        }
    )
    return status


def failure(message: str, msg_code: int, field_name: str | None = None) -> dict[str, Any]:
    """A whole-request failure (auth, bad parameter, unknown form)."""
    return {"Result": {"ResponseStatus": response_status([Problem(message, field_name)], [], msg_code)}}


def session_lost() -> dict[str, Any]:
    return failure(SESSION_LOST, MSG_CONTEXT_LOST)


def save_result(
    errors: list[Problem],
    successes: list[dict[str, Any]],
    return_data: list[dict[str, Any]],
    *,
    single: bool,
    msg_code: int | None = None,
) -> dict[str, Any]:
    """Save (``single``) or BatchSave result, spec §4.1; ``msg_code`` overrides 11 when errors are of another kind."""
    msg_code = (msg_code or MSG_VALIDATION) if errors else MSG_DEFAULT
    result: dict[str, Any] = {"ResponseStatus": response_status(errors, successes, msg_code)}
    if single and successes and not errors:
        result["Id"] = successes[0]["Id"]
        result["Number"] = successes[0]["Number"]
    if successes:
        result["NeedReturnData"] = return_data
    return {"Result": result}


def operation_result(
    errors: list[Problem], successes: list[dict[str, Any]], messages: list[Problem], msg_code: int
) -> dict[str, Any]:
    """Submit/Audit/UnAudit/Delete (spec §4.5): the envelope without Id/Number/NeedReturnData."""
    status = response_status(errors, successes, msg_code if errors else MSG_DEFAULT, messages)
    return {"Result": {"ResponseStatus": status}}


def view_result(bill: dict[str, Any]) -> dict[str, Any]:
    return {"Result": {"ResponseStatus": response_status([], [], MSG_DEFAULT), "Result": bill}}


def wrap_query_error(envelope: dict[str, Any], *, as_objects: bool) -> list[Any]:
    """Query services answer errors inside their own row structure (spec §4.3)."""
    return [envelope] if as_objects else [[envelope]]


def login_failure(message: str) -> dict[str, Any]:
    """The doc's failure template of ValidateUser & co. (spec §2.4)."""
    return {"Message": message, "MessageCode": "", "LoginResultType": 0, "Context": None, "FormId": None}
