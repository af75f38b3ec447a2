"""The seed mapping on arbitrary field values (hypothesis): the engine raises nothing but its own
MappingError, a value is never read as part of an expression, and numbers pass through exactly."""

from __future__ import annotations

import re
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from erpsync.mapping.compile import MappingError, compile_mapping
from erpsync.scheme import INCLUDE_DIR, load_scheme

MAPPING = compile_mapping(load_scheme(INCLUDE_DIR / "schemes" / "sales_outstock.yaml"))
NULLS = ("", "0000-00-00 00:00:00", "0000-00-00")

TEXT = st.one_of(
    st.none(),
    st.text(max_size=20),
    st.sampled_from(
        [
            "0",
            "0.0000",
            "-1",
            "1e3",
            "NaN",
            "Infinity",
            "0' or '1'='1",
            "') end --",
            "{{order_no}}",
            "2026-11-01 10:00:00",
            "0000-00-00 00:00:00",
            "  7.50 ",
            "１２",
            "\u3000",
            "0e5",
            "-0",
            " 0 ",
        ]
    ),
)


def _sent(value: str | None) -> str | None:
    """What a text field sends for a source value: nothing for NULL-like values, else the trimmed text."""
    return None if value is None or value.strip() in NULLS else value.strip()


@settings(max_examples=300, deadline=None, database=None)
@given(order_no=TEXT, shop_no=TEXT, consign_time=TEXT, spec_no=TEXT, count=TEXT, price=TEXT)
def test_any_values_build_a_faithful_bill_or_a_mapping_error(order_no, shop_no, consign_time, spec_no, count, price):
    order = {
        "stockout_id": "1",
        "order_no": order_no,
        "stockout_no": order_no,
        "consign_time": consign_time,
        "shop_no": shop_no,
        "warehouse_no": "WH1",
    }
    line = {"rec_id": "1", "spec_no": spec_no, "goods_count": count, "sell_price": price, "src_tid": order_no}
    try:
        model = MAPPING.build(order, [line]).model
    except MappingError as exc:
        assert exc.field in {"FBillNo", "FDate", "FMustQty", "FRealQty", "FTaxPrice", "FIsFree"}, exc
        return
    entry = model["FEntity"][0]
    assert model["FBillNo"] == _sent(order_no)
    assert model.get("FSaleOrgId") == (None if _sent(shop_no) is None else {"FNumber": _sent(shop_no)})
    assert entry.get("FMaterialID") == (None if _sent(spec_no) is None else {"FNumber": _sent(spec_no)})
    for key, text in (("FRealQty", count), ("FTaxPrice", price)):
        if _sent(text) is None:
            assert key not in entry
        else:  # exact: the decimal WDT sent, never through a float
            assert Decimal(entry[key]) == Decimal(text.strip())
    # the gift flag is decided by the price alone (a plain decimal equal to 0; the comparison does not
    # read exponents): text that looks like SQL is just text
    is_zero = (
        price is not None and re.fullmatch(r"\s*[-+]?\d+(\.\d*)?\s*", price) is not None and Decimal(price.strip()) == 0
    )
    assert entry["FIsFree"] is is_zero
