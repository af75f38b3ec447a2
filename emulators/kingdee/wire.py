"""JSON on the wire: exact decimals in and out, and the three request body shapes of spec §1.2.

Decisions ([INF]/[?] points of the spec):
- Bodies are parsed with ``parse_float=Decimal`` so a quantity sent as the JSON number ``19.9`` is the
  exact decimal 19.9, never a float. Responses write decimals as plain JSON numbers without exponent
  and without trailing zeros (``2``, ``19.9``, ``39.8``) and non-ASCII text as UTF-8.
- Parameter names of the named-parameter shape are matched case-insensitively (``formid``/``FormId``,
  ``data``/``Data``); ``data`` may be a JSON object or a JSON string holding one.
- ``parameters`` (positional shape, also inside the classic envelope) may be an array or a string that
  holds a JSON array; a bare top-level JSON array is read the same way. When a data-only service gets
  more positional values than it takes (e.g. ``[formid, data]`` for ExecuteBillQuery) the last one is
  the data.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any


class BadRequest(Exception):
    """The body or a parameter cannot be read; answered with MsgCode 8 (参数错误)."""


def loads(text: str | bytes) -> Any:
    """Parse JSON keeping every non-integer number as an exact Decimal (NaN/Infinity are not JSON)."""
    return json.loads(text, parse_float=Decimal, parse_constant=_reject_constant)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def decimal_text(value: Decimal) -> str:
    """Plain notation of an exact decimal: no exponent, no trailing zeros, no negative zero."""
    if value.is_nan() or value.is_infinite():
        raise ValueError("not a finite decimal")
    if value == 0:
        return "0"
    text = format(value.normalize(), "f")
    return text


def dumps(value: Any) -> str:
    """Serialise like the real server's JSON: decimals as numbers, non-ASCII text unescaped."""
    parts: list[str] = []
    _encode(value, parts)
    return "".join(parts)


def _encode(value: Any, out: list[str]) -> None:
    if value is None or isinstance(value, (bool, str)):
        out.append(json.dumps(value, ensure_ascii=False))
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, Decimal):
        out.append(decimal_text(value))
    elif isinstance(value, float):
        out.append(repr(value))
    elif isinstance(value, Mapping):
        out.append("{")
        for i, (key, item) in enumerate(value.items()):
            if i:
                out.append(",")
            out.append(json.dumps(str(key), ensure_ascii=False))
            out.append(":")
            _encode(item, out)
        out.append("}")
    elif isinstance(value, (list, tuple)):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _encode(item, out)
        out.append("]")
    else:
        raise TypeError(f"cannot serialise {type(value).__name__}")


def parse_body(raw: bytes) -> Any:
    """The request body as JSON; an empty body is an empty object (GetDataCenterList sends ``{}``)."""
    text = raw.decode("utf-8-sig", errors="strict").strip() if raw else ""
    if not text:
        return {}
    try:
        return loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"请求数据包不是合法的JSON：{exc}") from exc


def lower_keys(obj: Mapping[str, Any]) -> dict[str, Any]:
    """Case-insensitive view of an object's keys (first spelling wins)."""
    view: dict[str, Any] = {}
    for key, value in obj.items():
        view.setdefault(str(key).lower(), value)
    return view


def extract_params(
    body: Any,
    names: Sequence[str],
    aliases: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, Any]:
    """Map the body onto the service's parameter names, whatever the body shape (spec §1.2)."""
    positional = _positional(body)
    if positional is not None:
        return _from_positional(positional, names)
    if not isinstance(body, Mapping):
        raise BadRequest("请求数据包必须是JSON对象或参数数组")
    view = lower_keys(body)
    params: dict[str, Any] = {}
    for name in names:
        spellings = [name, *((aliases or {}).get(name, ()))]
        params[name] = next((view[s.lower()] for s in spellings if s.lower() in view), None)
    return params


def _positional(body: Any) -> list[Any] | None:
    if isinstance(body, list):
        return body
    if not isinstance(body, Mapping):
        return None
    view = lower_keys(body)
    if "parameters" not in view:
        return None
    value = view["parameters"]
    if isinstance(value, str):
        try:
            value = loads(value) if value.strip() else []
        except ValueError as exc:
            raise BadRequest(f"参数parameters不是合法的JSON数组：{exc}") from exc
    if not isinstance(value, list):
        raise BadRequest("参数parameters必须是数组")
    return value


def _from_positional(values: list[Any], names: Sequence[str]) -> dict[str, Any]:
    if names and names[-1] == "data" and len(values) > len(names):
        # e.g. [formid, data] sent to a data-only service: the data is the last value.
        values = values[: len(names) - 1] + [values[-1]]
    return {name: (values[i] if i < len(values) else None) for i, name in enumerate(names)}


def data_object(value: Any, name: str = "data") -> dict[str, Any]:
    """A ``data`` parameter as an object, whether it was sent as an object or as a JSON string."""
    if isinstance(value, str):
        if not value.strip():
            raise BadRequest(f"参数{name}的值不能为空。")
        try:
            value = loads(value)
        except ValueError as exc:
            raise BadRequest(f"参数{name}不是合法的JSON：{exc}") from exc
    if value is None:
        raise BadRequest(f"参数{name}的值不能为空。")
    if not isinstance(value, dict):
        raise BadRequest(f"参数{name}必须是JSON对象。")
    return value


def to_bool(value: Any, default: bool) -> bool:
    """Option flags arrive as JSON booleans or as strings ("true", "True", "false"); spec §3.1."""
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, Decimal)):
        return value != 0
    text = str(value).strip().lower()
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    return default
