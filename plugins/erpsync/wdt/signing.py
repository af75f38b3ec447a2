"""The Qimen/TOP request signature (spec §2.3).

md5: ``UPPER(HEX(MD5(secret + k1v1k2v2… + secret)))`` over every parameter except ``sign``, keys in
byte order, raw (not URL-encoded) UTF-8 values. Empty values are left out, as the official Java SDK
does, so a client never signs what it does not send.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping


def qimen_sign(params: Mapping[str, str], secret: str, sign_method: str = "md5") -> str:
    body = "".join(
        f"{key}{value}" for key, value in sorted(params.items(), key=lambda kv: kv[0].encode()) if key != "sign" and value != ""
    )
    if sign_method == "md5":
        digest = hashlib.md5(f"{secret}{body}{secret}".encode()).hexdigest()
    elif sign_method == "hmac":
        digest = hmac.new(secret.encode(), body.encode(), hashlib.md5).hexdigest()
    elif sign_method == "hmac-sha256":
        digest = hmac.new(secret.encode(), body.encode(), hashlib.sha256).hexdigest()
    else:
        raise ValueError(f"unsupported Qimen sign_method {sign_method!r}")
    return digest.upper()
