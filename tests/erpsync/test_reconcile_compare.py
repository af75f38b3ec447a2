"""One day's comparison, on documents and bills made by hand: each kind, its values and the totals."""

from __future__ import annotations

from decimal import Decimal as D

from erpsync.reconcile.compare import compare_day, new_differences
from erpsync.reconcile.sides import Bill, Doc, Known

DAY = "2026-11-03"


def _doc(n: int, lines: dict, party: str = "C1", day: str = DAY) -> Doc:
    return Doc(str(n), f"CK{n}", f"CK{n}", day, date=day, party=party, lines={k: list(v) for k, v in lines.items()})


def _bill(n: int, key: str | None, lines: dict, party: str = "C1", date: str = DAY) -> Bill:
    return Bill(str(n), f"XSCK{n}", key, date, party, {k: list(v) for k, v in lines.items()})


A, B = ("M1", "WH1"), ("M2", "WH1")


def _compare(docs, bills, known=None, keys=None):
    keys = keys if keys is not None else {d.key for d in docs if d.key}
    return compare_day(DAY, "sales", "dag", docs, bills, keys, known or {})


def test_a_matching_day_is_clean_and_its_totals_agree():
    result = _compare([_doc(1, {A: (D(2), D("39.80"))})], [_bill(100, "CK1", {A: (D("2.0000"), D("39.8"))})])
    assert result.clean and result.counts == {"missing": 0, "extra": 0, "mismatched": 0, "deleted": 0}
    assert result.totals["wdt"] == {"documents": 1, "quantity": "2", "amount": "39.8"}
    assert result.totals["kingdee"] == {"bills": 1, "quantity": "2", "amount": "39.8"}


def test_each_kind_with_its_reason_and_values():
    docs = [
        _doc(1, {A: (D(2), D("39.80"))}),  # edited in Kingdee: quantity 5
        _doc(2, {A: (D(1), D("19.90"))}),  # deleted in Kingdee
        _doc(3, {B: (D(1), D("5.00"))}),  # held: never loaded
        _doc(4, {A: (D(1), D("19.90"))}),  # read by no window yet
        _doc(5, {A: (D(1), D("19.90"))}, party="C2"),  # customer changed in Kingdee
    ]
    bills = [
        _bill(100, "CK1", {A: (D(5), D("99.50"))}),
        _bill(105, "CK5", {A: (D(1), D("19.90"))}, party="C9"),
        _bill(106, "HAND-1", {A: (D(1), D("7.00"))}),  # made by hand
        _bill(107, "CK5", {A: (D(1), D("19.90"))}),  # a second bill of CK5
        _bill(108, "CK1", {A: (D(2), D("39.80"))}, date="2026-11-04"),  # a second bill of CK1, dated the 4th
    ]
    known = {
        "2": Known(
            "created", "", "window=20261103T000000_20261104T000000", "2026-11-03T17:00:00+00:00", "100002", "CK2"
        ),
        "3": Known("held", "BD_MATERIAL has no number 'M2'", "window=x", "2026-11-03T17:00:00+00:00"),
    }
    result = _compare(docs, bills, known)
    missing = [(m["wdt_no"], m["reason"], m["detail"]) for m in result.of_kind("missing")]
    assert missing == [("CK3", "held", "BD_MATERIAL has no number 'M2'"), ("CK4", "not read yet", None)]
    deleted = result.of_kind("deleted")
    assert [(d["wdt_no"], d["kingdee_bill_no"], d["kingdee_id"]) for d in deleted] == [("CK2", "CK2", "100002")]
    mismatched = {(m["wdt_no"], m["field"], m["line"], m["wdt"], m["kingdee"]) for m in result.of_kind("mismatched")}
    assert mismatched == {
        ("CK1", "quantity", "M1@WH1", "2", "5"),
        ("CK1", "amount", "M1@WH1", "39.8", "99.5"),
        ("CK5", "party", None, "C2", "C9"),
    }
    extra = [(e["kingdee_bill_no"], e["reason"]) for e in result.of_kind("extra")]
    # a bill is its document's day's, whatever its date: XSCK108 is a second bill of the 3rd's CK1
    assert extra == [("XSCK106", "no WDT document"), ("XSCK107", "duplicate"), ("XSCK108", "duplicate")]
    # the totals differ by exactly the differences: held, deleted, unread and the edit against the extras
    gap = D(result.totals["wdt"]["amount"]) - D(result.totals["kingdee"]["amount"])
    assert gap == D("5.00") + D("19.90") + D("19.90") - (D("99.50") - D("39.80")) - D("7.00") - D("19.90") - D("39.80")


def test_a_bill_counts_on_its_documents_day_whatever_date_it_carries():
    """A scheme in UTC over an API in Shanghai time: a document shipped 2026-11-04 03:00 Shanghai is the
    3rd's (UTC) and its bill is dated the 4th as the mapping wrote it; a bill dated the 3rd whose document
    is the 2nd's is no extra of the 3rd. Only a bill of no document read is the day's by its date."""
    docs = [_doc(1, {A: (D(2), D("4"))})]
    docs[0].date = "2026-11-04"
    bills = [
        _bill(100, "CK1", {A: (D(2), D("4"))}, date="2026-11-04"),
        _bill(101, "CK0", {A: (D(1), D("2"))}),  # the 2nd's document (read, not of the day)
        _bill(102, "HAND", {A: (D(1), D("1"))}),
        _bill(103, "HAND-4", {A: (D(1), D("1"))}, date="2026-11-04"),
    ]
    result = _compare(docs, bills, keys={"CK1", "CK0"})
    assert [(e["kingdee_bill_no"], e["reason"]) for e in result.of_kind("extra")] == [("XSCK102", "no WDT document")]
    assert result.of_kind("mismatched") == [] and result.of_kind("missing") == []
    assert result.totals["kingdee"] == {"bills": 2, "quantity": "3", "amount": "5"}
    gap = D(result.totals["wdt"]["amount"]) - D(result.totals["kingdee"]["amount"])
    assert gap == -D("1")  # the extra bill, exactly


def test_a_line_whose_material_changed_is_named_with_both_materials():
    result = _compare([_doc(1, {A: (D(2), D("39.80"))})], [_bill(100, "CK1", {("M9", "WH1"): (D(2), D("39.80"))})])
    assert [(m["field"], m["wdt"], m["kingdee"]) for m in result.of_kind("mismatched")] == [("material", "M1", "M9")]


def test_totals_are_per_party_warehouse_and_material():
    result = _compare(
        [_doc(1, {A: (D(2), D("4")), B: (D(1), D("1"))}), _doc(2, {A: (D(1), D("2"))}, party="C2")],
        [_bill(100, "CK1", {A: (D(2), D("4")), B: (D(1), D("1"))})],
        known={"2": Known("quarantined", "goods_count", "w", "t")},
    )
    rows = {(g["party"], g["material"]): g for g in result.groups}
    assert rows[("C1", "M1")]["wdt_documents"] == rows[("C1", "M1")]["kingdee_bills"] == 1
    assert (rows[("C2", "M1")]["wdt_amount"], rows[("C2", "M1")]["kingdee_amount"]) == ("2", "0")


def test_a_difference_alerts_once_however_often_the_day_is_checked():
    first = _compare([_doc(1, {A: (D(2), D("4"))})], [])
    assert len(new_differences(None, first)) == 1
    again = _compare([_doc(1, {A: (D(2), D("4"))})], [])
    assert new_differences(first, again) == []
    worse = _compare([_doc(1, {A: (D(2), D("4"))}), _doc(2, {A: (D(1), D("2"))})], [])
    assert [d["wdt_no"] for d in new_differences(first, worse)] == ["CK2"]
