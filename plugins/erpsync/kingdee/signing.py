"""The WebAPI SDK 8.x request signature headers ("第三方系统登录授权", spec §2.1).

Each request carries ``X-Kd-*`` headers signed with the app secret, and ``X-Api-*`` headers signed
with the client secret decoded from the app id; the server opens a session from them, so no login
call is needed.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import hashlib
import hmac
import re
import time
from urllib.parse import quote, urlsplit

# The SDK's obfuscation key for the client secret inside an app id, ROT13-encoded as it ships.
_CLIENT_SECRET_KEY = codecs.decode("0054s397p6234378o09pn7q3r5qropr7", "rot13").encode()
# <clientId>_<32 characters of standard base64>: 24 bytes, so no padding; '+' and '/' are allowed.
_APP_ID = re.compile(r"(?P<client>[^_]+)_(?P<secret>[A-Za-z0-9+/]{32})")
APP_ID_SHAPE = "<clientId>_<32 characters of standard base64 (A-Z a-z 0-9 + /)>"


def hmac_sha256_b64hex(content: str, key: str) -> str:
    """base64 of the lowercase hex HMAC-SHA256, as the SDK computes it (88 characters)."""
    digest = hmac.new(key.encode("utf-8"), content.encode("utf-8"), hashlib.sha256).hexdigest()
    return base64.b64encode(digest.encode("ascii")).decode("ascii")


def client_secret(app_id: str) -> tuple[str, str]:
    """(client id, client secret) hidden in an app id ``<clientId>_<32 chars>``.

    Raises ``ValueError`` for any other shape: the SDK would silently sign with an empty key, and the
    server would answer with a "session lost" that hides the real cause.
    """
    match = _APP_ID.fullmatch(app_id)
    if match is None:
        raise ValueError(f"the app id must look like {APP_ID_SHAPE}")
    try:
        raw = base64.b64decode(match["secret"], validate=True)
    except binascii.Error as exc:  # unreachable for 32 base64 characters; kept so no decode error escapes
        raise ValueError(f"the app id must look like {APP_ID_SHAPE}") from exc
    mixed = bytes(b ^ _CLIENT_SECRET_KEY[i] for i, b in enumerate(raw))
    return match["client"], base64.b64encode(mixed).decode("ascii")


def signature_headers(
    url: str,
    *,
    acct_id: str,
    username: str,
    app_id: str,
    app_secret: str,
    lcid: int = 2052,
    org_num: int = 0,
    now: float | None = None,
) -> dict[str, str]:
    path = urlsplit(url).path
    path_url = quote(path, encoding="utf-8").replace("/", "%2F")
    timestamp = str(int(time.time() if now is None else now))
    client_id, client_sec = client_secret(app_id)
    api_sign = f"POST\n{path_url}\n\nx-api-nonce:{timestamp}\nx-api-timestamp:{timestamp}\n"
    app_data = f"{acct_id},{username},{lcid},{org_num}"
    return {
        "X-Api-ClientID": client_id,
        "X-Api-Auth-Version": "2.0",
        "x-api-timestamp": timestamp,
        "x-api-nonce": timestamp,
        "x-api-signheaders": "x-api-timestamp,x-api-nonce",
        "X-Api-Signature": hmac_sha256_b64hex(api_sign, client_sec),
        "X-Kd-Appkey": app_id,
        "X-Kd-Appdata": base64.b64encode(app_data.encode("utf-8")).decode("ascii"),
        "X-Kd-Signature": hmac_sha256_b64hex(app_id + app_data, app_secret),
    }
