"""The wire side of the Qimen gateway: request parameters, the TOP signature, and response encodings.

Decisions ([INF], spec §2.1-§2.3):
- Parameters are the URL query merged with the body, the body winning on conflict (the official SDK
  sends system parameters in the query and business parameters as a form body, §2.1). Bodies are read
  as ``application/x-www-form-urlencoded`` whatever the Content-Type says, except
  ``multipart/form-data`` (parsed as such) and JSON: a JSON body (a ``json`` Content-Type, or a body
  that starts with ``{`` or ``[``) is ignored, always. No SDK sends parameters as JSON; a client that
  only sends JSON therefore fails the gateway's first check (28 "Missing App Key"), and one that sends
  a JSON copy of its query parameters (one real client does) is served from the query. Repeated keys:
  the last one wins.
- Signature: all merged parameters except ``sign``, sorted byte-wise, ``key+value`` concatenated;
  md5 = MD5(secret + s + secret), hmac = HMAC-MD5(secret, s), hmac-sha256 = HMAC-SHA256(secret, s); first
  over the non-empty values, then over all values; hex compared case-insensitively. ``sign_method``
  is required and case-sensitive, as TOP's values are: ``md5``, ``hmac``, ``hmac-sha256`` (``MD5`` is
  not one of them).
- ``timestamp``: "yyyy-MM-dd HH:mm:ss" GMT+8, or an all-digit value of epoch **milliseconds** of at least
  13 digits (what the TOP Python SDK sends, §2.2). Epoch seconds (10 digits) are not a TOP timestamp
  and are refused as malformed (they are the openapi2 endpoint's format, not the gateway's).
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


SIGN_METHODS = ("md5", "hmac", "hmac-sha256")


def qimen_sign(params: Mapping[str, str], secret: str, sign_method: str = "md5", *, include_empty: bool = False) -> str:
    """Upper-case hex Qimen signature; raises ValueError for a sign_method TOP does not know (the
    names are case-sensitive)."""
    data = sign_string(params, include_empty=include_empty).encode("utf-8")
    key = secret.encode("utf-8")
    if sign_method == "md5":
        return hashlib.md5(key + data + key).hexdigest().upper()
    if sign_method == "hmac":
        return hmac.new(key, data, hashlib.md5).hexdigest().upper()
    if sign_method == "hmac-sha256":
        return hmac.new(key, data, hashlib.sha256).hexdigest().upper()
    raise ValueError(f"unsupported sign_method {sign_method!r}")


def verify_signature(params: Mapping[str, str], secret: str) -> bool:
    """True when `sign` matches, computed without empty values or, failing that, with them.

    The request's ``sign_method`` names the algorithm; ValueError when it is missing or unknown."""
    given = params.get("sign", "").upper()
    method = params.get("sign_method", "")
    if method not in SIGN_METHODS:
        raise ValueError(f"unsupported sign_method {method!r}")
    for include_empty in (False, True):
        expected = qimen_sign(params, secret, method, include_empty=include_empty)
        if given and hmac.compare_digest(given, expected):
            return True
    return False


def parse_timestamp(value: str) -> dt.datetime:
    """Gateway `timestamp` as an aware datetime: GMT+8 wall clock, or epoch milliseconds (13+ digits);
    ValueError otherwise (epoch seconds included)."""
    if value.isascii() and value.isdigit():
        if len(value) < 13:
            raise ValueError(f"not epoch milliseconds: {value}")
        return dt.datetime.fromtimestamp(int(value) / 1000, tz=SHANGHAI)
    return parse_datetime(value).replace(tzinfo=SHANGHAI)


# -- request parameters ------------------------------------------------------------------------------
def merge_params(query: str, content_type: str, body: bytes) -> dict[str, str]:
    """URL query merged with the body parameters; the body wins; a JSON body is ignored."""
    params = dict(parse_qsl(query, keep_blank_values=True))
    params.update(_body_params(content_type, body))
    return params


def _body_params(content_type: str, body: bytes) -> dict[str, str]:
    if not body.strip():
        return {}
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind == "multipart/form-data":
        return multipart_params(content_type, body)
    if "json" in kind or body.lstrip()[:1] in (b"{", b"["):
        return {}  # never parameters, whatever it holds
    return form_params(body)


def form_params(body: bytes) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body (UTF-8); repeated keys: the last one wins."""
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


def multipart_params(content_type: str, body: bytes) -> dict[str, str]:
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    params: dict[str, str] = {}
    if not message.is_multipart():
        return params
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name and not part.get_filename():
            payload = part.get_payload(decode=True)
            text = payload if isinstance(payload, bytes) else b""
            params[str(name)] = text.decode(part.get_content_charset() or "utf-8", "replace")
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
