"""The exactly-once save of bills into a Kingdee form: chunked, concurrent BatchSave.

Each chunk (at most ``settings.load.chunk_size`` bills, and at most ``settings.load.max_request_bytes``
bytes of BatchSave request; ``concurrency`` chunks in flight) goes through:

1. **Look up** its bills in Kingdee by the scheme's ``target.bill_key`` (``FBillNo``, or a field such as
   ``F_ora_Text_ckdh`` when Kingdee numbers bills by its coding rule): a bill that exists is
   ``existing`` and is not sent, so a retried task, a cleared run or a backfill over loaded windows
   adds nothing.
2. **Save** the missing ones in one BatchSave. Saved bills (``SuccessEntitys``, by DIndex) are
   ``created``, with the number Kingdee gave them.
3. **Decide every other bill by looking it up**, never by reading Kingdee's (localised) message: a
   refused bill that exists was saved by someone else (``existing``); one that does not is
   ``rejected`` with Kingdee's fields and messages. Errors without a usable DIndex, or an answer that
   leaves some bills unmentioned (a whole-call failure), cannot be pinned on a bill: those bills are
   sent again one per call, each getting its own verdict.
4. **Unknown outcomes**: after a timeout, a dropped connection, a 5xx, a busy server or MsgCode 13/14
   the save may or may not have happened. The chunk waits (back-off), looks its bills up, counts the
   ones found as ``created`` and sends only the rest, for at most ``settings.load.rounds`` rounds; then
   the task fails and Airflow's retry starts over from step 1. Nothing is ever sent twice blindly.

Both look-ups use the same key as the bills were built with (``request.json``'s ``bill_key``, written
by the transform from the scheme): a bill found under another key would be saved again.

**Request size.** IIS/ASP.NET refuses a request body over its ``maxRequestLength`` (4 MB unless the
site raises it) with an HTTP 500 page, before Kingdee sees the bills. So the bills are cut into chunks
by count and by the size of the request each chunk makes (the body as JSON with every non-ASCII
character escaped, the SDK's encoding and the larger of the usual ones, so the real body is never
larger), in window order. A bill whose request alone would exceed the limit is never sent: after its
look-up (step 1) it is ``rejected`` with its number and size; a dry run reports it the same way.

**Base data.** With ``target.check_base_data`` every base-data number the bills name (materials,
customers, stocks…) is looked up first in a few batched queries; a bill naming one Kingdee lacks (or
has disabled) is ``held`` with the field and number, and not sent.

A **dry run** does step 1 and the base-data check and stops there: bills Kingdee does not have are
``would_create``; nothing is sent.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any, Protocol

from erpsync.connectors import BillQuery
from erpsync.kingdee.client import KingdeeConfigError, KingdeeTransientError, sql_quote
from erpsync.outcomes import report_row
from erpsync.scheme import LoadSettings

log = logging.getLogger(__name__)


class _Config(Protocol):
    def pause(self, attempt: int) -> float: ...


class KingdeeWriter(Protocol):
    """The calls of :class:`erpsync.kingdee.client.K3CloudClient` the save makes."""

    @property
    def config(self) -> _Config: ...

    def find_bills(self, form_id: str, key: str, values: Iterable[str]) -> dict[str, tuple[int, str]]: ...
    def query_in(
        self, form_id: str, key: str, values: Iterable[str], field_keys: Sequence[str], also: str = ""
    ) -> list[list[Any]]: ...
    def execute_bill_query(
        self, form_id: str, field_keys: Sequence[str], filter_string: str = "", order_string: str = ""
    ) -> list[list[Any]]: ...
    def existing_numbers(self, form_id: str, numbers: Iterable[str]) -> set[str]: ...
    def batch_save(self, form_id: str, data: Mapping[str, Any], *, asynchronous: bool = False) -> dict[str, Any]: ...


Record = Callable[[int, list[dict[str, Any]]], None]  # (part index, report rows) as each chunk is decided


def _dindex(value: Any, count: int) -> int | None:
    if count == 1 and value in (None, ""):  # a one-bill call: the error can only be about that bill
        return 0
    try:
        index = int(value)
    except (TypeError, ValueError):
        return None
    return index if 0 <= index < count else None


def _outcomes(
    status: Mapping[str, Any], count: int
) -> tuple[dict[int, tuple[int, str]], dict[int, list[tuple[str, str]]], list[str]]:
    """One call's saved (DIndex -> (FID, FBillNo)) and refused (DIndex -> [(field, message)]) bills,
    and the messages that name no bill of the call."""
    saved: dict[int, tuple[int, str]] = {}
    for entity in status.get("SuccessEntitys") or []:
        index = _dindex(entity.get("DIndex"), count)
        if index is not None:
            saved[index] = (int(entity["Id"]), str(entity["Number"]))
    refused: dict[int, list[tuple[str, str]]] = {}
    unattributed: list[str] = []
    for error in status.get("Errors") or []:
        field, message = str(error.get("FieldName") or ""), str(error.get("Message") or "")
        index = _dindex(error.get("DIndex"), count)
        if index is None or (count > 1 and index in saved):
            unattributed.append(message)
        else:
            refused.setdefault(index, []).append((field, message))
    return saved, refused, unattributed


def _values(model: Mapping[str, Any], key: str) -> list[str]:
    """The values a Model sends for field ``key`` (header, sub-head or any entry), numbers unwrapped."""
    return list(dict.fromkeys(str(v) for k, v, _ in _fields(model) if k.lower() == key.lower() and v is not None))


def _rejected(bill: Mapping[str, Any], problems: Sequence[tuple[str, str]]) -> dict[str, Any]:
    fields = list(dict.fromkeys(f for f, _ in problems if f))
    messages = "; ".join(dict.fromkeys(m for _, m in problems if m)) or "Kingdee refused the bill without a message"
    # Kingdee names the field, not the value: say what the bill sent there (the unknown material…)
    sent = [
        f"{f} = {', '.join(repr(v) for v in values)}"
        for f in fields
        if (values := _values(bill["model"], f.split(".")[-1]))
    ]
    if sent:
        messages += f" (the bill sent {'; '.join(sent)})"
    return report_row(bill, "rejected", field="; ".join(fields) or None, message=messages)


def _json_bytes(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=True, default=str))


class RequestSize:
    """Bytes of the BatchSave request body that carries some Models (see "Request size" above)."""

    def __init__(self, form_id: str, options: Mapping[str, Any], asynchronous: bool = False) -> None:
        body: dict[str, Any] = {"formid": form_id, "data": {**options, "Model": []}}
        if asynchronous:
            body.update(beginmethod="BeginQueryImpl", querymethod="QueryAsyncResult")
        self.envelope = _json_bytes(body)

    @staticmethod
    def model(model: Mapping[str, Any]) -> int:
        return _json_bytes(model)

    def request(self, model_sizes: Sequence[int]) -> int:
        """The body with these Models in its array (``", "`` between two of them)."""
        return self.envelope + sum(model_sizes) + 2 * max(0, len(model_sizes) - 1)


def chunks_of(
    bills: Sequence[Mapping[str, Any]], settings: LoadSettings, size: RequestSize
) -> list[list[Mapping[str, Any]]]:
    """The bills cut into BatchSave calls of at most ``chunk_size`` bills and ``max_request_bytes`` bytes,
    in order; a bill too large for any call is a chunk of its own (the loader rejects it)."""
    chunks: list[list[Mapping[str, Any]]] = []
    current: list[Mapping[str, Any]] = []
    sizes: list[int] = []
    for bill in bills:
        own = size.model(bill["model"])
        if size.request([own]) > settings.max_request_bytes:
            chunks.append([bill])
            continue
        if current and (
            len(current) >= settings.chunk_size or size.request([*sizes, own]) > settings.max_request_bytes
        ):
            chunks.append(current)
            current, sizes = [], []
        current.append(bill)
        sizes.append(own)
    if current:
        chunks.append(current)
    return chunks


class ChunkSaver:
    """Steps 1-4 of the module docstring for one chunk of bills."""

    def __init__(
        self,
        client: KingdeeWriter,
        form_id: str,
        bill_key: str,
        options: Mapping[str, Any],
        settings: LoadSettings,
        dry_run: bool = False,
    ) -> None:
        self.client = client
        self.form_id = form_id
        self.bill_key = bill_key
        self.options = options
        self.settings = settings
        self.dry_run = dry_run
        self.size = RequestSize(form_id, options, settings.asynchronous)

    def __call__(self, chunk: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        pending = self._settle(chunk, rows, "existing")
        if len(pending) == 1:  # only a chunk of one may be too large (``chunks_of``)
            pending = [b for b in pending if not self._too_large(b, rows)]
        if self.dry_run:
            return rows + [report_row(bill, "would_create") for bill in pending]
        groups = [pending] if pending else []
        failures = 0
        while groups:
            group = groups.pop(0)
            try:
                status = self.client.batch_save(
                    self.form_id,
                    {**self.options, "Model": [b["model"] for b in group]},
                    asynchronous=self.settings.asynchronous,
                )
            except KingdeeTransientError as exc:
                failures += 1
                if failures >= self.settings.rounds:
                    raise KingdeeTransientError(
                        f"{len(group)} bills ({group[0]['bill_no']}…) still have no known outcome after "
                        f"{failures} rounds; the task's retry will look them up again. Last fault: {exc}"
                    ) from exc
                delay = self.client.config.pause(failures)
                log.warning(
                    "Save of %d bills: %s; looking them up in %.1f s (round %d of %d)",
                    len(group),
                    exc,
                    delay,
                    failures,
                    self.settings.rounds,
                )
                time.sleep(delay)
                missing = self._settle(group, rows, "created")
                if missing:
                    groups.insert(0, missing)
                continue
            groups.extend([b] for b in self._decide(group, status, rows))
        return rows

    def _too_large(self, bill: Mapping[str, Any], rows: list[dict[str, Any]]) -> bool:
        """Record ``bill`` as rejected when its own BatchSave request would exceed the size limit."""
        limit = self.settings.max_request_bytes
        size = self.size.request([self.size.model(bill["model"])])
        if size <= limit:
            return False
        message = (
            f"bill {bill['bill_no']} was not sent: its BatchSave request would be {size:,} bytes, over the "
            f"limit of {limit:,} bytes (settings.load.max_request_bytes; Kingdee's web server refuses larger "
            f"requests)"
        )
        log.warning("%s", message)
        rows.append(report_row(bill, "rejected", message=message))
        return True

    def _settle(
        self, bills: Sequence[Mapping[str, Any]], rows: list[dict[str, Any]], outcome: str
    ) -> list[Mapping[str, Any]]:
        """Look the bills up: record those Kingdee has as ``outcome``; return the ones it does not have."""
        found = self.client.find_bills(self.form_id, self.bill_key, [b["bill_no"] for b in bills])
        for bill in bills:
            if bill["bill_no"] in found:
                fid, number = found[bill["bill_no"]]
                rows.append(report_row(bill, outcome, kingdee_id=fid, kingdee_number=number))
        return [b for b in bills if b["bill_no"] not in found]

    def _decide(
        self, group: Sequence[Mapping[str, Any]], status: Mapping[str, Any], rows: list[dict[str, Any]]
    ) -> list[Mapping[str, Any]]:
        """Record each bill of one answered call; return those to send again alone."""
        saved, refused, unattributed = _outcomes(status, len(group))
        unsure: list[tuple[int, Mapping[str, Any]]] = []
        for index, bill in enumerate(group):
            if index in saved:
                fid, number = saved[index]
                rows.append(report_row(bill, "created", kingdee_id=fid, kingdee_number=number))
            else:
                unsure.append((index, bill))
        if not unsure:
            return []
        found = self.client.find_bills(self.form_id, self.bill_key, [b["bill_no"] for _, b in unsure])
        # A bill the answer does not mention means the call failed as a whole; its errors (a whole-call
        # failure carries DIndex 0 too) may then name no bill truly: each bill goes again alone.
        whole_call = len(group) > 1 and any(i not in refused for i, _ in unsure)
        again: list[Mapping[str, Any]] = []
        for index, bill in unsure:
            if bill["bill_no"] in found:  # refused as a duplicate, or saved but not reported
                fid, number = found[bill["bill_no"]]
                rows.append(
                    report_row(
                        bill, "existing" if index in refused else "created", kingdee_id=fid, kingdee_number=number
                    )
                )
            elif index in refused and not whole_call:
                rows.append(_rejected(bill, refused[index]))
            elif len(group) == 1:
                problems = [("", m) for m in unattributed] or [
                    ("", "Kingdee reported no outcome for this bill and does not have it")
                ]
                rows.append(_rejected(bill, problems))
            else:
                again.append(bill)
        if again:
            log.info(
                "%d bills got no verdict of their own (%s); sending them one per call",
                len(again),
                "; ".join(unattributed)[:300] or "no message",
            )
        return again


def _fields(model: Mapping[str, Any], where: str = "") -> Iterator[tuple[str, Any, str]]:
    """(field, value sent, where) of every field of a Model, sub-head and entries included; a base-data
    reference ``{"FNumber": …}`` gives its number."""
    for key, value in model.items():
        if isinstance(value, Mapping):
            number = next((v for k, v in value.items() if k.lower() == "fnumber"), _ENTITY)
            if number is _ENTITY:
                yield from _fields(value, key)
            else:
                yield key, number, where
        elif isinstance(value, list):
            for row, item in enumerate(value, start=1):
                if isinstance(item, Mapping):
                    yield from _fields(item, f"{key} row {row}")
        else:
            yield key, value, where


_ENTITY = object()  # a nested object without a number: an entity, not a reference


def _references(model: Mapping[str, Any], fields: Mapping[str, tuple[str, str]]) -> Iterator[tuple[str, str, str, str]]:
    """(field, form, number, where) of every base-data number a Model names, for the fields in ``fields``."""
    for key, number, where in _fields(model):
        known = fields.get(key.lower())
        if known and number not in (None, ""):
            yield known[0], known[1], str(number), where


def _unknown(number: str, known: set[str] | None) -> bool:
    """Whether Kingdee lacks ``number``; ``None``: the form could not be asked, Kingdee checks on save."""
    return known is not None and number not in known


def hold_unknown_base_data(
    client: KingdeeWriter, bills: Sequence[dict[str, Any]], forms: Mapping[str, str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Look the base-data numbers of all bills up in a few batched queries; return the bills to send
    and the report rows of those held back because Kingdee does not have a number they name."""
    fields = {key.lower(): (key, form) for key, form in forms.items()}
    refs = {bill["bill_no"]: list(_references(bill["model"], fields)) for bill in bills}
    wanted: dict[str, set[str]] = {}
    for field_refs in refs.values():
        for _field, form, number, _where in field_refs:
            wanted.setdefault(form, set()).add(number)
    known: dict[str, set[str] | None] = {}
    for form, numbers in wanted.items():
        try:
            known[form] = client.existing_numbers(form, numbers)
        except KingdeeConfigError as exc:  # this tenant cannot be asked: Kingdee checks on save
            log.warning("Cannot check %s numbers before posting (%s); Kingdee will check them on save", form, exc)
            known[form] = None
    send: list[dict[str, Any]] = []
    held: list[dict[str, Any]] = []
    for bill in bills:
        missing = [(f, form, n, w) for f, form, n, w in refs[bill["bill_no"]] if _unknown(n, known[form])]
        if not missing:
            send.append(bill)
            continue
        message = "; ".join(
            dict.fromkeys(f"{form} has no number {n!r} ({f}{', ' + w if w else ''})" for f, form, n, w in missing)
        )
        held.append(report_row(bill, "held", field="; ".join(dict.fromkeys(f for f, *_ in missing)), message=message))
    if held:
        log.warning("%d bills held back: they name base data Kingdee does not have", len(held))
    return send, held


def _member(field: str, value: str) -> str:
    """A filter: ``field``, a list of values joined with ',', holds ``value``."""
    v = value.replace("'", "''").replace("[", "[[]").replace("%", "[%]").replace("_", "[_]")
    exact = sql_quote(value)
    return f"({field} = {exact} OR {field} like '{v},%' OR {field} like '%,{v}' OR {field} like '%,{v},%')"


def hold_missing_requirements(
    client: KingdeeWriter, bills: Sequence[dict[str, Any]], requirements: Sequence[Mapping[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Look up the bills of other forms these bills require (``target.requires``: a return's original
    sale); return the bills to send and the report rows of those held because one is not in Kingdee
    yet. A held bill is saved by a later run of its window, once the other bill is there."""
    present: list[set[str]] = []
    for index, req in enumerate(requirements):
        wanted = sorted({str(b["requires"][index]) for b in bills if b.get("requires") and b["requires"][index]})
        # an exact match first (one indexed `in` query per batch): most lists hold one value
        found = {str(v) for (v,) in client.query_in(req["form"], req["field"], wanted, [req["field"]])}
        if req.get("list"):
            rest = [v for v in wanted if v not in found]
            for i in range(0, len(rest), 20):
                batch = rest[i : i + 20]
                rows = client.execute_bill_query(
                    req["form"], [req["field"]], " OR ".join(_member(req["field"], v) for v in batch)
                )
                listed = {part.strip() for (text,) in rows for part in str(text or "").split(",")}
                found |= listed & set(batch)
        present.append(found)
    send: list[dict[str, Any]] = []
    held: list[dict[str, Any]] = []
    for bill in bills:
        values = bill.get("requires") or []
        missing = [
            (req, values[i]) for i, req in enumerate(requirements) if values[i] and str(values[i]) not in present[i]
        ]
        if not missing:
            send.append(bill)
            continue
        message = "; ".join(
            f"{req.get('label') or req['form']} not in Kingdee yet: {req['form']} has no bill with {req['field']} "
            f"= {value!r}; the bill is saved by a later run of this window once it is there"
            for req, value in missing
        )
        held.append(report_row(bill, "held", field="; ".join(r["field"] for r, _ in missing), message=message))
    if held:
        log.warning("%d bills held back: a bill they require is not in Kingdee yet", len(held))
    return send, held


class KingdeeTarget:
    """The target connector's writer: saves bills into one Kingdee connection, each exactly once."""

    def __init__(self, client: KingdeeWriter) -> None:
        self.client = client

    @property
    def recorder(self) -> Any:
        return getattr(self.client, "recorder", None)

    def read_bills(self, query: BillQuery) -> list[dict[str, Any]]:
        """The bills a reconciliation compares (:mod:`erpsync.kingdee.bills`)."""
        from erpsync.kingdee.bills import read_bills

        return read_bills(self.client, query)

    def save(
        self,
        bills: Sequence[dict[str, Any]],
        request: Mapping[str, Any],
        settings: LoadSettings,
        record: Record,
        dry_run: bool = False,
    ) -> int:
        """Save ``bills`` (bills.jsonl records) as ``request`` (request.json: form, bill key, options,
        base-data forms, required bills) says, exactly once; ``record`` gets each chunk's report rows as
        it is decided (part ``0..n-1``, then one part of the held bills). Returns the parts recorded."""
        client = self.client
        held: list[dict[str, Any]] = []
        if request.get("requires") and bills:
            bills, held = hold_missing_requirements(client, bills, request["requires"])
        if request.get("base_data") and bills:
            bills, held_for_base_data = hold_unknown_base_data(client, bills, request["base_data"])
            held += held_for_base_data
        saver = ChunkSaver(
            client,
            request["form_id"],
            request.get("bill_key") or "FBillNo",
            request.get("options", {}),
            settings,
            dry_run,
        )
        chunks = chunks_of(bills, settings, saver.size)
        failures: list[BaseException] = []
        with ThreadPoolExecutor(max_workers=settings.concurrency, thread_name_prefix="batchsave") as pool:
            futures: dict[Future[list[dict[str, Any]]], int] = {pool.submit(saver, c): i for i, c in enumerate(chunks)}
            remaining = set(futures)
            while remaining:
                done, remaining = wait(remaining, return_when=FIRST_COMPLETED)
                for future in sorted(done, key=futures.__getitem__):
                    if future.cancelled():
                        continue
                    if future.exception() is None:
                        record(futures[future], future.result())
                        continue
                    error = future.exception()
                    assert error is not None
                    failures.append(error)
                    if isinstance(error, KingdeeConfigError):  # every other chunk would fail alike
                        for other in remaining:
                            other.cancel()
        if failures:
            raise failures[0]
        if held:
            record(len(chunks), held)
        return len(chunks) + (1 if held else 0)
