"""Authentication: SDK 8.x signature headers, session logins and sessions (spec §2, §8.2).

Decisions ([INF]/[?] points of the spec):
- A request with a live session id (header ``kdservice-sessionid``, or cookie ``kdservice-sessionid`` or
  ``ASP.NET_SessionId``) is served without looking at any credential, as observed on a real server.
- Otherwise ``X-Kd-Appkey``/``X-Kd-Appdata``/``X-Kd-Signature`` are verified: AppData must decode to
  ``acct,user,lcid,org`` (the user may contain commas); an acct other than the configured one (or
  AppData that cannot be read) answers HTTP 500 with the text ``Fail to verify thirty passport``;
  a wrong AppId, user (compared case-insensitively, as SQL Server does), LCID (not 2052/1033/3076) or
  signature answers HTTP 200 with the MsgCode 1 envelope. OrgNum is signed but not checked. No
  timestamp window and no replay protection (none observed on-prem).
- ``X-Api-Signature`` (the gateway signature over path, nonce and timestamp, keyed with the secret
  decoded from the AppId) is checked only when the server runs with ``verify_api_signature``.
- Every successful credential check opens a new session and sets the cookies ``kdservice-sessionid``
  (a GUID, = ``KDSVCSessionId``) and ``ASP.NET_SessionId`` (24 lowercase letters/digits), ``path=/``,
  ``HttpOnly``, no ``expires`` (so the SDK's comma split of Set-Cookie stays clean). A failed signature
  check still sets a fresh, useless ``kdservice-sessionid`` cookie, like the real server.
- Sessions live in memory and do not expire by default (a real server kept them ≥ 90 min). With the
  server's ``session_ttl_s`` S a session ends S seconds after it was opened, however busy it is. An
  expired SID counts as no SID: a request with signature headers has them checked and gets a new session
  (and cookies), as spec §2.5 observed; a request carrying only the expired SID (session-login clients)
  gets the §4.4 MsgCode 1 envelope ``会话信息已丢失，请重新登录``.
- ValidateUser checks the password (``--password``, default the AppSecret); LoginByAppSecret checks
  AppId and AppSecret (named keys ``appSecret``/``appSec``/``appsecret``); LoginBySign checks
  ``sha256(sorted([acctID, username, appId, appSecret, str(timestamp)]) joined)`` in lowercase hex
  (any case accepted), without a timestamp window. Failures answer the doc's failure template with
  ``LoginResultType`` 0 and ``Message`` ``数据中心不存在：<acct>`` (unknown acct), ``用户名或密码错误！``
  (user/password), ``应用ID或应用密钥错误！`` (AppId/AppSecret), ``签名验证失败！`` (LoginBySign) or
  ``不支持的语言：<lcid>``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import string
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from urllib.parse import quote

FAIL_PASSPORT = "Fail to verify thirty passport"
SUPPORTED_LCIDS = (2052, 1033, 3076)
SESSION_COOKIE = "kdservice-sessionid"
ASP_COOKIE = "ASP.NET_SessionId"
_XOR_SEED = "0054s397p6234378o09pn7q3r5qropr7"  # the SDK's AppSecret-decode seed, ROT13-encoded


@dataclass(frozen=True)
class Credentials:
    acct_id: str
    username: str
    app_id: str
    app_secret: str
    password: str


# ---------------------------------------------------------------------------------- SDK algorithms
def hmac_sha256_b64hex(content: str, key: str) -> str:
    """base64 of the lowercase hex HMAC-SHA256 (SDK ``hmac_util.HmacSHA256``)."""
    digest = hmac.new(key.encode("utf-8"), content.encode("utf-8"), hashlib.sha256).hexdigest()
    return base64.b64encode(digest.encode("ascii")).decode("ascii")


def app_data(acct_id: str, username: str, lcid: int | str = 2052, org_num: int | str = 0) -> str:
    return f"{acct_id},{username},{lcid},{org_num}"


def app_data_header(acct_id: str, username: str, lcid: int | str = 2052, org_num: int | str = 0) -> str:
    return base64.b64encode(app_data(acct_id, username, lcid, org_num).encode("utf-8")).decode("ascii")


def kd_signature(app_id: str, data: str, app_secret: str) -> str:
    """``X-Kd-Signature`` over AppId + the decoded AppData."""
    return hmac_sha256_b64hex(app_id + data, app_secret)


def _rot13(text: str) -> str:
    return text.translate(
        str.maketrans(
            string.ascii_lowercase + string.ascii_uppercase,
            string.ascii_lowercase[13:]
            + string.ascii_lowercase[:13]
            + string.ascii_uppercase[13:]
            + string.ascii_uppercase[:13],
        )
    )


def decode_app_secret(suffix: str) -> str:
    """The gateway secret hidden in the AppId's 32-char part (SDK ``DecodeAppSecret``); '' if invalid."""
    if len(suffix) != 32:
        return ""
    try:
        raw = base64.b64decode(suffix, validate=True)
    except (binascii.Error, ValueError):
        return ""
    key = _rot13(_XOR_SEED).encode("ascii")
    return base64.b64encode(bytes(b ^ key[i] for i, b in enumerate(raw))).decode("ascii")


def api_signature(path: str, timestamp: str, nonce: str, app_id: str) -> str:
    """``X-Api-Signature`` as SDK 8.2.0 computes it from the request path and query."""
    parts = app_id.split("_")
    client_sec = decode_app_secret(parts[1]) if len(parts) == 2 else ""
    path_url = quote(path, encoding="utf-8").replace("/", "%2F")
    content = f"POST\n{path_url}\n\nx-api-nonce:{nonce}\nx-api-timestamp:{timestamp}\n"
    return hmac_sha256_b64hex(content, client_sec)


def login_sign(acct_id: str, username: str, app_id: str, app_secret: str, timestamp: str) -> str:
    """LoginBySign's sign: SHA-256 hex of the five strings sorted ordinally and joined."""
    joined = "".join(sorted([acct_id, username, app_id, app_secret, timestamp]))
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()


# ------------------------------------------------------------------------------------------ sessions
@dataclass
class Session:
    sid: str
    asp_id: str
    username: str
    lcid: int
    opened: float = field(default_factory=time.monotonic)


class SessionStore:
    def __init__(self, ttl_seconds: float | None = None) -> None:
        self._by_id: dict[str, Session] = {}
        self._lock = threading.Lock()
        self.ttl_seconds = ttl_seconds

    def open(self, username: str, lcid: int) -> Session:
        session = Session(str(uuid.uuid4()), new_asp_id(), username, lcid)
        with self._lock:
            self._by_id[session.sid] = session
            self._by_id[session.asp_id] = session
        return session

    def live(self, ids: list[str]) -> Session | None:
        now = time.monotonic()
        with self._lock:
            for sid in ids:
                session = self._by_id.get(sid)
                if session is None:
                    continue
                if self.ttl_seconds is not None and now - session.opened >= self.ttl_seconds:
                    self._by_id.pop(session.sid, None)
                    self._by_id.pop(session.asp_id, None)
                    continue
                return session
        return None

    def close(self, session: Session) -> None:
        with self._lock:
            self._by_id.pop(session.sid, None)
            self._by_id.pop(session.asp_id, None)


def new_asp_id() -> str:
    alphabet = string.ascii_lowercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(24))


def parse_cookies(header: str | None) -> dict[str, str]:
    """Cookie header as sent by browsers and by the SDK (``Theme=standard;a=b; c=d``)."""
    cookies: dict[str, str] = {}
    for part in (header or "").split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name:
            cookies.setdefault(name.strip(), value.strip())
    return cookies


def session_ids(headers: Mapping[str, str], cookies: Mapping[str, str]) -> list[str]:
    """Session ids a request carries (header names lower-case), header first."""
    ids = [headers.get(SESSION_COOKIE) or "", cookies.get(SESSION_COOKIE, ""), cookies.get(ASP_COOKIE, "")]
    return [i.strip() for i in ids if i and i.strip()]


# ---------------------------------------------------------------------------------- verification
class Verdict(Enum):
    OK = "ok"
    NO_CREDENTIALS = "none"
    UNKNOWN_ACCT = "acct"  # non-200 "Fail to verify thirty passport"
    REJECTED = "rejected"  # 200 + MsgCode 1


@dataclass(frozen=True)
class SignatureCheck:
    verdict: Verdict
    username: str = ""
    lcid: int = 2052


def verify_signature(
    headers: Mapping[str, str], creds: Credentials, *, path: str, verify_api_signature: bool = False
) -> SignatureCheck:
    """Check the SDK 8.x ``X-Kd-*`` headers (and optionally ``X-Api-Signature``); header names lower-case."""
    app_key = headers.get("x-kd-appkey")
    if not app_key:
        return SignatureCheck(Verdict.NO_CREDENTIALS)
    parsed = _parse_app_data(headers.get("x-kd-appdata") or "")
    if parsed is None or parsed[0] != creds.acct_id:
        return SignatureCheck(Verdict.UNKNOWN_ACCT)
    acct, user, lcid_text, _org, data = parsed
    expected = kd_signature(app_key, data, creds.app_secret)
    ok = (
        app_key == creds.app_id
        and hmac.compare_digest(expected, headers.get("x-kd-signature") or "")
        and user.casefold() == creds.username.casefold()
        and lcid_text.strip().isdigit()
        and int(lcid_text) in SUPPORTED_LCIDS
    )
    if ok and verify_api_signature:
        ok = _api_signature_ok(headers, path, creds.app_id)
    if not ok:
        return SignatureCheck(Verdict.REJECTED)
    return SignatureCheck(Verdict.OK, user, int(lcid_text))


def _parse_app_data(header: str) -> tuple[str, str, str, str, str] | None:
    try:
        data = base64.b64decode(header, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    parts = data.split(",")
    if len(parts) < 4:
        return None
    return parts[0], ",".join(parts[1:-2]), parts[-2], parts[-1], data


def _api_signature_ok(headers: Mapping[str, str], path: str, app_id: str) -> bool:
    timestamp = headers.get("x-api-timestamp") or ""
    nonce = headers.get("x-api-nonce") or ""
    sent = headers.get("x-api-signature") or ""
    return hmac.compare_digest(api_signature(path, timestamp, nonce, app_id), sent)


def check_login(creds: Credentials, acct_id: str, username: str, lcid: int) -> str | None:
    """The failure message shared by all session logins, or None when acct/user/lcid are fine."""
    if acct_id != creds.acct_id:
        return f"数据中心不存在：{acct_id}"
    if username.casefold() != creds.username.casefold():
        return "用户名或密码错误！"
    if lcid not in SUPPORTED_LCIDS:
        return f"不支持的语言：{lcid}"
    return None
