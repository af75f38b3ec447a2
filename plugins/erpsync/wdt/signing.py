"""The WDT request signatures: Qimen/TOP (spec §2.3) and the direct openapi2 one (§3.1).

Qimen md5: ``UPPER(HEX(MD5(secret + k1v1k2v2… + secret)))`` over every parameter except ``sign``, keys in
byte order, raw (not URL-encoded) UTF-8 values. Empty values are left out, as the official Java SDK
does, so a client never signs what it does not send.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping


def qimen_sign(params: Mapping[str, str], secret: str, sign_method: str = "md5") -> str:
    body = "".join(
        f"{key}{value}"
        for key, value in sorted(params.items(), key=lambda kv: kv[0].encode())
        if key != "sign" and value != ""
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


def openapi2_sign(params: Mapping[str, str], appsecret: str) -> str:
    """The direct 企业版 openapi2 signature (spec §3.1), as the official PHP SDK computes it.

    Every parameter but ``sign`` in byte order, each as ``%02d-key:%04d-value`` with lengths in
    characters (``iconv_strlen``, not bytes: they differ for Chinese values), joined by ``;``; then
    ``lower(hex(md5(packed + appsecret)))``. A length wider than its pad is written in full.
    """
    parts = [
        f"{len(key):02d}-{key}:{len(value):04d}-{value}"
        for key, value in sorted(params.items(), key=lambda kv: kv[0].encode())
        if key != "sign"
    ]
    return hashlib.md5((";".join(parts) + appsecret).encode()).hexdigest()
