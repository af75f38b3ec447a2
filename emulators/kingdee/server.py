"""HTTP front of the Kingdee K/3 Cloud WebAPI emulator: routing, auth gate and the services.

Decisions ([INF]/[?] points of the spec):
- Route: ``POST /<any prefix>/<ServiceName>.common.kdsvc``; the prefix is usually ``/k3cloud/`` in any
  case, and the service name and its ``.common.kdsvc`` suffix match case-insensitively (IIS paths
  are case-insensitive). A query string is ignored. ``GET`` on a path that is not a service answers 200
  with a short text (a readiness probe); any other path, method or unknown service answers HTTP 404
  with the text ``Service not found: <name>`` (the SDK raises it as ``RuntimeError``).
- Services: AuthService.ValidateUser / LoginByAppSecret / LoginByAppSecret2 / LoginBySign / Logout,
  AccountService.GetDataCenterList, DynamicFormService.Save / BatchSave / ExecuteBillQuery / BillQuery /
  QueryAsyncResult / View / Submit / Audit / UnAudit / Delete (``operations.py``). Login and
  data-center services need no session; the others (Logout too) go through the auth gate of
  ``auth.py``. Request bodies may be sent with Content-Length or chunked. Injected latency and faults
  (``faults.py``) apply to every call of a known service.
- A body that is not JSON or lacks a required parameter answers HTTP 200 with MsgCode 8 (query
  services: wrapped like their other errors); ``formid`` missing: MsgCode 5 (单据标识为空).
- Bill forms (``forms.py``): SAL_OUTSTOCK, SAL_RETURNSTOCK and STK_InStock, each with Save, BatchSave (and
  BatchSaveQuery), ExecuteBillQuery/BillQuery, View, Submit, Audit, UnAudit and Delete and the same faults.
  Save/BatchSave also on BD_MATERIAL and BD_Customer (``basedata.py``); another known form
  answers MsgCode 4 ``模拟器不支持保存业务对象“X”。``, an unknown one
  ``标识为“X”的业务对象不存在，或者被删除。`` (the operations likewise:
  ``模拟器不支持业务对象“X”的Audit操作。``). Missing or empty Model: MsgCode 8
  ``data数据包中的参数Model的值不能为空。``. BatchSave's Model is an array (spec §3.1): a single object answers
  MsgCode 8 ``BatchSave接口的参数Model必须是JSON数组（每张单据一个数据包），单张单据请用Save。`` [text INF],
  nothing saved; Save's Model is one object, an array answers MsgCode 8
  ``Save接口的参数Model必须是单个单据的JSON对象，多张单据请用BatchSave。``.
- Unknown fields in a Model (``bills``: not in the form's metadata, the tenant's custom fields
  included) fail their bill with ``元数据中标识为X的字段不存在``; such an answer carries MsgCode 9
  (指定字段/值不存在) instead of 11, whatever else failed in the batch.
- Custom fields (``custom_fields``, CLI ``--custom-fields``): the tenant's extension fields, per form,
  ``[FORM:][ENTITY.]KEY`` (``forms.py``; without FORM: SAL_OUTSTOCK); default
  ``F_ora_Text_ysdh,F_ora_Text_ckdh`` (SAL_OUTSTOCK header), the two the user's tenant has
  (include/schemes/sales_outstock.yaml). Save accepts them and queries know them (and index the header
  ones); any other ``F_…`` key is unknown (MsgCode 9), as on a tenant without that extension.
- ``default_return_type`` (CLI ``--default-return-type``): None (default) keeps SAL_RETURNSTOCK's
  FReturnType required; a value (``THLX01_SYS``) is the default of rows that do not send it
  (``returnstock.py``).
- Request size (``max_request_bytes``, CLI ``--max-request-bytes``) [INF, spec §6]: default 4194304 (4 MB,
  ASP.NET's default ``maxRequestLength`` of 4096 KB, which IIS applies to the K3Cloud site unless raised;
  0 = unlimited). A body longer than that (Content-Length, or the sum of the chunks) is read to its end
  and discarded, nothing is done, and the answer is what ASP.NET answers: HTTP 500, text/html, the
  detailed ASP.NET error page of ``System.Web.HttpException: 超过了最大请求长度。`` (English servers:
  "Maximum request length exceeded.") in ``REQUEST_TOO_LARGE_BODY``, and the connection is closed.
  Not 413: neither IIS (its own filter answers 404.13, at 30,000,000 bytes) nor ASP.NET sends 413. The
  SDK raises the page as ``RuntimeError``; the check comes before authentication, like ASP.NET's.
- Concurrency: parsing and reading Models happen outside the store lock; the checks that depend on the
  store (FID, number uniqueness, links, stock) and the write hold it, one Save/BatchSave at a time, and all
  bills of one call are written in one transaction. A number used twice in one batch saves the first bill
  only; an auto-number never takes a number sent by another bill of the same batch.
- Options: IsAutoSubmitAndAudit true saves the bill audited (FDocumentStatus ``C``, FApproveDate set)
  after the stock check of ``inventory.py`` (refused with the negative-stock interaction unless
  ``InterationFlags`` holds ``STK_InvCheckResult``; bills of one batch are checked in Model order, each
  seeing the stock the earlier ones left; receipts are not checked), otherwise created (``A``);
  ValidateFlag/IsVerifyBaseDataField see ``bills.py``; NeedReturnFields (array or comma string;
  ``<entry key>.X`` per row, ``<sub-head key>.X`` nested: ``FEntity.X``/``SubHeadEntity.X``,
  ``FInStockEntry.X``/``FInStockFin.X``) fills NeedReturnData (base data as ``{"FNumber": …}``);
  ValidateRepeatJson true rejects a data packet identical to one received before with MsgCode 11 ``数据包重复提交：相同的JSON数据包已经提交过。``.
  A Model with FID other than 0 updates that bill, NeedUpDateFields (array or comma string) and
  IsDeleteEntry (default true) saying what changes (``updates.py``). SubSystemId, IsEntryBatchFill,
  NumberSearch, IgnoreInterationFlag, IsAutoAdjustField, IsControlPrecision, BatchCount and Creator are
  accepted and have no effect.
- BatchSaveQuery (``beginmethod: BeginQueryImpl``) and QueryAsyncResult: see ``tasks.py``.
- Unexpected server errors answer HTTP 500 with text ``response_error:<type>: <message>``.
"""

from __future__ import annotations

import datetime as _dt
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from emulators.dataset import build_catalog

from . import basedata, operations, updates
from . import envelopes as env
from .auth import (
    ASP_COOKIE,
    FAIL_PASSPORT,
    SESSION_COOKIE,
    Credentials,
    Session,
    SessionStore,
    Verdict,
    check_login,
    login_sign,
    parse_cookies,
    session_ids,
    verify_signature,
)
from .bills import (
    Draft,
    DraftReader,
    SaveOptions,
    duplicate_problem,
    interaction_problem,
    ordered_problems,
)
from .faults import (
    BUSY_BODY,
    CALL_LIMIT,
    IIS_500_BODY,
    MSG_CALL_LIMIT,
    MSG_NETWORK_CONTROL,
    NETWORK_CONTROL,
    RESPONSE_ERROR,
    Draw,
    FaultConfig,
    Faults,
)
from .form import BillForm
from .forms import DEFAULT_CUSTOM, BillForms, CustomFields
from .inventory import NEGATIVE_STOCK, Inventory, allows_negative_stock
from .links import LinkCheck
from .master import MasterData, number_key
from .query import QueryEngine, QueryError
from .schema import Kind
from .store import Store, payload_digest
from .tasks import Tasks
from .wire import BadRequest, data_object, dumps, extract_params, loads, lower_keys, parse_body, to_bool

SUFFIX = ".common.kdsvc"
DEFAULT_MAX_REQUEST_BYTES = 4096 * 1024  # ASP.NET's default maxRequestLength, 4096 KB
# ASP.NET's detailed error page for a body over maxRequestLength (a zh-CN server; HTTP 500).
REQUEST_TOO_LARGE_BODY = (
    "<!DOCTYPE html>\r\n<html>\r\n    <head>\r\n        <title>超过了最大请求长度。</title>\r\n"
    '        <meta name="viewport" content="width=device-width" />\r\n    </head>\r\n'
    '    <body bgcolor="white">\r\n'
    "            <span><H1>“/K3Cloud”应用程序中的服务器错误。<hr width=100% size=1 color=silver></H1>\r\n"
    "            <h2> <i>超过了最大请求长度。</i> </h2></span>\r\n"
    '            <font face="Arial, Helvetica, Geneva, SunSans-Regular, sans-serif ">\r\n'
    "            <b> 说明: </b>执行当前 Web 请求期间，出现未经处理的异常。请检查堆栈跟踪信息，以了解有关该错误以及代码中"
    "导致错误的出处的详细信息。\r\n            <br><br>\r\n"
    "            <b> 异常详细信息: </b>System.Web.HttpException: 超过了最大请求长度。<br><br>\r\n"
    "    </body>\r\n</html>\r\n"
)
_STUB = "Kingdee.BOS.WebApi.ServicesStub."
MSG_NO_FORM_ID = 5
_TEXT = "text/plain; charset=utf-8"


@dataclass
class Reply:
    status: int
    body: str
    content_type: str = "application/json; charset=utf-8"
    cookies: list[str] = field(default_factory=list)
    drop: bool = False  # close the connection without any reply (a lost response)


@dataclass(frozen=True)
class Service:
    name: str
    params: tuple[str, ...]
    handler: Callable[[KingdeeEmulator, dict[str, Any], Call], Any]
    needs_session: bool = True
    query_style: str | None = None  # "rows" | "objects": errors wrapped like the service's rows
    aliases: dict[str, tuple[str, ...]] = field(default_factory=dict)
    saving: bool = False  # Save/BatchSave: per-bill time, lost responses
    writes: bool = False  # subject to network control


@dataclass
class Call:
    """What a service handler may need besides its parameters."""

    session: Session | None
    body: Any
    cookies: list[str] = field(default_factory=list)
    begun: float = 0.0  # time.monotonic() when the latency was over and work began


class KingdeeEmulator:
    """The WebAPI without HTTP: ``handle`` maps one request to one reply (safe to call from many threads)."""

    def __init__(
        self,
        creds: Credentials,
        data_dir: Path,
        seed: int,
        *,
        verify_api_signature: bool = False,
        session_ttl_s: float | None = None,
        faults: FaultConfig | None = None,
        custom_fields: Iterable[str] | str | None = None,
        default_return_type: str | None = None,
    ) -> None:
        self.creds = creds
        self.custom = DEFAULT_CUSTOM if custom_fields is None else CustomFields.parse(custom_fields)
        self.forms = BillForms(default_return_type)
        self.master = MasterData(build_catalog(seed))
        self.store = Store(Path(data_dir), self.master, self.forms.get)
        self.inventory = Inventory(self.master, seed)
        self.inventory.replay(self._with_forms(self.store.bills()))
        self.queries = QueryEngine(self.store, self.master, self.forms, self.custom)
        self.sessions = SessionStore(session_ttl_s)
        self.verify_api_signature = verify_api_signature
        self.faults = Faults(faults or FaultConfig(), seed)
        self.tasks = Tasks()
        self.lock = threading.RLock()  # one writer/reader of the store, inventory and master data at a time

    def close(self) -> None:
        self.store.close()

    def read_bills(self, form_id: str) -> list[dict[str, Any]]:
        """Ground truth: every saved bill of a bill form, shaped like its Model (``Store.read_bills``)."""
        form = self.forms.get(form_id)
        if form is None:
            raise KeyError(f"not a bill form of the emulator: {form_id}")
        with self.lock:
            return self.store.read_bills(form)

    def _with_forms(self, docs: Iterable[dict[str, Any]]) -> Iterable[tuple[BillForm, dict[str, Any]]]:
        for doc in docs:
            form = self.forms.get(doc["form"])
            if form is not None:
                yield form, doc

    # -- entry point ----------------------------------------------------------------------------
    def handle(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> Reply:
        path = urlsplit(raw_path).path
        name = path.rsplit("/", 1)[-1]
        if not name.lower().endswith(SUFFIX):
            if method == "GET":
                return Reply(200, "Kingdee K/3 Cloud WebAPI emulator", "text/plain; charset=utf-8")
            return Reply(404, f"Service not found: {path}", "text/plain; charset=utf-8")
        name = name[: -len(SUFFIX)]
        service = SERVICES.get(name.lower())
        if service is None or method != "POST":
            return Reply(404, f"Service not found: {name}", _TEXT)
        if not self.faults.enter():
            return Reply(503, BUSY_BODY, "text/html; charset=us-ascii")
        try:
            # X-Api-Signature covers the path and query as the client wrote them (before percent-encoding).
            return self._admitted(service, unquote(raw_path), headers, body)
        finally:
            self.faults.leave()

    def _admitted(self, service: Service, path: str, headers: dict[str, str], body: bytes) -> Reply:
        """Faults decided before anything is done, then the call itself."""
        draw = self.faults.draw(saving=service.saving)
        self.faults.wait_latency()
        if self.faults.over_call_limit():
            message = CALL_LIMIT.format(limit=self.faults.config.call_limit_per_minute)
            return Reply(200, dumps(self._wrap(service, env.failure(message, MSG_CALL_LIMIT))))
        if draw.server_error:
            return Reply(500, IIS_500_BODY, "text/html; charset=utf-8")
        if draw.response_error:
            return Reply(200, "response_error:" + RESPONSE_ERROR, _TEXT)
        reply = self._call(service, path, headers, body, draw, time.monotonic())
        if service.saving and draw.lost == "close":
            return Reply(0, "", drop=True)
        if service.saving and draw.lost == "500":
            return Reply(500, IIS_500_BODY, "text/html; charset=utf-8")
        return reply

    def _call(
        self, service: Service, path: str, headers: dict[str, str], body_bytes: bytes, draw: Draw, begun: float
    ) -> Reply:
        call = Call(session=None, body=None, begun=begun)
        if service.needs_session:
            denied = self._authenticate(service, path, headers, call)
            if denied is not None:
                return denied
        try:
            call.body = parse_body(body_bytes)
            params = extract_params(call.body, service.params, service.aliases)
            if service.writes and draw.network_control:
                result = self._network_conflict(call)  # nothing is written
            else:
                result = service.handler(self, params, call)
        except BadRequest as exc:
            result = self._wrap(service, env.failure(str(exc), env.MSG_PARAMETER))
        except QueryError as exc:
            result = self._wrap(service, env.failure(exc.message, exc.msg_code))
        return Reply(200, dumps(result), cookies=call.cookies)

    @staticmethod
    def _wrap(service: Service, envelope: dict[str, Any]) -> Any:
        if service.query_style is None:
            return envelope
        return env.wrap_query_error(envelope, as_objects=service.query_style == "objects")

    def _authenticate(self, service: Service, path: str, headers: dict[str, str], call: Call) -> Reply | None:
        cookies = parse_cookies(headers.get("cookie"))
        call.session = self.sessions.live(session_ids(headers, cookies))
        if call.session is not None:
            return None
        check = verify_signature(headers, self.creds, path=path, verify_api_signature=self.verify_api_signature)
        if check.verdict is Verdict.UNKNOWN_ACCT:
            return Reply(500, FAIL_PASSPORT, _TEXT)
        if check.verdict is Verdict.OK:
            call.session = self.sessions.open(check.username, check.lcid)
            call.cookies = session_cookies(call.session)
            return None
        lost = Reply(200, dumps(self._wrap(service, env.session_lost())))
        if check.verdict is Verdict.REJECTED:
            lost.cookies = [_cookie(SESSION_COOKIE, str(uuid.uuid4()))]  # a useless SID, as observed
        return lost

    # -- session logins -------------------------------------------------------------------------
    def _login(
        self, acct_id: Any, username: Any, lcid: Any, secret_ok: bool, secret_message: str, call: Call
    ) -> dict[str, Any]:
        lcid_value = _lcid(lcid)
        message = check_login(self.creds, str(acct_id or ""), str(username or ""), lcid_value)
        if message is None and not secret_ok:
            message = secret_message
        if message is not None:
            return env.login_failure(message)
        session = self.sessions.open(str(username), lcid_value)
        call.cookies = session_cookies(session)
        return login_success(self.creds, session)

    def validate_user(self, p: dict[str, Any], call: Call) -> Any:
        ok = str(p["password"] or "") == self.creds.password
        return self._login(p["acctID"], p["username"], p["lcid"], ok, "用户名或密码错误！", call)

    def login_by_app_secret(self, p: dict[str, Any], call: Call) -> Any:
        ok = str(p["appId"] or "") == self.creds.app_id and str(p["appSecret"] or "") == self.creds.app_secret
        return self._login(p["acctID"], p["username"], p["lcid"], ok, "应用ID或应用密钥错误！", call)

    def login_by_sign(self, p: dict[str, Any], call: Call) -> Any:
        expected = login_sign(
            self.creds.acct_id, self.creds.username, self.creds.app_id, self.creds.app_secret, str(p["timestamp"] or "")
        )
        ok = str(p["appId"] or "") == self.creds.app_id and str(p["sign"] or "").lower() == expected
        return self._login(p["acctID"], p["username"], p["lcid"], ok, "签名验证失败！", call)

    def logout(self, p: dict[str, Any], call: Call) -> Any:
        session = call.session
        if session is not None:
            self.sessions.close(session)
        return {"LogoutResultType": 1, "Message": None}

    def data_centers(self, p: dict[str, Any], call: Call) -> Any:
        return [
            {
                "Id": self.creds.acct_id,
                "Number": self.creds.acct_id,
                "Name": "金蝶云星空模拟器",
                "DatabaseType": 3,
                "UseLanguages": _LANGUAGES,
            }
        ]

    def _network_conflict(self, call: Call) -> Any:
        result = env.failure(NETWORK_CONTROL, MSG_NETWORK_CONTROL)
        return self.tasks.finished(result) if _async(call) else result  # BatchSaveQuery: done at once

    # -- saving ---------------------------------------------------------------------------------
    def save(self, p: dict[str, Any], call: Call) -> Any:
        return self._with_async(call, lambda begun: self._save(p, begun, single=True))

    def batch_save(self, p: dict[str, Any], call: Call) -> Any:
        return self._with_async(call, lambda begun: self._save(p, begun, single=False))

    def _with_async(self, call: Call, run: Callable[[float], Any]) -> Any:
        if not _async(call):
            return run(call.begun)

        def task() -> Any:
            try:
                return run(time.monotonic())
            except BadRequest as exc:
                return env.failure(str(exc), env.MSG_PARAMETER)

        def bug(exc: BaseException) -> Any:
            return env.failure(f"{type(exc).__name__}: {exc}", env.MSG_EXCEPTION)

        return self.tasks.start(task, bug)

    def query_async_result(self, p: dict[str, Any], call: Call) -> Any:
        info = p["queryInfo"]
        info = loads(info) if isinstance(info, str) and info.strip() else info
        task_id = str(lower_keys(info).get("taskid") or "") if isinstance(info, dict) else ""
        answer = self.tasks.poll(task_id)
        if answer is None:
            raise BadRequest(f"未找到异步任务：{task_id}")
        return answer

    def _save(self, p: dict[str, Any], begun: float, *, single: bool) -> Any:
        form_id = str(p["formid"] or "").strip()
        if not form_id:
            return env.failure("业务对象标识formid不能为空。", MSG_NO_FORM_ID)
        master_form = basedata.saves(form_id)
        bill_form = self.forms.get(form_id)
        if bill_form is None and master_form is None:
            return self._unsupported(form_id, "保存业务对象“{}”。")
        data = data_object(p["data"])
        view = lower_keys(data)
        models = _models(view.get("model"), single=single)
        # The answer may not come before the per-bill time; the work since ``begun`` counts toward it.
        deadline = self.faults.bill_deadline(begun, len(models))
        if bill_form is None:
            assert master_form is not None
            with self.lock:
                result = basedata.save_models(self.store, self.master, master_form, models, _now(), single=single)
        else:
            result = self._save_bills(bill_form, data, view, models, single=single)
        self.faults.wait_until(deadline)
        return result

    def _unsupported(self, form_id: str, what: str) -> dict[str, Any]:
        if self.master.form(form_id) is not None:
            return env.failure("模拟器不支持" + what.format(form_id), env.MSG_EXCEPTION)
        return env.failure(f"标识为“{form_id}”的业务对象不存在，或者被删除。", env.MSG_EXCEPTION)

    def _save_bills(
        self, form: BillForm, data: dict[str, Any], view: dict[str, Any], models: list[Any], *, single: bool
    ) -> Any:
        options = _save_options(view)
        digest = payload_digest(data)
        # Reading the Models only reads master data, which is never changed in place: no lock needed.
        custom = self.custom.of(form.form_id)
        reader = DraftReader(form, self.master, options, custom.head, custom.subhead, custom.entry)
        drafts = [reader.read(model, i) for i, model in enumerate(models)]
        negative_ok = allows_negative_stock(view.get("interationflags"))
        with self.lock:
            now = _now()
            fresh = self.store.remember_payload(digest, now)
            if to_bool(view.get("validaterepeatjson"), False) and not fresh:
                return env.failure("数据包重复提交：相同的JSON数据包已经提交过。", env.MSG_VALIDATION)
            drafts = self._updates(form, reader, drafts, models, options)
            return self._save_drafts(form, drafts, options, negative_ok, now, single=single)

    def _updates(
        self, form: BillForm, reader: DraftReader, drafts: list[Draft], models: list[Any], options: SaveOptions
    ) -> list[Draft]:
        """Models with an FID read again merged onto their stored bill (``updates``); the caller holds the lock."""
        out: list[Draft] = []
        seen: set[int] = set()
        for draft in drafts:
            if draft.fid and draft.fid in seen and not draft.unknown_keys:
                refused = Draft(draft.dindex, fid=draft.fid)
                updates.duplicate_fid(refused)
                draft = refused
            elif draft.fid:
                seen.add(draft.fid)
                draft = updates.prepare(
                    form, reader, self.store, draft, models[draft.dindex], options.need_update_fields
                )
            out.append(draft)
        return out

    def _save_drafts(
        self, form: BillForm, drafts: list[Draft], options: SaveOptions, negative_ok: bool, now: str, *, single: bool
    ) -> Any:
        """Checks that depend on the store, then one write; the caller holds the lock."""
        accepted: list[Draft] = []
        numbers: set[str] = set()
        links = LinkCheck(form, self.store)
        for draft in drafts:
            number = draft.bill_no
            holder = self.store.bill_by_number(form.form_id, number) if number else None
            if number and (
                (holder is not None and holder["head"]["FID"] != draft.fid) or number_key(number) in numbers
            ):
                duplicate_problem(draft)
            usage = links.check(draft) if not draft.unknown_keys else {}
            if not draft.problems and options.auto_audit and not negative_ok and self._short(form, draft):
                interaction_problem(draft, NEGATIVE_STOCK)
            if draft.problems:
                continue
            if draft.bill_no:
                numbers.add(number_key(draft.bill_no))
            links.accept(usage, draft.stored)
            if options.auto_audit:
                self.inventory.audit(form, _entries(draft))  # the next bill of the batch sees what is left
            accepted.append(draft)
        try:
            saving = [(d, _status(d, options)) for d in accepted]
            docs = self.store.save_all(form, saving, now=now) if accepted else []
        except BaseException:
            if options.auto_audit:
                for draft in accepted:
                    self.inventory.unaudit(form, _entries(draft))
            raise
        successes = [
            {"Id": d["head"]["FID"], "Number": d["head"]["FBillNo"], "DIndex": a.dindex}
            for d, a in zip(docs, accepted, strict=True)
        ]
        returned = [need_return_data(form, d, options.need_return_fields) for d in docs]
        code = env.MSG_NO_SUCH_FIELD if any(d.unknown_keys for d in drafts) else None
        return env.save_result(ordered_problems(drafts), successes, returned, single=single, msg_code=code)

    def _short(self, form: BillForm, draft: Draft) -> bool:
        return self.inventory.shortfall(form, _entries(draft))

    # -- other operations -----------------------------------------------------------------------
    def _operate(self, name: str, p: dict[str, Any]) -> Any:
        form_id = str(p["formid"] or "").strip()
        if not form_id:
            return env.failure("业务对象标识formid不能为空。", MSG_NO_FORM_ID)
        form = self.forms.get(form_id)
        if form is None:
            return self._unsupported(form_id, "业务对象“{}”的" + name + "操作。")
        data = data_object(p["data"])
        with self.lock:
            if name == "View":
                return operations.view(form, self.store, self.master, data)
            operation = operations.OPERATIONS[name.lower()]
            return operations.run(operation, form, self.store, self.inventory, data, _now())

    def view(self, p: dict[str, Any], call: Call) -> Any:
        return self._operate("View", p)

    def submit(self, p: dict[str, Any], call: Call) -> Any:
        return self._operate("Submit", p)

    def audit(self, p: dict[str, Any], call: Call) -> Any:
        return self._operate("Audit", p)

    def unaudit(self, p: dict[str, Any], call: Call) -> Any:
        return self._operate("UnAudit", p)

    def delete(self, p: dict[str, Any], call: Call) -> Any:
        return self._operate("Delete", p)

    # -- queries --------------------------------------------------------------------------------
    def execute_bill_query(self, p: dict[str, Any], call: Call) -> Any:
        with self.lock:
            _keys, rows = self.queries.run(data_object(p["data"]))
        return rows

    def bill_query(self, p: dict[str, Any], call: Call) -> Any:
        with self.lock:
            keys, rows = self.queries.run(data_object(p["data"]))
        return [dict(zip(keys, row, strict=True)) for row in rows]


# ------------------------------------------------------------------------------------------ helpers
_LANGUAGES = [{"LocaleId": 2052, "LocaleName": "中文(简体)", "Alias": "CN", "LicenseType": 0}]


def _now() -> str:
    return _dt.datetime.now().replace(microsecond=0).isoformat()


def _lcid(value: Any) -> int:
    try:
        return int(str(value).strip()) if value not in (None, "") else 2052
    except ValueError:
        return -1


def _cookie(name: str, value: str) -> str:
    return f"{name}={value}; path=/; HttpOnly"


def session_cookies(session: Session) -> list[str]:
    return [_cookie(SESSION_COOKIE, session.sid), _cookie(ASP_COOKIE, session.asp_id)]


def login_success(creds: Credentials, session: Session) -> dict[str, Any]:
    """ValidateUser's success JSON (spec §2.4), abridged to the keys clients read."""
    context = {
        "UserLocale": "zh-CN",
        "LogLocale": "zh-CN",
        "DBid": creds.acct_id,
        "DatabaseType": 3,
        "SessionId": session.asp_id,
        "UseLanguages": _LANGUAGES,
        "UserId": 100001,
        "UserName": session.username,
        "CustomName": "金蝶云星空模拟器",
        "DisplayVersion": "emulator",
        "DataCenterName": "金蝶云星空模拟器",
        "UserToken": str(uuid.uuid4()),
        "CurrentOrganizationInfo": {"ID": 1, "AcctOrgType": "1", "Name": "金蝶云星空模拟器", "FunctionIds": []},
        "IsCH_ZH_AutoTrans": False,
        "ClientType": 32,
        "DataCenterNumber": creds.acct_id,
        "ContextResultType": 0,
        "TenantId": "",
        "IsDeployAsPublicCloud": False,
    }
    return {
        "Message": None,
        "MessageCode": "CheckPasswordPolicy",
        "LoginResultType": 1,
        "Context": context,
        "KDSVCSessionId": session.sid,
        "FormId": None,
        "RedirectFormParam": None,
        "FormInputObject": None,
        "ErrorStackTrace": None,
        "Lcid": 0,
        "AccessToken": None,
        "CustomParam": {},
        "KdAccessResult": None,
        "IsSuccessByAPI": True,
    }


def _status(draft: Draft, options: SaveOptions) -> str:
    """A saved bill's FDocumentStatus: audited with IsAutoSubmitAndAudit, else created (an update keeps its own)."""
    if options.auto_audit:
        return "C"
    return str(draft.stored["head"]["FDocumentStatus"]) if draft.stored is not None else "A"


def _async(call: Call) -> bool:
    """Whether the body asks for BatchSaveQuery's task mode."""
    begin = lower_keys(call.body).get("beginmethod") if isinstance(call.body, dict) else None
    return str(begin or "").lower() == "beginqueryimpl"


def _entries(draft: Draft) -> dict[str, Any]:
    """A draft in the shape the inventory reads."""
    return {"entries": draft.entries}


def _models(value: Any, *, single: bool) -> list[Any]:
    if isinstance(value, str) and value.strip():
        try:
            value = loads(value)
        except ValueError as exc:
            raise BadRequest(f"data数据包中的参数Model不是合法的JSON：{exc}") from exc
    if value in (None, "", [], {}):
        raise BadRequest("data数据包中的参数Model的值不能为空。")
    if single and isinstance(value, list):
        raise BadRequest("Save接口的参数Model必须是单个单据的JSON对象，多张单据请用BatchSave。")
    if not single and not isinstance(value, list):
        raise BadRequest("BatchSave接口的参数Model必须是JSON数组（每张单据一个数据包），单张单据请用Save。")
    return value if isinstance(value, list) else [value]


def _save_options(view: dict[str, Any]) -> SaveOptions:
    fields = view.get("needreturnfields") or []
    if isinstance(fields, str):
        fields = [f for f in fields.split(",")]
    return SaveOptions(
        validate=to_bool(view.get("validateflag"), True),
        verify_base_data=to_bool(view.get("isverifybasedatafield"), False),
        auto_audit=to_bool(view.get("isautosubmitandaudit"), False),
        need_return_fields=tuple(str(f).strip() for f in fields if str(f).strip()),
        need_update_fields=_keys(view.get("needupdatefields")),
        delete_entry=to_bool(view.get("isdeleteentry"), True),
    )


def _keys(value: Any) -> tuple[str, ...]:
    """A list of field keys sent as an array or a comma-separated string."""
    items = value.split(",") if isinstance(value, str) else value if isinstance(value, list) else []
    return tuple(str(k).strip() for k in items if isinstance(k, str) and k.strip())


def _returned(spec_kind: Kind | None, value: Any) -> Any:
    if spec_kind is Kind.BASE:
        return {"FNumber": value["Number"]} if value else None
    return value


def need_return_data(form: BillForm, doc: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """The requested fields of one saved bill; ``<entry key>.X`` per row, ``<sub-head key>.X`` nested."""
    out: dict[str, Any] = {}
    for key in keys:
        entity, _, name = key.rpartition(".")
        kind = form.entity_of(entity) if entity else None
        if kind == "entry" or (not entity and name.lower() in form.entry_field_by_key):
            rows = out.setdefault(form.entry_key, [{} for _ in doc["entries"]])
            for row, entry in zip(rows, doc["entries"], strict=True):
                spec = form.entry_field_by_key.get(name.lower())
                if spec is None:
                    row[name] = _extra(entry, name)
                else:
                    row[name] = _returned(spec.kind, entry["fields"].get(spec.key))
            continue
        spec = form.field_by_key.get(name.lower())
        value = _returned(spec.kind, doc["head"].get(spec.key)) if spec else _extra_head(doc, name)
        if kind == "subhead":
            out.setdefault(form.subhead_key, {})[name] = value
        else:
            out[key] = value
    return out


def _extra(entry: dict[str, Any], name: str) -> Any:
    return lower_keys(entry["extra"]).get(name.lower())


def _extra_head(doc: dict[str, Any], name: str) -> Any:
    return lower_keys({**doc["sub_extra"], **doc["extra"]}).get(name.lower())


def _service(method: str, params: tuple[str, ...], **kw: Any) -> Service:
    return Service(method, params, getattr(KingdeeEmulator, _HANDLERS[method]), **kw)


_HANDLERS = {
    "ValidateUser": "validate_user",
    "LoginByAppSecret": "login_by_app_secret",
    "LoginByAppSecret2": "login_by_app_secret",
    "LoginBySign": "login_by_sign",
    "Logout": "logout",
    "GetDataCenterList": "data_centers",
    "Save": "save",
    "BatchSave": "batch_save",
    "ExecuteBillQuery": "execute_bill_query",
    "BillQuery": "bill_query",
    "QueryAsyncResult": "query_async_result",
    "View": "view",
    "Submit": "submit",
    "Audit": "audit",
    "UnAudit": "unaudit",
    "Delete": "delete",
}
_SECRET_ALIASES = {"appSecret": ("appSec", "appsecret")}
_SERVICE_LIST = (
    (
        _STUB + "AuthService.ValidateUser",
        _service("ValidateUser", ("acctID", "username", "password", "lcid"), needs_session=False),
    ),
    (
        _STUB + "AuthService.LoginByAppSecret",
        _service(
            "LoginByAppSecret",
            ("acctID", "username", "appId", "appSecret", "lcid"),
            needs_session=False,
            aliases=_SECRET_ALIASES,
        ),
    ),
    (
        _STUB + "AuthService.LoginByAppSecret2",
        _service(
            "LoginByAppSecret2",
            ("acctID", "username", "appId", "appSecret", "isKickOff", "lcid"),
            needs_session=False,
            aliases=_SECRET_ALIASES,
        ),
    ),
    (
        _STUB + "AuthService.LoginBySign",
        _service("LoginBySign", ("acctID", "username", "appId", "timestamp", "sign", "lcid"), needs_session=False),
    ),
    (_STUB + "AuthService.Logout", _service("Logout", ())),
    (
        "Kingdee.BOS.ServiceFacade.ServicesStub.Account.AccountService.GetDataCenterList",
        _service("GetDataCenterList", (), needs_session=False),
    ),
    (_STUB + "DynamicFormService.Save", _service("Save", ("formid", "data"), saving=True, writes=True)),
    (_STUB + "DynamicFormService.BatchSave", _service("BatchSave", ("formid", "data"), saving=True, writes=True)),
    (_STUB + "DynamicFormService.View", _service("View", ("formid", "data"))),
    *(
        (_STUB + f"DynamicFormService.{op}", _service(op, ("formid", "data"), writes=True))
        for op in ("Submit", "Audit", "UnAudit", "Delete")
    ),
    (_STUB + "DynamicFormService.ExecuteBillQuery", _service("ExecuteBillQuery", ("data",), query_style="rows")),
    (_STUB + "DynamicFormService.BillQuery", _service("BillQuery", ("data",), query_style="objects")),
    (_STUB + "DynamicFormService.QueryAsyncResult", _service("QueryAsyncResult", ("queryInfo",))),
)
SERVICES: dict[str, Service] = {name.lower(): service for name, service in _SERVICE_LIST}


# --------------------------------------------------------------------------------------------- HTTP
class _Handler(BaseHTTPRequestHandler):
    server: KingdeeHTTPServer
    protocol_version = "HTTP/1.1"  # keep-alive, like IIS; every reply carries Content-Length
    # Headers and body go out in two writes: without TCP_NODELAY the body waits for the client's delayed
    # ACK (~40 ms on Linux loopback), a delay no real server adds.
    disable_nagle_algorithm = True

    def do_POST(self) -> None:
        self._serve("POST")

    def do_GET(self) -> None:
        self._serve("GET")

    def _serve(self, method: str) -> None:
        body = self._read_body(self.server.max_request_bytes)
        if body is None:  # ASP.NET's maxRequestLength: refused before anything else
            self._send(Reply(500, REQUEST_TOO_LARGE_BODY, "text/html; charset=utf-8"), close=True)
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            reply = self.server.emulator.handle(method, self.path, headers, body)
        except Exception as exc:  # an emulator bug must show, not hang the client
            traceback.print_exc(file=sys.stderr)
            reply = Reply(500, f"response_error:{type(exc).__name__}: {exc}", _TEXT)
        if reply.drop:  # the connection is closed without a byte of reply
            self.close_connection = True
            return
        self._send(reply)

    def _send(self, reply: Reply, *, close: bool = False) -> None:
        payload = reply.body.encode("utf-8")
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(payload)))
        for cookie in reply.cookies:
            self.send_header("Set-Cookie", cookie)
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(payload)

    def _read_body(self, limit: int) -> bytes | None:
        """The request body; None when it is longer than ``limit`` bytes (0: no limit), read to its end."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks, total = [], 0
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                data = self.rfile.read(size)
                total += len(data)
                if not limit or total <= limit:
                    chunks.append(data)
                self.rfile.readline()  # the CRLF after each chunk
            while self.rfile.readline().strip():  # trailers up to the blank line
                pass
            return None if limit and total > limit else b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        if limit and length > limit:
            while length > 0 and (block := self.rfile.read(min(length, 1 << 16))):
                length -= len(block)  # drained, so the client can read the answer
            return None
        return self.rfile.read(length) if length > 0 else b""

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            sys.stderr.write(f"{self.address_string()} - {format % args}\n")


class KingdeeHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # a burst of parallel clients must reach the handler (and --max-concurrent)

    def __init__(
        self,
        address: tuple[str, int],
        emulator: KingdeeEmulator,
        *,
        verbose: bool = False,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
    ) -> None:
        super().__init__(address, _Handler)
        self.emulator = emulator
        self.verbose = verbose
        self.max_request_bytes = max_request_bytes
        host = address[0] or "127.0.0.1"
        self.url = f"http://{host}:{self.server_address[1]}/k3cloud/"

    def server_close(self) -> None:
        super().server_close()
        self.emulator.close()


def make_server(
    host: str,
    port: int,
    *,
    acct_id: str,
    username: str,
    app_id: str,
    app_secret: str,
    data_dir: str | Path,
    seed: int,
    password: str | None = None,
    verify_api_signature: bool = False,
    session_ttl_s: float | None = None,
    latency_ms: float = 0,
    per_bill_ms: float = 0,
    error_rate: float = 0,
    lost_response_rate: float = 0,
    max_concurrent: int | None = None,
    network_control_rate: float = 0,
    call_limit_per_minute: int | None = None,
    response_error_rate: float = 0,
    custom_fields: Iterable[str] | str | None = None,
    default_return_type: str | None = None,
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
    verbose: bool = False,
) -> KingdeeHTTPServer:
    """A ready server (not yet serving): call ``serve_forever()``, then ``shutdown()``/``server_close()``.

    ``custom_fields``: the tenant's custom fields (None: ``DEFAULT_CUSTOM_FIELDS``; see the module
    docstring); ``default_return_type``: SAL_RETURNSTOCK's FReturnType default (None: required);
    ``max_request_bytes``: the largest request body served (0: no limit)."""
    if max_request_bytes < 0:
        raise ValueError(f"max_request_bytes must be 0 (no limit) or more, not {max_request_bytes}")
    creds = Credentials(acct_id, username, app_id, app_secret, app_secret if password is None else password)
    faults = FaultConfig(
        latency_ms=latency_ms,
        per_bill_ms=per_bill_ms,
        error_rate=error_rate,
        lost_response_rate=lost_response_rate,
        max_concurrent=max_concurrent,
        network_control_rate=network_control_rate,
        call_limit_per_minute=call_limit_per_minute,
        response_error_rate=response_error_rate,
    )
    emulator = KingdeeEmulator(
        creds,
        Path(data_dir),
        seed,
        verify_api_signature=verify_api_signature,
        session_ttl_s=session_ttl_s,
        faults=faults,
        custom_fields=custom_fields,
        default_return_type=default_return_type,
    )
    try:
        return KingdeeHTTPServer((host, port), emulator, verbose=verbose, max_request_bytes=max_request_bytes)
    except BaseException:
        emulator.close()
        raise


__all__ = ["DEFAULT_MAX_REQUEST_BYTES", "KingdeeEmulator", "KingdeeHTTPServer", "Reply", "make_server"]
