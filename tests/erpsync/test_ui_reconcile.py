"""The reconciliation pages (对账): a DAG's reconciled days, one day's totals, groups and differences,
and its exports, on days stored with ``erpsync.reconcile.store.write_day`` (no emulator, no DAG run).
The pages are read through the plugin's FastAPI app with Airflow's own auth manager deciding."""

from __future__ import annotations

import csv
import html
import io
import re

import pytest
from airflow.sdk import ObjectStoragePath
from fastapi.testclient import TestClient

from erpsync.reconcile.compare import DIFFERENCE_COLUMNS, DayResult
from erpsync.reconcile.store import write_day

DAG_ID = "wdt_kingdee_sales_outstock"  # a scheme of include/schemes
MATCHED, DIFFERING, EMPTY = "2026-11-02", "2026-11-03", "2026-12-01"
HEADERS = ["类型", "旺店通单号", "金蝶单号", "金蝶内码", "字段", "明细", "旺店通值", "金蝶值", "原因", "说明"]


def _difference(kind: str, **values):
    row = dict.fromkeys(DIFFERENCE_COLUMNS)
    row.update(kind=kind, **values)
    return row


def _group(party, warehouse, material, wdt, kingdee):
    (docs, wq, wa), (bills, kq, ka) = wdt, kingdee
    return {
        "party": party,
        "warehouse": warehouse,
        "material": material,
        "wdt_documents": docs,
        "wdt_quantity": wq,
        "wdt_amount": wa,
        "kingdee_bills": bills,
        "kingdee_quantity": kq,
        "kingdee_amount": ka,
    }


DIFFERENCES = [
    _difference(
        "missing", wdt_no="CK3", order_id="3", bill_key="CK3", reason="held", detail="BD_MATERIAL has no number 'M2'"
    ),
    _difference("missing", wdt_no="CK4", order_id="4", bill_key="CK4", reason="not read yet"),
    _difference(
        "extra",
        bill_key="HAND-1",
        kingdee_bill_no="XSCK106",
        kingdee_id="106",
        reason="no WDT document",
        detail="no document read has HAND-1",
        kingdee="M1@WH1 × 1 = 7",
    ),
    _difference(
        "mismatched",
        wdt_no="CK1",
        order_id="1",
        bill_key="CK1",
        kingdee_bill_no="XSCK100",
        kingdee_id="100",
        field="quantity",
        line="M1@WH1",
        wdt="2",
        kingdee="5",
    ),
    _difference(
        "deleted",
        wdt_no="CK2",
        order_id="2",
        bill_key="CK2",
        kingdee_bill_no="XSCK102",
        kingdee_id="100002",
        reason="not in Kingdee any more",
        detail="created by window=20261103T000000_20261104T000000 at 2026-11-03T17:00:00+00:00",
    ),
]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = ObjectStoragePath((tmp_path_factory.mktemp("reconcile") / "staging").as_uri())
    write_day(
        root,
        DayResult(
            MATCHED,
            "sales",
            DAG_ID,
            {
                "wdt": {"documents": 2, "quantity": "3", "amount": "59.7"},
                "kingdee": {"bills": 2, "quantity": "3", "amount": "59.7"},
            },
            [_group("C1", "WH1", "M1", (2, "3", "59.7"), (2, "3", "59.7"))],
            [],
        ),
    )
    write_day(
        root,
        DayResult(
            DIFFERING,
            "sales",
            DAG_ID,
            {
                "wdt": {"documents": 4, "quantity": "5", "amount": "84.6"},
                "kingdee": {"bills": 2, "quantity": "6", "amount": "106.5"},
            },
            [
                _group("C1", "WH1", "A-SAME", (1, "1", "5"), (1, "1", "5")),
                _group("C1", "WH1", "M1", (3, "4", "79.6"), (2, "6", "106.5")),
            ],
            DIFFERENCES,
        ),
    )
    return root


@pytest.fixture(scope="module")
def auth_manager():
    from airflow.api_fastapi.app import init_auth_manager

    return init_auth_manager()


def _user(role: str | None = "viewer"):
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    return SimpleAuthManagerUser(username=f"{role}-user", role=role)


@pytest.fixture(scope="module")
def app(root, auth_manager):
    from erpsync.ui.app import create_app

    return create_app(root=lambda: root)


@pytest.fixture
def client(app):
    from airflow.api_fastapi.core_api.security import get_user

    app.dependency_overrides[get_user] = lambda: _user("viewer")
    try:
        yield TestClient(app)
    finally:
        app.dependency_overrides.clear()


def _text(page: str) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))


def _day_url(day: str, *rest: str) -> str:
    return "/".join([f"/dags/{DAG_ID}/reconcile/{day}", *rest])


# -- the calendar ------------------------------------------------------------------------------------


def test_calendar_lists_each_day_with_its_state(client):
    response = client.get(f"/dags/{DAG_ID}/reconcile")
    assert response.status_code == 200
    page = response.text
    assert "<script" not in page and "script-src" not in response.headers["content-security-policy"]
    assert "2026-11" in _text(page)
    matched = re.search(rf'<td class="rc-ok"><a href="(/dags/{DAG_ID}/reconcile/{MATCHED})"', page)
    differing = re.search(rf'<td class="rc-bad"><a href="(/dags/{DAG_ID}/reconcile/{DIFFERING})"', page)
    assert matched and differing
    cell = page[differing.end() : page.index("</td>", differing.end())]
    assert "缺失 2" in _text(cell) and "多余 1" in _text(cell) and "不符 1" in _text(cell) and "已删除 1" in _text(cell)
    table = _text(page[page.index("Reconciled days") :])
    assert table.index(DIFFERING) < table.index(MATCHED)  # newest first
    assert "一致 matched" in table and "有差异 differences" in table
    assert f"/dags/{DAG_ID}/reconcile/{DIFFERING}/export.xlsx" in page


def test_a_dag_never_reconciled_says_so(client, root):
    from airflow.api_fastapi.core_api.security import get_user

    from erpsync.ui.app import create_app

    empty = create_app(root=lambda: root / "nothing-here")
    empty.dependency_overrides[get_user] = lambda: _user("viewer")
    response = TestClient(empty).get(f"/dags/{DAG_ID}/reconcile")
    assert response.status_code == 200 and "not reconciled yet" in _text(response.text)


def test_index_and_dag_page_link_to_the_calendar(client, airflow_db):
    target = f'href="/dags/{DAG_ID}/reconcile"'
    assert target in client.get("/").text
    assert target in client.get(f"/dags/{DAG_ID}").text


# -- one day -----------------------------------------------------------------------------------------


def test_day_page_shows_totals_side_by_side(client):
    response = client.get(_day_url(DIFFERING))
    assert response.status_code == 200
    page = _text(response.text)
    assert "单据 Documents / bills 4 2 -2" in page
    assert "数量 Quantity 5 6 +1" in page
    assert "金额 Amount 84.6 106.5 +21.9" in page
    matched = _text(client.get(_day_url(MATCHED)).text)
    assert "金额 Amount 59.7 59.7 0" in matched and "No difference" in matched


def test_day_page_lists_the_differing_group_first_and_highlighted(client):
    page = client.get(_day_url(DIFFERING)).text
    groups = page[page.index('<table class="grid groups">') :]
    groups = groups[: groups.index("</table>")]
    rows = re.findall(r"<tr( class=\"differs\")?>(.*?)</tr>", groups, re.S)[1:]  # the header row aside
    assert [bool(differs) for differs, _ in rows] == [True, False]
    assert "M1" in _text(rows[0][1]) and "+2" in _text(rows[0][1]) and "+26.9" in _text(rows[0][1])
    assert "A-SAME" in _text(rows[1][1])


def test_day_page_groups_differences_by_kind_with_search_links(client):
    page = client.get(_day_url(DIFFERING)).text
    text = _text(page)
    order = [text.index(h) for h in ("缺失 missing", "多余 extra", "不符 mismatched", "已删除 deleted")]
    assert order == sorted(order)
    for number in ("CK1", "CK2", "CK3", "CK4"):
        assert f'<a href="/search?q={number}">{number}</a>' in page
    missing = _text(page[page.index('id="missing"') : page.index('id="extra"')])
    assert "CK3" in missing and "暂扣 held" in missing and "BD_MATERIAL has no number 'M2'" in missing
    assert "CK4" in missing and "尚未读取 not read yet" in missing and "CK1" not in missing
    extra = _text(page[page.index('id="extra"') : page.index('id="mismatched"')])
    assert "XSCK106" in extra and "HAND-1" in extra and "M1@WH1 × 1 = 7" in extra
    mismatched = _text(page[page.index('id="mismatched"') : page.index('id="deleted"')])
    assert "XSCK100" in mismatched and "数量 quantity" in mismatched and "M1@WH1" in mismatched
    deleted = _text(page[page.index('id="deleted"') :])
    assert "XSCK102" in deleted and "100002" in deleted and "金蝶中已不存在" in deleted


@pytest.mark.parametrize(
    "day",
    ["2026-11-3", "20261103", "2026-13-45", "%2E%2E", "..%2F..%2Fsecrets", "2026-11-03x", " 2026-11-03", "x" * 300],
)
def test_a_bad_day_is_never_a_path(client, day):
    for suffix in ("", "/export.xlsx", "/export.csv"):
        assert client.get(f"/dags/{DAG_ID}/reconcile/{day}{suffix}").status_code in (404, 422)


def test_a_day_never_reconciled_is_404(client):
    for suffix in ("", "/export.xlsx", "/export.csv"):
        response = client.get(_day_url(EMPTY) + suffix, headers={"accept": "text/html"})
        assert response.status_code == 404 and "no reconciliation" in response.text


def test_unknown_dags_are_404_and_unreadable_dags_403(client, app):
    from airflow.api_fastapi.core_api.security import get_user

    assert client.get("/dags/some_other_dag/reconcile").status_code == 404
    assert client.get(f"/dags/some_other_dag/reconcile/{DIFFERING}").status_code == 404
    app.dependency_overrides[get_user] = lambda: _user(None)  # signed in, no role: may read no DAG
    nobody = TestClient(app)
    for path in (
        f"/dags/{DAG_ID}/reconcile",
        _day_url(DIFFERING),
        _day_url(DIFFERING, "export.xlsx"),
        _day_url(DIFFERING, "export.csv"),
    ):
        assert nobody.get(path).status_code == 403, path


# -- exports -----------------------------------------------------------------------------------------


def test_xlsx_export_has_the_differences_and_the_totals_in_chinese(client):
    from openpyxl import load_workbook

    response = client.get(_day_url(DIFFERING, "export.xlsx"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/vnd.openxmlformats-officedocument.spreadsheetml")
    assert f"{DAG_ID}-reconcile-{DIFFERING}.xlsx" in response.headers["content-disposition"]
    book = load_workbook(io.BytesIO(response.content))
    assert book.sheetnames == ["差异", "汇总"]
    rows = list(book["差异"].iter_rows(values_only=True))
    assert list(rows[0]) == HEADERS
    assert len(rows) == 1 + len(DIFFERENCES)
    by_no = {r[1]: r for r in rows[1:] if r[1]}
    assert by_no["CK3"][0] == "缺失" and by_no["CK3"][8] == "暂扣"
    assert by_no["CK1"][:8] == ("不符", "CK1", "XSCK100", "100", "数量", "M1@WH1", "2", "5")
    extra = next(r for r in rows[1:] if r[0] == "多余")
    assert extra[2] == "XSCK106" and extra[3] == "106"
    summary = list(book["汇总"].iter_rows(values_only=True))
    assert summary[0][:3] == ("往来单位", "仓库", "物料") and "金蝶金额" in summary[0] and "金额差异" in summary[0]
    assert summary[1][2] == "M1" and summary[1][-1] == pytest.approx(26.9)  # the differing group first
    assert summary[-1][0] == "合计" and summary[-1][5] == pytest.approx(84.6) and summary[-1][8] == pytest.approx(106.5)


def test_csv_export_is_utf8_with_a_bom(client):
    response = client.get(_day_url(DIFFERING, "export.csv"))
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert response.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0] == HEADERS
    assert len(rows) == 1 + len(DIFFERENCES)
    assert ["已删除", "CK2", "XSCK102", "100002"] == rows[-1][:4]
    assert client.get(_day_url(MATCHED, "export.csv")).content.decode("utf-8-sig").splitlines() == [",".join(HEADERS)]
