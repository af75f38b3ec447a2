"""The scheme file carries the user's whole document, and malformed schemes fail with a named row."""

import re
from pathlib import Path

import pytest

from erpsync.mapping.compile import compile_mapping
from erpsync.scheme import INCLUDE_DIR, LoadSettings, SchemeError, load_scheme

SCHEME = INCLUDE_DIR / "schemes" / "sales_outstock.yaml"
SEED = Path(__file__).resolve().parents[3] / "shared" / "seed" / "000_81bf6d41061929cf.txt"


def _seed_table(text: str, start: str, stop: str) -> list[list[str]]:
    block = text.split(start, 1)[1].split(stop, 1)[0]
    rows = [[c.strip() for c in line.split("|")] for line in block.splitlines() if "|" in line]
    return [r[:4] for r in rows if r[0] != "字段"]


@pytest.mark.skipif(not SEED.exists(), reason="the user's document is not beside the checkout")
def test_every_row_of_the_users_document_is_in_the_scheme():
    text = SEED.read_text(encoding="utf-8")
    scheme = load_scheme(SCHEME)
    request_rows = _seed_table(text, "请求参数", "响应参数")
    mapping_rows = _seed_table(text.split("金蝶云星空接口明细", 1)[1], "请求参数", "数据对接价值")
    assert [(p.field, p.label, p.type) for p in scheme.source.request] == [tuple(r[:3]) for r in request_rows]
    assert [(r.field, r.label, r.type, r.value) for r in scheme.target.mapping] == [tuple(r) for r in mapping_rows]
    # the document's sample request values are kept as examples, the paging ones as placeholders
    examples = {p.field: p.example or p.value for p in scheme.source.request}
    for field, _label, _type, value in request_rows:
        if value:
            assert examples[field] == value
    response_fields = [r[0] for r in _seed_table(text, "响应参数", "金蝶云星空接口明细")]
    assert set(response_fields) <= set(scheme.source.api.order_fields)


def test_the_scheme_loads_with_its_settings():
    scheme = load_scheme(SCHEME)
    assert scheme.dag_id == "wdt_kingdee_sales_outstock"
    assert scheme.source.page_size == 100 and scheme.source.start_page == 0
    assert scheme.settings.enabled is True and scheme.settings.retries == 3
    assert scheme.settings.timezone == "Asia/Shanghai"
    assert scheme.settings.load == LoadSettings(
        chunk_size=100, concurrency=4, rounds=5, on_problem="fail", asynchronous=False
    )


def test_the_base_data_check_is_on_by_default_and_can_be_switched_off(edited_scheme):
    checked = compile_mapping(load_scheme(SCHEME)).request.base_data
    assert checked["FMaterialID"] == "BD_MATERIAL" and checked["FCustomerID"] == "BD_Customer"
    assert checked["FStockID"] == "BD_STOCK" and checked["FSaleOrgId"] == "ORG_Organizations"
    off = edited_scheme(lambda d: d["target"].update(check_base_data=False))
    assert compile_mapping(off).request.base_data == {}


def test_more_request_options_reach_the_request(edited_scheme):
    rows = [
        {"field": "BatchCount", "label": "服务端线程数", "type": "int", "value": "4"},
        {"field": "ValidateRepeatJson", "label": "校验重复", "type": "bool", "value": "true"},
        {"field": "InterationFlags", "label": "交互标志", "type": "string", "value": "STK_InvCheckResult"},
    ]
    scheme = edited_scheme(lambda d: d["target"]["mapping"].extend(rows))
    assert compile_mapping(scheme).request.options == {
        "IsAutoSubmitAndAudit": False,
        "IsVerifyBaseDataField": False,
        "SubSystemId": "21",
        "BatchCount": 4,
        "ValidateRepeatJson": True,
        "InterationFlags": "STK_InvCheckResult",
    }


def _row(data, field):
    return next(r for r in data["target"]["mapping"] if r["field"] == field)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: _row(d, "FBillNo").update(value="{{order_nr}}"),
            r"FBillNo.*\{\{order_nr\}\} is not a response field",
        ),
        (
            lambda d: _row(d, "SubHeadEntity.FEntity.FMaterialID").update(value="{{batch_details.sku}}"),
            r"'sku' is not a line field",
        ),
        (lambda d: _row(d, "FDate").update(field="FDatum"), r"SAL_OUTSTOCK has no field 'FDatum'"),
        (
            lambda d: _row(d, "FNote").update(field="SubHeadEntity.FNote"),
            r"FNote belongs to header, not to SubHeadEntity",
        ),
        (
            lambda d: _row(d, "SubHeadEntity.FEntity.FIsFree").update(value="_function case when then"),
            r"FIsFree.*unexpected",
        ),
        (lambda d: _row(d, "SubHeadEntity.FEntity.Operation").update(value="Delete"), r"'Delete' is not supported"),
        (lambda d: _row(d, "SubHeadEntity.FEntity.FormId").update(value="SAL_SALEORDER"), r"does not match the form"),
        (lambda d: _row(d, "SubHeadEntity.FEntity").update(value="gifts"), r"entry list 'gifts'"),
        (lambda d: d["target"]["mapping"].append({"field": "FBillNo", "value": "x"}), r"FBillNo is mapped twice"),
        (
            lambda d: _row(d, "SubHeadEntity.FEntity.IsAutoSubmitAndAudit").update(value="maybe"),
            r"expected true or false",
        ),
        (lambda d: d["target"]["mapping"].append({"field": "BatchCount", "value": "four"}), r"expected a whole number"),
    ],
)
def test_a_malformed_mapping_names_the_row(edited_scheme, change, message):
    with pytest.raises(SchemeError, match=message):
        compile_mapping(edited_scheme(change))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["source"]["pagination"].update(page_size=500), r"page_size: must be 1..100"),
        (
            lambda d: d["source"]["request"].append({"field": "buyer_nick", "value": "x"}),
            r"'buyer_nick' is not a request parameter",
        ),
        (lambda d: d["settings"]["schedule"].update(cron="every hour"), r"not a valid cron"),
        (lambda d: d["settings"].update(retries="three"), r"settings.retries: Input should be a valid integer"),
        (lambda d: d["settings"].pop("enabled"), r"settings.enabled: missing"),
        (lambda d: d["target"].update(form="SAL_NOPE"), r"kingdee.SAL_NOPE.yaml: file not found"),
        (
            lambda d: d["target"]["collections"]["batch_details"]["aliases"].update(num="qty"),
            r"'qty' is not a line field",
        ),
        (
            lambda d: d["settings"]["load"].update(concurrency=0),
            r"settings.load.concurrency: Input should be greater than or equal to 1",
        ),
        (lambda d: d["settings"]["load"].update(on_problem="ignore"), r"on_problem: Input should be 'fail' or 'warn'"),
        (
            lambda d: d["settings"]["load"].update(asynchronous="perhaps"),
            r"asynchronous: Input should be a valid boolean",
        ),
    ],
)
def test_a_malformed_scheme_names_the_setting(edited_scheme, change, message):
    with pytest.raises(SchemeError, match=message):
        edited_scheme(change)


def test_errors_name_the_file(edited_scheme):
    with pytest.raises(SchemeError, match=re.escape("sales_outstock.yaml")):
        edited_scheme(lambda d: d["settings"].pop("enabled"))
