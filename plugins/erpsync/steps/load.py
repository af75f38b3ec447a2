"""Load: BatchSave the window's bills in concurrent chunks, each bill exactly once.

Each chunk (at most ``settings.load.chunk_size`` bills, and at most ``settings.load.max_request_bytes``
bytes of BatchSave request; ``concurrency`` chunks in flight) goes through:

1. **Look up** its bill numbers in Kingdee: a bill that exists is ``existing`` and is not sent, so a
   retried task, a cleared run or a backfill over loaded windows adds nothing.
2. **Save** the missing ones in one BatchSave. Saved bills (``SuccessEntitys``, by DIndex) are
   ``created``.
3. **Decide every other bill by looking it up**, never by reading Kingdee's (localised) message: a
   refused bill that exists was saved by someone else (``existing``); one that does not is
   ``rejected`` with Kingdee's fields and messages. Errors without a usable DIndex, or an answer that
   leaves some bills unmentioned (a whole-call failure), cannot be pinned on a bill: those bills are
   sent again one per call, each getting its own verdict.
4. **Unknown outcomes**: after a timeout, a dropped connection, a 5xx, a busy server or MsgCode 13/14
   the save may or may not have happened. The chunk waits (back-off), looks its bills up, counts the
   ones found as ``created`` and sends only the rest, for at most ``settings.load.rounds`` rounds; then
   the task fails and Airflow's retry starts over from step 1. Nothing is ever sent twice blindly.

**Request size.** IIS/ASP.NET refuses a request body over its ``maxRequestLength`` (4 MB unless the
site raises it) with an HTTP 500 page, before Kingdee sees the bills. So the bills are cut into chunks
by count and by the size of the request each chunk makes (the body as JSON with every non-ASCII
character escaped, the SDK's encoding and the larger of the usual ones, so the real body is never
larger), in window order. A bill whose request alone would exceed the limit is never sent: after its
look-up (step 1) it is ``rejected`` with its number and size, so the window ends red like for any
refused bill; a dry run reports it the same way.

A **dry run** (``dry_run=True``) does step 1 and the base-data check and stops there: the report says
which bills Kingdee already has and which would be created (``would_create``), and nothing is sent.

The report ``load_report/`` gets one Parquet part per chunk as it finishes, so an interrupted load
leaves a true record of what reached Kingdee and a long backfill never rewrites what it wrote. A last
part lists the orders held back upstream (``quarantined``, ``unmapped``), so the report has every
order of the window.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Protocol

import pendulum

from erpsync.calls import write_calls
from erpsync.kingdee.client import KingdeeConfigError, KingdeeTransientError
from erpsync.scheme import LoadSettings
from erpsync.staging import RunFiles, append_part, read_json, read_jsonl, read_parquet, read_parts, remove_tree

log = logging.getLogger(__name__)

REPORT_COLUMNS = [
    "bill_no",
    "order_id",
    "order_no",
    "outcome",
    "kingdee_id",
    "kingdee_number",
    "field",
    "message",
    "at",
]
OUTCOMES = ("created", "existing", "rejected", "held", "quarantined", "unmapped", "would_create")
PROBLEMS = ("rejected", "held", "quarantined", "unmapped")  # a valid order that is not in Kingdee


class _Config(Protocol):
    def pause(self, attempt: int) -> float: ...


class KingdeeWriter(Protocol):
    @property
    def config(self) -> _Config: ...

    def find_bills(self, form_id: str, bill_nos: Iterable[str]) -> dict[str, tuple[int, str]]: ...
    def existing_numbers(self, form_id: str, numbers: Iterable[str]) -> set[str]: ...
    def batch_save(self, form_id: str, data: Mapping[str, Any], *, asynchronous: bool = False) -> dict[str, Any]: ...


@dataclass(frozen=True)
class LoadResult:
    bills: int
    created: int
    existing: int
    rejected: int
    held: int  # not sent: a base-data number Kingdee does not have
    quarantined: int  # orders held back upstream, listed in the report too
    unmapped: int
    would_create: int = 0  # a dry run: bills not in Kingdee, not sent


@dataclass(frozen=True)
class Problem:
    """A valid order of the window that did not become a Kingdee bill."""

    order_id: str
    order_no: str
    outcome: str  # rejected | held | quarantined | unmapped
    reason: str


def _row(bill: Mapping[str, Any], outcome: str, **values: Any) -> dict[str, Any]:
    return {
        "bill_no": bill["bill_no"],
        "order_id": bill.get("order_id"),
        "order_no": bill.get("order_no"),
        "outcome": outcome,
        "kingdee_id": values.get("kingdee_id"),
        "kingdee_number": values.get("kingdee_number"),
        "field": values.get("field"),
        "message": values.get("message"),
        "at": pendulum.now("Asia/Shanghai").isoformat(),
    }


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
    return _row(bill, "rejected", field="; ".join(fields) or None, message=messages)


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


class _ChunkLoader:
    """Steps 1-4 of the module docstring for one chunk."""

    def __init__(
        self,
        client: KingdeeWriter,
        form_id: str,
        options: Mapping[str, Any],
        settings: LoadSettings,
        dry_run: bool = False,
    ) -> None:
        self.client = client
        self.form_id = form_id
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
            return rows + [_row(bill, "would_create") for bill in pending]
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
        rows.append(_row(bill, "rejected", message=message))
        return True

    def _settle(
        self, bills: Sequence[Mapping[str, Any]], rows: list[dict[str, Any]], outcome: str
    ) -> list[Mapping[str, Any]]:
        """Look the bills up: record those Kingdee has as ``outcome``; return the ones it does not have."""
        found = self.client.find_bills(self.form_id, [b["bill_no"] for b in bills])
        for bill in bills:
            if bill["bill_no"] in found:
                fid, number = found[bill["bill_no"]]
                rows.append(_row(bill, outcome, kingdee_id=fid, kingdee_number=number))
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
                rows.append(_row(bill, "created", kingdee_id=fid, kingdee_number=number))
            else:
                unsure.append((index, bill))
        if not unsure:
            return []
        found = self.client.find_bills(self.form_id, [b["bill_no"] for _, b in unsure])
        # A bill the answer does not mention means the call failed as a whole; its errors (a whole-call
        # failure carries DIndex 0 too) may then name no bill truly: each bill goes again alone.
        whole_call = len(group) > 1 and any(i not in refused for i, _ in unsure)
        again: list[Mapping[str, Any]] = []
        for index, bill in unsure:
            if bill["bill_no"] in found:  # refused as a duplicate, or saved but not reported
                fid, number = found[bill["bill_no"]]
                rows.append(
                    _row(bill, "existing" if index in refused else "created", kingdee_id=fid, kingdee_number=number)
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
        held.append(_row(bill, "held", field="; ".join(dict.fromkeys(f for f, *_ in missing)), message=message))
    if held:
        log.warning("%d bills held back: they name base data Kingdee does not have", len(held))
    return send, held


def load(client: KingdeeWriter, files: RunFiles, settings: LoadSettings, dry_run: bool = False) -> LoadResult:
    """Load the window's bills (``dry_run``: look up and report only, send nothing)."""
    try:
        return _load(client, files, settings, dry_run)
    finally:  # failed attempts' calls count in the API catalog too
        write_calls(getattr(client, "recorder", None), files, "load")


def _load(client: KingdeeWriter, files: RunFiles, settings: LoadSettings, dry_run: bool) -> LoadResult:
    import pandas as pd

    bills = read_jsonl(files.bills)
    request = read_json(files.request)
    held: list[dict[str, Any]] = []
    if request.get("base_data") and bills:
        bills, held = hold_unknown_base_data(client, bills, request["base_data"])
    loader = _ChunkLoader(client, request["form_id"], request.get("options", {}), settings, dry_run)
    chunks = chunks_of(bills, settings, loader.size)
    remove_tree(files.load_report)  # this attempt's report: created now, or existing
    counts = dict.fromkeys(OUTCOMES, 0)

    def record(index: int, rows: list[dict[str, Any]]) -> None:
        append_part(pd.DataFrame(rows, columns=REPORT_COLUMNS).astype("string"), files.load_report, index)
        for row in rows:
            counts[row["outcome"]] += 1
        if index < len(chunks):
            done = sum(counts[o] for o in ("created", "existing", "rejected", "would_create"))
            log.info(
                "Chunk %d of %d: %d bills; %d of %d bills decided", index + 1, len(chunks), len(rows), done, len(bills)
            )

    failures: list[BaseException] = []
    with ThreadPoolExecutor(max_workers=settings.concurrency, thread_name_prefix="batchsave") as pool:
        futures: dict[Future[list[dict[str, Any]]], int] = {pool.submit(loader, c): i for i, c in enumerate(chunks)}
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
    for index, rows in enumerate((held, _upstream_rows(files)), start=len(chunks)):
        if rows:
            record(index, rows)
    return LoadResult(bills=len(bills) + len(held), **counts)


def read_report(files: RunFiles):  # -> pd.DataFrame
    return read_parts(files.load_report, REPORT_COLUMNS)


def _given(value: Any) -> bool:
    """Whether a report cell holds a value (not None, NaN or pandas' NA, whose truth is ambiguous)."""
    try:
        return value is not None and bool(value == value) and str(value) not in ("", "<NA>")
    except TypeError:  # pd.NA == pd.NA is NA
        return False


def _upstream_rows(files: RunFiles) -> list[dict[str, Any]]:
    """The orders validate quarantined and transform could not map: no bill was built for them."""
    rows: list[dict[str, Any]] = []
    if files.quarantine.exists():
        for order_id, rules in read_parquet(files.quarantine).groupby("order_id", sort=False):
            reasons = "; ".join(
                dict.fromkeys(
                    f"{r.column}={r.value!r} breaks '{r.check}'" + (f" (line {r.line_id})" if _given(r.line_id) else "")
                    for r in rules.itertuples()
                )
            )
            order = {"bill_no": None, "order_id": order_id, "order_no": rules["order_no"].iloc[0]}
            rows.append(_row(order, "quarantined", field="; ".join(dict.fromkeys(rules["column"])), message=reasons))
    if files.unmapped.exists():
        for u in read_parquet(files.unmapped).itertuples():
            order = {"bill_no": None, "order_id": u.order_id, "order_no": u.order_no}
            rows.append(_row(order, "unmapped", field=u.field, message=u.message))
    return rows


def window_problems(files: RunFiles) -> list[Problem]:
    """Every valid order of the window that is not in Kingdee, with the reason, from the load report."""
    report = read_report(files)
    return [
        Problem(
            str(r.order_id),
            str(r.order_no),
            r.outcome,
            f"[{r.field if _given(r.field) else '-'}] {r.message}" if r.outcome == "rejected" else str(r.message),
        )
        for r in report[report["outcome"].isin(PROBLEMS)].itertuples()
    ]


def summary(window: str, result: LoadResult, problems: Sequence[Problem], dry_run: bool = False) -> str:
    """The task-log summary of a window: counts, then every order that did not reach Kingdee and why."""
    done = f"DRY RUN, nothing sent: {result.would_create} would be created" if dry_run else f"{result.created} created"
    lines = [
        f"Window {window}: {result.bills} bills: {done}, {result.existing} already in Kingdee, "
        f"{result.rejected} rejected, {result.held} held back (base data Kingdee lacks); {result.quarantined} orders "
        f"quarantined, {result.unmapped} unmapped."
    ]
    if problems:
        lines.append(f"{len(problems)} orders did not reach Kingdee:")
        lines += [f"  {p.outcome:<11} {p.order_no} (id {p.order_id}): {p.reason}" for p in problems]
    return "\n".join(lines)
