"""The load step against a Kingdee that is as strict as a real one: a request-size limit (IIS/ASP.NET's
maxRequestLength) and disabled base data."""

from __future__ import annotations

import copy
from typing import Any

from erpsync.kingdee.client import K3CloudClient, K3CloudConfig
from erpsync.kingdee.save import RequestSize, chunks_of
from erpsync.scheme import LoadSettings
from erpsync.staging import write_json
from erpsync.steps.load import read_report, window_problems
from tests.conftest import KINGDEE, SEED, load_bills, serving
from tests.erpsync.test_kingdee_client import FORM, OPTIONS, _files, _model

SKUS = ["GT1001-01", "HW3001-01", "CP2001-01", "AP4001-01", "EL5001-01"]


def _bill(number: str, lines: int) -> dict[str, Any]:
    model = _model(number)
    template = model["FEntity"][0]
    model["FEntity"] = [
        dict(copy.deepcopy(template), FMaterialID={"FNumber": SKUS[i % len(SKUS)]}) for i in range(lines)
    ]
    return model


def _client(server: Any) -> K3CloudClient:
    return K3CloudClient(
        K3CloudConfig(server_url=server.url, **KINGDEE, backoff_seconds=0.01, max_backoff_seconds=0.05)
    )


def _entries(models: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"bill_no": m["FBillNo"], "model": m} for m in models]


def test_chunks_are_cut_by_count_and_by_request_size() -> None:
    size = RequestSize(FORM, OPTIONS)
    bills = _entries([_bill(f"CK-C-{i}", 10) for i in range(9)])
    one = size.request([size.model(bills[0]["model"])])
    three = size.request([size.model(b["model"]) for b in bills[:3]])
    by_size = chunks_of(bills, LoadSettings(chunk_size=100, max_request_bytes=three), size)
    assert [len(c) for c in by_size] == [3, 3, 3]
    assert [len(c) for c in chunks_of(bills, LoadSettings(chunk_size=2, max_request_bytes=three), size)] == [
        2,
        2,
        2,
        2,
        1,
    ]
    big = _entries([_bill("CK-C-BIG", 40)])
    mixed = chunks_of([*bills[:2], *big, *bills[2:4]], LoadSettings(chunk_size=100, max_request_bytes=three), size)
    assert [[b["bill_no"] for b in c] for c in mixed] == [["CK-C-BIG"], ["CK-C-0", "CK-C-1", "CK-C-2"], ["CK-C-3"]]
    assert one < three
    # the estimate is the body with every non-ASCII character escaped: never smaller than what is sent
    assert RequestSize(FORM, {"Note": "中文"}).envelope > RequestSize(FORM, {"Note": "ab"}).envelope


def test_a_kingdee_with_a_64_kb_request_limit_gets_every_bill_once_and_no_request_over_it(tmp_path) -> None:
    from emulators.kingdee import make_server

    limit = 64 * 1024
    models = [_bill(f"CK-SZ-{i:03d}", 20 + (i * 7) % 41) for i in range(40)]
    models.insert(17, _bill("CK-SZ-HUGE", 400))
    files = _files(tmp_path, models)
    settings = LoadSettings(chunk_size=100, concurrency=3, max_request_bytes=limit)
    size = RequestSize(FORM, OPTIONS)
    huge = size.request([size.model(models[17])])
    assert huge > limit > size.request([size.model(m) for m in models[:3]])  # several bills fit in one call

    with serving(
        make_server("127.0.0.1", 0, **KINGDEE, data_dir=tmp_path / "kd", seed=SEED, max_request_bytes=limit)
    ) as server:
        bodies: list[int] = []
        handle = server.emulator.handle

        def spy(method: str, path: str, headers: dict[str, str], body: bytes) -> Any:
            if path.lower().endswith("batchsave.common.kdsvc"):
                bodies.append(len(body))
            return handle(method, path, headers, body)

        server.emulator.handle = spy
        result = load_bills(_client(server), files, settings)
        saved = [str(r[0]) for r in _client(server).execute_bill_query(FORM, ["FBillNo"], "FBillNo like 'CK-SZ-%'")]

        assert (result.created, result.rejected, result.existing) == (40, 1, 0)
        assert sorted(saved) == sorted(m["FBillNo"] for m in models if m["FBillNo"] != "CK-SZ-HUGE")  # each once
        assert bodies and max(bodies) <= limit and len(bodies) == len(chunks_of(_entries(models), settings, size)) - 1
        assert 1 < len(bodies) < 40 / 2 and max(bodies) > limit // 2  # packed by size, not one bill a call
        report = read_report(files).set_index("bill_no")
        message = report.loc["CK-SZ-HUGE", "message"]
        assert report.loc["CK-SZ-HUGE", "outcome"] == "rejected"
        assert "CK-SZ-HUGE" in message and f"{huge:,} bytes" in message and f"{limit:,} bytes" in message
        problems = window_problems(files)  # the window goes red for it, like for any refused bill
        assert [(p.order_no, p.outcome) for p in problems] == [("CK-SZ-HUGE", "rejected")]

        calls = len(bodies)
        again = load_bills(_client(server), files, settings)  # a rerun looks everything up and sends nothing
        assert (again.existing, again.rejected, again.created) == (40, 1, 0) and len(bodies) == calls
        dry = load_bills(_client(server), files, settings, dry_run=True)
        assert (dry.existing, dry.rejected, dry.would_create) == (40, 1, 0)


def test_disabled_base_data_counts_as_missing_before_posting(tmp_path) -> None:
    from emulators.kingdee import make_server

    with serving(make_server("127.0.0.1", 0, **KINGDEE, data_dir=tmp_path / "kd", seed=SEED)) as server:
        c = _client(server)
        assert c.existing_numbers("BD_MATERIAL", ["EOL9001-01", "GT1001-01", "NOPE"]) == {"GT1001-01"}
        assert c.existing_numbers("BD_Customer", ["CLOSED005", "TMALL001"]) == {"TMALL001"}
        good, retired, closed = _model("CK-DS-1"), _model("CK-DS-2", material="EOL9001-01"), _model("CK-DS-3")
        closed["FCustomerID"] = {"FNumber": "CLOSED005"}
        files = _files(tmp_path, [good, retired, closed])
        write_json(
            {
                "form_id": FORM,
                "service": "BatchSave",
                "options": OPTIONS,
                "base_data": {"FCustomerID": "BD_Customer", "FMaterialID": "BD_MATERIAL"},
            },
            files.request,
        )
        result = load_bills(c, files, LoadSettings(chunk_size=10))
        assert (result.created, result.held, result.rejected) == (1, 2, 0)
        report = read_report(files).set_index("bill_no")
        assert "BD_MATERIAL has no number 'EOL9001-01'" in report.loc["CK-DS-2", "message"]
        assert report.loc["CK-DS-3", "field"] == "FCustomerID"
        # without the check, Kingdee itself refuses them: a disabled record is no record on a bill
        unchecked = _files(tmp_path / "unchecked", [_model("CK-DS-4", material="EOL9001-01")])
        assert load_bills(c, unchecked, LoadSettings()).rejected == 1
        assert "物料编码" in read_report(unchecked).set_index("bill_no").loc["CK-DS-4", "message"]
