"""Every row of the user's mapping, applied to one order: where it lands and what Kingdee receives."""

import pytest

from erpsync.mapping.compile import MappingError, compile_mapping
from erpsync.scheme import INCLUDE_DIR, load_scheme

MAPPING = compile_mapping(load_scheme(INCLUDE_DIR / "schemes" / "sales_outstock.yaml"))

ORDER = {
    "stockout_id": "9001",
    "order_no": "CK2026110100012",
    "stockout_no": "CK2026110100012",
    "consign_time": "2026-11-01 10:23:45",
    "shop_no": "FENXIAO004",
    "warehouse_no": "WH002",
    "src_tids": "P1001,P1002",
}
LINES = [
    {
        "rec_id": "1",
        "spec_no": "GT1001-01",
        "goods_count": "2.0000",
        "sell_price": "19.9000",
        "product_date": "2026-03-01 00:00:00",
        "batch_no": "B1",
        "src_tid": "P1001",
    },
    {
        "rec_id": "2",
        "spec_no": "HW3001-02",
        "goods_count": "1.0000",
        "sell_price": "0.0000",
        "product_date": "0000-00-00 00:00:00",
        "batch_no": "",
        "src_tid": "P1002",
    },
    {
        "rec_id": "3",
        "spec_no": "AP4001-01",
        "goods_count": "3.0000",
        "sell_price": "79.0000",
        "product_date": "0000-00-00 00:00:00",
        "batch_no": "",
        "src_tid": "P1001",
    },
]


def test_header_rows():
    model = MAPPING.build(ORDER, LINES).model
    assert model["FBillTypeID"] == {"FNUMBER": "XSCKD001"}
    assert model["FBillNo"] == "CK2026110100012"
    assert model["FDate"] == "2026-11-01 10:23:45"
    assert model["FSaleOrgId"] == model["FCustomerID"] == {"FNumber": "FENXIAO004"}
    assert model["FSaleDeptID"] == {"FNumber": "BM000175"}
    assert model["FStockOrgId"] == model["FOwnerIdHead"] == {"FNumber": "WH002"}
    # a line field in the header: the order's distinct source numbers, as WDT joins src_tids
    assert model["F_ora_Text_ysdh"] == "P1001,P1002"
    assert model["F_ora_Text_ckdh"] == "CK2026110100012"
    # rows with no value are not sent: Kingdee applies its default
    for absent in ("FNote", "FSHOPNUMBER", "FSALECHANNEL"):
        assert absent not in model


def test_subhead_and_entry_placement():
    model = MAPPING.build(ORDER, LINES).model
    assert model["SubHeadEntity"] == {"FSettleOrgID": {"FNumber": "FENXIAO004"}, "FSettleCurrID": {"FNumber": "PRE001"}}
    # the document draws FEntity under SubHeadEntity; the API reads it at the top of the Model
    assert "FEntity" not in model["SubHeadEntity"]
    assert len(model["FEntity"]) == 3
    assert list(model) == [
        "FBillTypeID",
        "FBillNo",
        "FDate",
        "FSaleOrgId",
        "FCustomerID",
        "FSaleDeptID",
        "FStockOrgId",
        "F_ora_Text_ysdh",
        "F_ora_Text_ckdh",
        "FOwnerIdHead",
        "SubHeadEntity",
        "FEntity",
    ]


def test_entry_rows():
    first, gift, third = MAPPING.build(ORDER, LINES).model["FEntity"]
    assert first == {
        "FMaterialID": {"FNumber": "GT1001-01"},
        "FAuxPropId": {"FNumber": "03"},
        "FMustQty": "2",
        "FRealQty": "2",
        "FTaxPrice": "19.9",
        "FIsFree": False,
        "FLot": {"FNumber": "20250822"},
        "FProduceDate": "2026-03-01 00:00:00",
        "FOwnerTypeID": "BD_OwnerOrg",
        "FOwnerID": {"FNumber": "WH002"},
        "FStockID": {"FNumber": "WH002"},
    }
    # sell_price "0.0000" is the '0' of the user's _function: a gift
    assert gift["FIsFree"] is True and gift["FTaxPrice"] == "0"
    # WDT's zero datetime means "no production date": not sent
    assert "FProduceDate" not in gift
    assert third["FRealQty"] == "3" and third["FTaxPrice"] == "79"
    for entry in (first, gift, third):
        for absent in (
            "FPrice",
            "FExpiryDate",
            "FEntryTaxRate",
            "FEntryTaxAmount",
            "FAmount",
            "FAllAmount",
            "FMtoNo",
            "FEntrynote",
        ):
            assert absent not in entry


def test_request_options_go_to_the_request():
    assert MAPPING.request.form_id == "SAL_OUTSTOCK"
    assert MAPPING.request.service == "BatchSave"
    assert MAPPING.request.options == {
        "IsAutoSubmitAndAudit": False,
        "IsVerifyBaseDataField": False,
        "SubSystemId": "21",
    }
    entry = MAPPING.build(ORDER, LINES).model["FEntity"][0]
    for option in ("FormId", "Operation", "IsAutoSubmitAndAudit", "IsVerifyBaseDataField", "SubSystemId"):
        assert option not in entry


def test_decimals_are_exact():
    lines = [{**LINES[0], "goods_count": "0.3333", "sell_price": "1234567890.1234"}]
    entry = MAPPING.build(ORDER, lines).model["FEntity"][0]
    assert entry["FRealQty"] == "0.3333" and entry["FTaxPrice"] == "1234567890.1234"


@pytest.mark.parametrize(
    ("order", "lines", "field", "message"),
    [
        (ORDER, [{**LINES[0], "goods_count": "two"}], "FMustQty", "not a decimal number: 'two'"),
        (ORDER, [{**LINES[0], "product_date": "01/03/2026"}], "FProduceDate", "not a date"),
        ({**ORDER, "order_no": ""}, LINES, "FBillNo", "the bill number is empty"),
        (ORDER, [], "FEntity", "the order has no lines"),
    ],
)
def test_an_order_that_cannot_be_mapped_names_the_field(order, lines, field, message):
    with pytest.raises(MappingError, match=message) as caught:
        MAPPING.build(order, lines)
    assert caught.value.field == field


def test_now_in_a_mapping_is_the_run_s_window_end(edited_scheme):
    """NOW()/CURDATE() give the window end, not the wall clock: a rerun of the window posts the same bill."""
    from datetime import datetime

    def change(data):
        note = next(r for r in data["target"]["mapping"] if r["field"] == "FNote")
        note["value"] = "_function CONCAT('WDT ', DATE_FORMAT(DATE_SUB(NOW(), INTERVAL 1 SECOND), '%Y-%m-%d %H:%i'))"

    mapping = compile_mapping(edited_scheme(change))
    bill = mapping.build(ORDER, LINES, now=datetime(2026, 11, 2, 0, 0, 0))
    assert bill.model["FNote"] == "WDT 2026-11-01 23:59"
    with pytest.raises(MappingError, match=r"NOW\(\) needs the run's time"):
        mapping.build(ORDER, LINES)


def _with_maps(edited_scheme, files: dict[str, str], rows: dict[str, str]):
    """The seed scheme with some mapping rows' values replaced, and map files beside it."""

    def change(data):
        for row in data["target"]["mapping"]:
            if row["field"] in rows:
                row["value"] = rows[row["field"]]

    scheme = edited_scheme(change)
    folder = scheme.path.parent.parent / "maps"
    folder.mkdir(exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return compile_mapping(scheme)


SHOP_ORG = "shop_no,sale_org,customer\nFENXIAO004,100,C0004\nTMALL001,200,\n"
CHANNEL = "batch_details.spec_no,aux\nGT1001-01,03\nHW3001-02,010\nAP4001-01,07\n"


def test_value_maps_give_kingdee_s_numbers_for_wdt_s_codes(edited_scheme):
    mapping = _with_maps(
        edited_scheme,
        {"shop_org.csv": SHOP_ORG, "channel.csv": CHANNEL},
        {
            "FSaleOrgId": "{{maps.shop_org.sale_org}}",
            "FCustomerID": "_function CONCAT('K-', {{maps.shop_org.customer}})",
            "SubHeadEntity.FEntity.FAuxPropId": "{{maps.channel.aux}}",
        },
    )
    model = mapping.build(ORDER, LINES).model
    assert model["FSaleOrgId"] == {"FNumber": "100"} and model["FCustomerID"] == {"FNumber": "K-C0004"}
    assert [e["FAuxPropId"] for e in model["FEntity"]] == [{"FNumber": "03"}, {"FNumber": "010"}, {"FNumber": "07"}]
    # an empty cell is no value: the field is not sent
    assert "FCustomerID" not in mapping.build({**ORDER, "shop_no": "TMALL001"}, LINES).model


def test_a_value_the_map_lacks_stops_the_order_naming_map_and_value(edited_scheme):
    mapping = _with_maps(edited_scheme, {"shop_org.csv": SHOP_ORG}, {"FSaleOrgId": "{{maps.shop_org.sale_org}}"})
    with pytest.raises(
        MappingError, match=r"FSaleOrgId: map 'shop_org' \(shop_org.csv\) has no row for shop_no 'JD002'"
    ):
        mapping.build({**ORDER, "shop_no": "JD002"}, LINES)


@pytest.mark.parametrize(
    ("files", "value", "message"),
    [
        (
            {"shop_org.csv": SHOP_ORG},
            "{{maps.shop_orgs.sale_org}}",
            r"no map 'shop_orgs' in include/maps/ \(known: shop_org, shops, suppliers, warehouses\)",
        ),
        (
            {"shop_org.csv": SHOP_ORG},
            "{{maps.shop_org.org}}",
            r"map 'shop_org' has no column 'org' \(sale_org, customer\)",
        ),
        (
            {"shop_org.csv": "shop_nr,sale_org\nX,1\n"},
            "{{maps.shop_org.sale_org}}",
            r"map 'shop_org' key: \{\{shop_nr\}\} is not a response field",
        ),
        (
            {"shop_org.csv": "shop_no,sale_org\nX,1\nX,2\n"},
            "{{maps.shop_org.sale_org}}",
            r"shop_org.csv:3: shop_no 'X' has a row already",
        ),
        (
            {"shop_org.csv": "shop_no,sale_org\nX,1,2\n"},
            "{{maps.shop_org.sale_org}}",
            r"shop_org.csv:2: 3 cells, the header has 2",
        ),
    ],
)
def test_a_bad_map_or_map_reference_fails_when_the_scheme_loads(edited_scheme, files, value, message):
    from erpsync.scheme import SchemeError

    with pytest.raises(SchemeError, match=message):
        _with_maps(edited_scheme, files, {"FSaleOrgId": value})
