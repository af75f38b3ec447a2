"""The wire side of the Qimen gateway: request parameters, the TOP signature, and response encodings.

Decisions ([INF], spec §2.1-§2.3):
- Parameters are the URL query merged with the body, the body winning on conflict. Bodies are read as
  ``application/x-www-form-urlencoded`` whatever the Content-Type says, except ``multipart/form-data``
  (parsed as such) and JSON (a JSON object is used only when the query carries no ``sign``, i.e. it is
  ignored as a copy of query parameters, as one real client sends). Repeated keys: the last one wins.
- Signature: all merged parameters except ``sign``, sorted byte-wise, ``key+value`` concatenated;
  md5 = MD5(secret + s + secret), hmac = HMAC-MD5(secret, s), hmac-sha256 = HMAC-SHA256(secret, s); first
  over the non-empty values, then over all values; hex compared case-insensitively.
- ``timestamp``: "yyyy-MM-dd HH:mm:ss" GMT+8, or all-digit epoch values: milliseconds, or seconds when the
  number is below 10^11.
- XML (``format=xml`` or no ``format``: TOP's default is XML, spec §2.2): ``<?xml version="1.0"
  encoding="utf-8" ?>`` then the envelope's root (``response`` / ``error_response``) with one element per
  key; a list ``x_list`` becomes ``<x_list list="true">`` holding one ``<x>`` per item (``stockout_list``
  -> ``<stockout>``, ``details_list`` -> ``<detail>``: trailing ``s`` dropped), as TOP writes lists; text
  is XML-escaped; ``Content-Type: text/xml;charset=UTF-8``. The element names of lists are not evidenced.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Mapping
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from emulators.wdt.query import parse_datetime
from emulators.wdt.timeline import SHANGHAI

JSON_CONTENT_TYPE = "application/json;charset=UTF-8"
XML_CONTENT_TYPE = "text/xml;charset=UTF-8"


# -- signature ---------------------------------------------------------------------------------------
def sign_string(params: Mapping[str, str], *, include_empty: bool = False) -> str:
    """Sorted `key+value` concatenation of everything but `sign` (spec §2.3 steps 1-4)."""
    keys = sorted(
        (k for k, v in params.items() if k and k != "sign" and (include_empty or v != "")),
        key=lambda k: k.encode("utf-8"),
    )
    return "".join(k + params[k] for k in keys)


def qimen_sign(
    params: Mapping[str, str], secret: str, sign_method: str = "md5", *, include_empty: bool = False
) -> str:
    """Upper-case hex Qimen signature; raises ValueError for an unknown sign_method."""
    data = sign_string(params, include_empty=include_empty).encode("utf-8")
    key = secret.encode("utf-8")
    method = sign_method.lower()
    if method == "md5":
        return hashlib.md5(key + data + key).hexdigest().upper()
    if method == "hmac":
        return hmac.new(key, data, hashlib.md5).hexdigest().upper()
    if method == "hmac-sha256":
        return hmac.new(key, data, hashlib.sha256).hexdigest().upper()
    raise ValueError(f"unsupported sign_method {sign_method!r}")


def verify_signature(params: Mapping[str, str], secret: str) -> bool:
    """True when `sign` matches, computed without empty values or, failing that, with them."""
    given = params.get("sign", "").upper()
    method = params.get("sign_method") or "md5"
    for include_empty in (False, True):
        expected = qimen_sign(params, secret, method, include_empty=include_empty)
        if given and hmac.compare_digest(given, expected):
            return True
    return False


def parse_timestamp(value: str) -> dt.datetime:
    """Gateway `timestamp` as an aware datetime: GMT+8 wall clock, or epoch millis/seconds."""
    if value.isdigit():
        number = int(value)
        seconds = number / 1000 if number >= 10**11 else number
        return dt.datetime.fromtimestamp(seconds, tz=SHANGHAI)
    return parse_datetime(value).replace(tzinfo=SHANGHAI)



# -- request parameters ------------------------------------------------------------------------------
def merge_params(query: str, content_type: str, body: bytes) -> dict[str, str]:
    """URL query merged with the body parameters; the body wins."""
    params = dict(parse_qsl(query, keep_blank_values=True))
    params.update(_body_params(content_type, body, query_signed="sign" in params))
    return params


def _body_params(content_type: str, body: bytes, *, query_signed: bool) -> dict[str, str]:
    if not body.strip():
        return {}
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind == "multipart/form-data":
        return _multipart_params(content_type, body)
    if "json" in kind or body.lstrip().startswith(b"{"):
        # A JSON copy of parameters already in the query must not override them.
        return {} if query_signed else _json_params(body)
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


def _json_params(body: bytes) -> dict[str, str]:
    try:
        data = json.loads(body)
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): _json_scalar(v) for k, v in data.items() if v is not None}


def _json_scalar(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _multipart_params(content_type: str, body: bytes) -> dict[str, str]:
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    params: dict[str, str] = {}
    if not message.is_multipart():
        return params
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name and not part.get_filename():
            payload = part.get_payload(decode=True) or b""
            params[str(name)] = payload.decode(part.get_content_charset() or "utf-8", "replace")
    return params


# -- encodings ------------------------------------------------------------------------------------------
def to_json(payload: Mapping[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def to_xml(payload: Mapping[str, Any]) -> bytes:
    """The envelope (one root key) as TOP-style XML."""
    parts = ['<?xml version="1.0" encoding="utf-8" ?>']
    for name, value in payload.items():
        _xml_element(parts, name, value)
    return "".join(parts).encode("utf-8")


def _xml_element(parts: list[str], name: str, value: Any) -> None:
    if isinstance(value, Mapping):
        parts.append(f"<{name}>")
        for key, item in value.items():
            _xml_element(parts, key, item)
        parts.append(f"</{name}>")
    elif isinstance(value, list):
        item_name = name.removesuffix("_list").removesuffix("s")
        parts.append(f'<{name} list="true">')
        for item in value:
            _xml_element(parts, item_name, item)
        parts.append(f"</{name}>")
    elif isinstance(value, bool):
        parts.append(f"<{name}>{'true' if value else 'false'}</{name}>")
    else:
        parts.append(f"<{name}>{escape('' if value is None else str(value))}</{name}>")
