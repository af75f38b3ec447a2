"""The erpsync pages, on windows staged by real DAG runs against both emulators.

Three runs of the sales scheme (``dag.test()``): A loads 11-01..11-03 (bad quantities quarantined,
an unknown SKU held before posting), B loads 11-03..11-06 with the base-data check off (Kingdee
itself rejects the unknown SKU), C re-reads 11-02..11-04 over both (everything already in Kingdee).
The pages are read through the plugin's FastAPI app with Airflow's own auth manager deciding.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urljoin

import pandas as pd
import pytest
import yaml
from airflow.sdk import ObjectStoragePath
from fastapi.testclient import TestClient

from erpsync.scheme import INCLUDE_DIR, load_scheme
from erpsync.staging import RunFiles, read_json, read_parquet, write_parquet
from erpsync.steps.load import read_report
from erpsync.windows import Window, parse_datetime
from tests.conftest import KINGDEE, REPO, SEED, connect_emulators, serving

DAG_ID = "wdt_kingdee_sales_outstock"
RUNS = {
    "A": ("2026-11-01T00:00:00", "2026-11-03T00:00:00", True),
    "B": ("2026-11-03T00:00:00", "2026-11-06T00:00:00", False),  # check_base_data off: Kingdee rejects
    "C": ("2026-11-02T00:00:00", "2026-11-04T00:00:00", True),
}


@dataclass
class World:
    root: str  # the staging root URL
    run_ids: dict[str, str]
    files: dict[str, RunFiles]


def _window(name: str) -> Window:
    start, end, _ = RUNS[name]
    return Window.of(parse_datetime(start, "s"), parse_datetime(end, "e"))


@pytest.fixture(scope="module")
def world(tmp_path_factory, wdt_emulator, airflow_db):
    from emulators.kingdee import make_server
    from erpsync.dag_factory import build_dag

    base = tmp_path_factory.mktemp("ui")
    include = base / "include"
    shutil.copytree(INCLUDE_DIR, include)
    path = include / "schemes" / "sales_outstock.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["target"]["check_base_data"] = False
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    schemes = {True: load_scheme(INCLUDE_DIR / "schemes" / "sales_outstock.yaml"), False: load_scheme(path, include)}
    root = (base / "staging").as_uri()
    kingdee_server = make_server("127.0.0.1", 0, **KINGDEE, data_dir=base / "kingdee", seed=SEED)
    with pytest.MonkeyPatch.context() as mp, serving(kingdee_server) as kingdee:
        mp.setenv("AIRFLOW__ERPSYNC__STAGING_ROOT", root)
        connect_emulators(mp, wdt_emulator.url, kingdee.url)
        run_ids = {}
        for name, (start, end, check) in RUNS.items():
            run = build_dag(schemes[check]).test(run_conf={"window_start": start, "window_end": end})
            run_ids[name] = run.run_id
        files = {name: RunFiles(ObjectStoragePath(root), DAG_ID, _window(name)) for name in RUNS}
        yield World(root, run_ids, files)


@pytest.fixture(scope="module")
def auth_manager(world):
    from airflow.api_fastapi.app import init_auth_manager

    return init_auth_manager()


def _user(role: str | None = "viewer"):
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    return SimpleAuthManagerUser(username=f"{role}-user", role=role)


@pytest.fixture(scope="module")
def app(world, auth_manager):
    from erpsync.ui.app import create_app

    return create_app(root=lambda: ObjectStoragePath(world.root))


@pytest.fixture
def client(app):
    from airflow.api_fastapi.core_api.security import get_user

    app.dependency_overrides[get_user] = lambda: _user("viewer")
    try:
        yield TestClient(app)
    finally:
        app.dependency_overrides.clear()


def _run_url(world: World, name: str) -> str:
    return f"/dags/{DAG_ID}/runs/{quote(world.run_ids[name], safe='')}"


def _text(page: str) -> str:
    """The page's text as a reader sees it: tags dropped, entities decoded, spaces collapsed."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))


def _report(files: RunFiles) -> pd.DataFrame:
    report = read_report(files)
    return report.astype(object).where(report.notna(), None)


# -- login -----------------------------------------------------------------------------------------


def test_every_page_needs_airflow_login(world, auth_manager):
    """Mounted by Airflow's own api-server app: no credentials, no page; the UI's cookie or a Bearer JWT opens it."""
    from airflow.api_fastapi.app import create_app as airflow_app

    client = TestClient(airflow_app(apps="core"))
    paths = [
        "/erpsync/",
        f"/erpsync{_run_url(world, 'A')}",
        "/erpsync/search?q=CK",
        "/erpsync/apis",
        "/erpsync/static/erpsync.css",
        "/erpsync/staging/_gx_static/1.24.1/images/favicon.ico",
    ]
    for path in paths:
        response = client.get(path)
        assert response.status_code == 401, path
        assert response.json() == {"detail": "Not authenticated"}
    browser = client.get("/erpsync/", headers={"accept": "text/html"})
    assert browser.status_code == 401 and "Sign in" in browser.text  # a person gets a page, not JSON

    token = auth_manager.generate_jwt(_user("viewer"))
    cookie = TestClient(airflow_app(apps="core"), cookies={"_token": token}).get(f"/erpsync{_run_url(world, 'A')}")
    assert cookie.status_code == 200 and "2026-11-01 00:00 → 2026-11-03 00:00" in cookie.text
    bearer = client.get("/erpsync/", headers={"Authorization": f"Bearer {token}"})
    assert bearer.status_code == 200 and DAG_ID in bearer.text
    assert client.get("/erpsync/", headers={"Authorization": "Bearer not-a-token"}).status_code in (401, 403)


def test_a_user_sees_only_the_dags_airflow_lets_them_read(app):
    from airflow.api_fastapi.core_api.security import get_user

    app.dependency_overrides[get_user] = lambda: _user(None)  # signed in, no role: may read no DAG
    try:
        client = TestClient(app)
        assert DAG_ID not in client.get("/").text
        assert client.get(f"/dags/{DAG_ID}").status_code == 403
        assert client.get(f"/dags/{DAG_ID}/windows/window=20261101T000000_20261103T000000").status_code == 403
        assert "No order matches" in client.get("/search", params={"q": "CK2026110100001"}).text
    finally:
        app.dependency_overrides.clear()


# -- a run's report ----------------------------------------------------------------------------------


def test_run_page_counts_quarantine_and_held_orders(client, world, dataset):
    files = world.files["A"]
    summary = read_json(files.quality / "summary.json")
    quarantine = read_parquet(files.quarantine)
    report = _report(files)
    assert len(quarantine) and (report["outcome"] == "held").any()  # the data set's defects are in this window

    response = client.get(_run_url(world, "A"))
    assert response.status_code == 200
    page = _text(response.text)
    assert world.run_ids["A"] in page and "from the run's extract manifest (XCom)" in page
    assert "2026-11-01 00:00 → 2026-11-03 00:00" in page
    checked, bad = summary["orders"], summary["quarantined_orders"]
    assert f"{checked - bad} / {checked} 通过 passed of checked" in page
    assert f"隔离 quarantined: {bad} " in page
    counts = report["outcome"].value_counts()
    assert f"已创建 created {counts['created']} " in page
    # quarantined by rule, with each failing order and the value as received
    assert "goods_count > 0" in page and "expect_column_values_to_be_between" in page
    for row in quarantine.itertuples():
        assert re.search(rf"{row.order_no} {row.order_id} {row.line_id} goods_count > 0 goods_count 0\.0000", page)
    zero_qty = {n for n, d in dataset.defects.items() if d == "zero_quantity"}
    assert set(quarantine["order_no"]) <= zero_qty
    # held back before posting: the base data Kingdee lacks
    for row in report[report["outcome"] == "held"].itertuples():
        assert row.order_no in page and "BD_MATERIAL has no number 'NEW-SKU-999'" in page
    assert "暂扣 held" in page and "FMaterialID" in page


def test_run_page_shows_kingdees_reason_for_a_rejected_bill(client, world):
    report = _report(world.files["B"])
    rejected = report[report["outcome"] == "rejected"]
    assert len(rejected)  # the base-data check was off: Kingdee itself refused the unknown SKU
    page = _text(client.get(_run_url(world, "B")).text)
    for row in rejected.itertuples():
        assert row.bill_no in page
        assert _text(str(row.message)) in page
    assert f"被拒绝 rejected {len(rejected)} " in page


def test_each_task_tab_lands_on_its_section(client, world):
    page = client.get(_run_url(world, "A")).text
    for task_id in ("extract", "validate", "transform", "load"):
        assert f'<section id="{task_id}">' in page


def test_a_run_without_manifest_resolves_its_window_like_its_tasks(client, world):
    """A run whose extract left no XCom (failed before, cleared, or another XCom backend): its window
    comes from its conf / data interval, as ``resolve_window`` gives the tasks."""
    import pendulum
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    start, end, _ = RUNS["A"]
    with create_session() as session:
        session.add(
            DagRun(
                dag_id=DAG_ID,
                run_id="manual__ui_no_manifest",
                run_type="manual",
                state="failed",
                conf={"window_start": start, "window_end": end},
                run_after=pendulum.now("UTC"),
            )
        )
        interval = (pendulum.datetime(2026, 11, 9, 16, tz="UTC"), pendulum.datetime(2026, 11, 9, 17, tz="UTC"))
        session.add(
            DagRun(
                dag_id=DAG_ID,
                run_id="scheduled__ui_not_staged",
                run_type="scheduled",
                state="queued",
                logical_date=interval[0],
                data_interval=interval,
                run_after=interval[1],
            )
        )
    page = _text(client.get(f"/dags/{DAG_ID}/runs/manual__ui_no_manifest").text)
    assert "resolved from the run's conf / data interval" in page
    assert "2026-11-01 00:00 → 2026-11-03 00:00" in page and "goods_count > 0" in page  # window A's report
    # the files there are run A's, and the page says so
    assert f"written by another run of this window: {world.run_ids['A']}" in page
    assert "written by another run" not in _text(client.get(_run_url(world, "A")).text)
    queued = _text(client.get(f"/dags/{DAG_ID}/runs/scheduled__ui_not_staged").text)
    # the data interval in Asia/Shanghai, and no folder for it yet
    assert "2026-11-10 00:00 → 2026-11-10 01:00" in queued and "window=20261110T000000_20261110T010000" in queued


def test_unknown_runs_and_dags_are_404(client):
    assert client.get(f"/dags/{DAG_ID}/runs/manual__nope").status_code == 404
    assert client.get("/dags/some_other_dag").status_code == 404
    assert client.get(f"/dags/{DAG_ID}/windows/window=20200101T000000_20200102T000000").status_code == 404


# -- Data Docs ---------------------------------------------------------------------------------------


def test_data_docs_render_through_the_app_with_static_assets_stored_once(client, world):
    import great_expectations as gx

    root = Path(world.root.removeprefix("file://"))
    shared = root / "_gx_static" / gx.__version__
    assert (shared / "images" / "favicon.ico").is_file()
    assert not list(root.glob(f"{DAG_ID}/*/quality/docs/static"))  # no window keeps its own copy
    assert len(list(root.glob("**/favicon.ico"))) == 1

    page = client.get(_run_url(world, "A")).text
    links = re.findall(r'href="(/staging/[^"]+/quality/docs/validations/[^"]+\.html)"', page)
    assert {"stockout_orders", "stockout_lines"} <= {link.split("/")[7] for link in links}
    doc_url = next(link for link in links if "stockout_lines" in link)
    doc = client.get(doc_url)
    assert doc.status_code == 200 and doc.headers["content-type"].startswith("text/html")
    assert "goods_count" in doc.text and "Back to the window report" in doc.text
    # GX writes data values unescaped: its pages may run no script, and load nothing from a CDN
    csp = doc.headers["content-security-policy"]
    assert "script-src 'none'" in csp and "default-src 'none'" in csp
    assets = re.findall(r'(?:href|src)="([^"]*_gx_static[^"]*)"', doc.text)
    assert assets
    for asset in assets:
        served = client.get(urljoin(doc_url, asset))  # the browser resolves the page's relative link
        assert served.status_code == 200
        assert served.content == (shared / asset.split(f"{gx.__version__}/", 1)[1]).read_bytes()
    css = re.search(r'<link rel="stylesheet" href="([^"]+gx-docs\.css)">', doc.text).group(1)
    assert client.get(css).status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/staging/_gx_static/1.24.1/..%2F..%2F" + DAG_ID + "%2Fwindow=20261101T000000_20261103T000000%2Forders.parquet",
        "/staging/_gx_static/..%2F" + DAG_ID + "/x.html",
        "/staging/" + DAG_ID + "/window=20261101T000000_20261103T000000/quality/docs/..%2F..%2Forders.parquet",
        "/staging/" + DAG_ID + "/window=20261101T000000_20261103T000000/quality/docs/..%2Fsummary.json",
        "/staging/" + DAG_ID + "/..%2F..%2F..%2Fetc/quality/docs/passwd.html",
        "/staging/" + DAG_ID + "/window=20261101T000000_20261103T000000/quality/docs/%2Fetc%2Fpasswd",
        "/dags/" + DAG_ID + "/windows/..%2F..%2F..%2Fetc",
    ],
)
def test_file_routes_serve_nothing_outside_their_folder(client, path):
    assert client.get(path).status_code == 404


# -- a DAG's trend -----------------------------------------------------------------------------------


def test_dag_page_trend_windows_and_runs(client, world):
    response = client.get(f"/dags/{DAG_ID}")
    assert response.status_code == 200 and "<svg" in response.text and "<script" not in response.text
    bars = re.findall(r"<a href=\"(/dags/[^\"]+/windows/[^\"]+)\"><g><title>([^<]+)</title>", response.text)
    assert len(bars) == 3  # one bar per window, oldest first
    assert [b[0].rsplit("/", 1)[1] for b in bars] == [
        "window%3D20261101T000000_20261103T000000",
        "window%3D20261102T000000_20261104T000000",
        "window%3D20261103T000000_20261106T000000",
    ]
    # each bar's segments are the window's outcome counts
    for name in ("A", "B", "C"):
        counts = _report(world.files[name])["outcome"].value_counts()
        key = quote(world.files[name].dir.name, safe="")
        block = response.text.split(f'/windows/{key}"><g>', 1)[1].split("</g></a>", 1)[0]
        for outcome, count in counts.items():
            assert re.search(rf"{outcome}: {count}</title>", block), (name, outcome)
    page = _text(response.text)
    for run_id in world.run_ids.values():
        assert run_id in page
    assert "Recent runs" in page and "the run's manifest" in page


def test_index_lists_the_dag(client):
    page = _text(client.get("/").text)
    assert DAG_ID in page and "wdt.stockout.order.query.trade" in page and "SAL_OUTSTOCK" in page


# -- API catalog -------------------------------------------------------------------------------------


@pytest.fixture
def calls_recorded(world):
    """Known ``calls/`` records in place of what the steps recorded (one row per HTTP call): window A
    had 3 answers and 1 fault, the other windows none."""
    from erpsync.staging import read_parquet, remove_tree

    saved = {
        k: [(p.name, read_parquet(p)) for p in f.calls.iterdir()] if f.calls.exists() else []
        for k, f in world.files.items()
    }
    for f in world.files.values():
        remove_tree(f.calls)
    rows = [(100, "ok", None), (200, "ok", None), (300, "ok", None), (900, "transient", "HTTP 502")]
    part = world.files["A"].calls / "extract-1.parquet"
    write_parquet(
        pd.DataFrame(
            [
                {
                    "system": "wdt",
                    "method": "wdt.stockout.order.query.trade",
                    "started": "2026-11-03T00:00:01+08:00",
                    "ms": ms,
                    "outcome": outcome,
                    "detail": detail,
                    "rows": 50,
                }
                for ms, outcome, detail in rows
            ]
        ),
        part,
    )
    yield part
    part.unlink()
    for key, parts in saved.items():
        for name, frame in parts:
            write_parquet(frame, world.files[key].calls / name)


def test_api_catalog_lists_fields_with_labels_and_figures(client, world, monkeypatch):
    import pendulum

    summaries = [read_json(f.extract_summary) for f in world.files.values()]
    monkeypatch.setattr("erpsync.ui.app._now", lambda: pendulum.datetime(2026, 11, 10, tz="Asia/Shanghai"))
    response = client.get("/apis", params={"days": 30})
    assert response.status_code == 200
    page = _text(response.text)
    for field, label in [
        ("src_tid", "原始单号"),
        ("stockout_no", "出库单号"),
        ("goods_count", "数量"),
        ("FMaterialID", "物料编码"),
        ("FSettleCurrID", "结算币别"),
    ]:
        assert re.search(rf"{field} {label}", page), field
    assert "SubHeadEntity 财务信息" in page and "BD_MATERIAL" in page
    assert f"调用 Calls {sum(s['calls'] for s in summaries)} " in page
    assert f"数据量 Rows moved {sum(s['orders'] for s in summaries)} 订单 orders" in page
    # the clients record every exchange: per-method calls and rows, from calls/*.parquet of each window
    calls = pd.concat(
        [pd.read_parquet(p) for f in world.files.values() for p in sorted(Path(f.calls.path).glob("*.parquet"))]
    )
    wdt = calls[calls["system"] == "wdt"]
    assert len(wdt) == sum(s["calls"] for s in summaries) and (wdt["outcome"] == "ok").all()
    assert int(wdt["rows"].sum()) == sum(s["orders"] for s in summaries)  # each staged order came in one page
    assert re.search(rf"wdt.stockout.order.query.trade {len(wdt)} 0 [\d.]+ ms [\d.]+ ms {int(wdt['rows'].sum())}", page)
    assert page.count("No per-call records yet") == 4  # only the APIs and forms of the two flows not run here
    reports = pd.concat([_report(f) for f in world.files.values()])
    assert f"被拒绝 rejected {(reports['outcome'] == 'rejected').sum()} " in page
    assert "extract task: p50" in page and "load task: p50" in page  # Airflow's task durations


def test_api_page_uses_per_call_records_once_they_exist(client, calls_recorded, monkeypatch):
    import pendulum

    monkeypatch.setattr("erpsync.ui.app._now", lambda: pendulum.datetime(2026, 11, 10, tz="Asia/Shanghai"))
    page = _text(client.get("/apis", params={"days": 30}).text)
    assert "wdt.stockout.order.query.trade 4 1 250 ms 810 ms 200" in page  # calls, errors, p50, p95, rows
    assert "transient HTTP 502: 1" in page


def test_api_figures_come_from_recent_windows(world, calls_recorded):
    """Sums over the windows that ended since the given time (here all three), task durations from Airflow."""
    import pendulum
    from airflow.utils.session import create_session

    from erpsync.ui import catalog
    from erpsync.ui.staged import Staging

    staging = Staging(ObjectStoragePath(world.root))
    since = pendulum.datetime(2026, 10, 1, tz="Asia/Shanghai")
    summaries = [read_json(f.extract_summary) for f in world.files.values()]
    with staging.duck() as duck, create_session() as session:
        source = catalog.source_figures(staging, duck, session, [DAG_ID], since)
        form = catalog.form_figures(staging, duck, session, [DAG_ID], since)
        assert catalog.source_figures(staging, duck, None, [DAG_ID], pendulum.datetime(2026, 11, 5)).windows == 1
    assert source.windows == 3 and source.calls == sum(s["calls"] for s in summaries)
    assert source.orders == sum(s["orders"] for s in summaries)
    assert len(source.per_call_ms) == 3  # estimates: one per window
    assert len(source.task_seconds) >= 3 and len(form.task_seconds) >= 3  # these runs' extract and load tasks
    [recorded] = source.recorded
    assert (recorded["calls"], recorded["errors"], recorded["p50"], recorded["rows"]) == (4, 1, 250.0, 200)
    assert [(e["outcome"], e["detail"], e["n"]) for e in source.recorded_errors] == [("transient", "HTTP 502", 1)]
    assert form.recorded == []  # load records no calls in this test
    reports = pd.concat([_report(f) for f in world.files.values()])
    assert form.outcomes == reports["outcome"].value_counts().to_dict()
    assert {r["outcome"] for r in form.reasons} == {"rejected", "held"}
    assert catalog.percentile([1, 2, 3, 4], 0.5) == 2.5 and catalog.percentile([], 0.5) is None


# -- where is my order? ------------------------------------------------------------------------------


def _orders(files: RunFiles) -> pd.DataFrame:
    return read_parquet(files.orders)


def test_search_gives_an_orders_history_across_windows(client, world):
    a, c = _orders(world.files["A"]), _orders(world.files["C"])
    both = sorted(set(a["order_no"]) & set(c["order_no"]))
    assert both  # C re-reads part of A
    number = both[0]
    response = client.get("/search", params={"q": number})
    assert response.status_code == 200
    page = _text(response.text)
    assert "1 个订单 order(s)" in page
    assert "2026-11-01 00:00 → 2026-11-03 00:00" in page and "2026-11-02 00:00 → 2026-11-04 00:00" in page
    outcome = _report(world.files["A"]).set_index("order_no").loc[number]
    if outcome["kingdee_number"]:
        assert outcome["kingdee_number"] in page  # posted as which Kingdee bill
    # lower case typing finds it too
    assert "1 个订单 order(s)" in _text(client.get("/search", params={"q": number.lower()}).text)


def test_search_finds_quarantined_and_rejected_orders_with_their_reasons(client, world):
    quarantine = read_parquet(world.files["A"].quarantine)
    row = quarantine.iloc[0]
    page = _text(client.get("/search", params={"q": row["order_no"]}).text)
    assert "隔离 quarantined" in page and "goods_count > 0" in page and "0.0000" in page
    rejected = _report(world.files["B"])
    rejected = rejected[rejected["outcome"] == "rejected"].iloc[0]
    page = _text(client.get("/search", params={"q": rejected["order_no"]}).text)
    assert "被拒绝 rejected" in page and _text(rejected["message"]) in page


def test_search_by_original_order_id(client, world):
    lines = read_parquet(world.files["A"].lines)
    line = lines[lines["src_tid"].notna()].iloc[0]
    order = _orders(world.files["A"]).set_index("stockout_id").loc[line["stockout_id"]]
    page = _text(client.get("/search", params={"q": line["src_tid"]}).text)
    assert order["order_no"] in page and "lines.src_tid" in page
    page = _text(client.get("/search", params={"q": order["src_order_no"]}).text)
    assert order["order_no"] in page and "src_order_no" in page


def test_search_by_kingdee_bill_number(client, world):
    report = _report(world.files["A"])
    created = report[report["outcome"] == "created"].iloc[0]
    page = _text(client.get("/search", params={"q": created["kingdee_number"]}).text)
    assert created["order_no"] in page


@pytest.mark.parametrize(
    "hostile",
    [
        "' or 1=1 --",
        "') or ('1'='1",
        "x'; drop table t; --",
        "../../etc/passwd",
        "/etc/passwd",
        "*",
        "%",
        "window=*",
        "read_parquet('/etc/passwd')",
        "\x00CK",
        "<script>alert(1)</script>",
    ],
)
def test_hostile_search_text_is_only_ever_a_value(client, hostile):
    response = client.get("/search", params={"q": hostile})
    assert response.status_code == 200
    assert "No order matches" in response.text
    assert "<script>alert(1)</script>" not in response.text  # shown escaped
    assert client.get("/search", params={"q": hostile, "dag": "../../etc"}).status_code == 200


def test_search_text_is_a_parameter_not_sql(world):
    """Straight at the search function: an always-true SQL fragment matches nothing."""
    from erpsync.ui.context import current_schemes
    from erpsync.ui.search import search
    from erpsync.ui.staged import Staging

    staging = Staging(ObjectStoragePath(world.root))
    schemes, _ = current_schemes(INCLUDE_DIR)
    with staging.duck() as duck:
        assert search(staging, duck, schemes, "' or '1'='1").orders == []
        assert search(staging, duck, schemes, "x' or stockout_id is not null or '1'='").orders == []
        found = search(staging, duck, schemes, _orders(world.files["A"])["order_no"].iloc[0])
    assert len(found.orders) == 1


# -- object storage ----------------------------------------------------------------------------------


def test_pages_read_a_staging_root_on_object_storage(world, auth_manager):
    """The same windows in an fsspec object store (memory://): reports, Data Docs and search read
    through ObjectStoragePath and DuckDB's fsspec registration, not local paths."""
    from airflow.api_fastapi.core_api.security import get_user
    from airflow.sdk.io.store import attach
    from fsspec.implementations.memory import MemoryFileSystem

    from erpsync.ui.app import create_app

    memory = MemoryFileSystem()
    attach(protocol="memory", fs=memory)
    local = Path(world.root.removeprefix("file://"))
    memory.put(str(local), "/bucket/staging", recursive=True)
    app = create_app(root=lambda: ObjectStoragePath("memory://bucket/staging"))
    app.dependency_overrides[get_user] = lambda: _user("viewer")
    client = TestClient(app)

    window = world.files["A"].dir.name
    page = client.get(f"/dags/{DAG_ID}/windows/{quote(window, safe='')}")
    assert page.status_code == 200 and "goods_count > 0" in _text(page.text)
    summary = read_json(world.files["A"].quality / "summary.json")
    assert f"{summary['orders'] - summary['quarantined_orders']} / {summary['orders']}" in _text(page.text)
    doc = re.search(r'href="(/staging/[^"]+validations/[^"]+\.html)"', page.text).group(1)
    served = client.get(doc)
    assert served.status_code == 200 and "goods_count" in served.text
    asset = re.search(r'href="([^"]*_gx_static[^"]*)"', served.text).group(1)
    assert client.get(urljoin(doc, asset)).status_code == 200
    number = _orders(world.files["A"])["order_no"].iloc[0]
    assert "1 个订单 order(s)" in _text(client.get("/search", params={"q": number}).text)
    assert "<svg" in client.get(f"/dags/{DAG_ID}").text


# -- discovery ---------------------------------------------------------------------------------------


def test_airflow_discovers_the_plugin_with_its_app_and_views(tmp_path):
    env = {
        "AIRFLOW_HOME": str(tmp_path),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "PATH": os.environ.get("PATH", os.defpath),
    }
    done = subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "plugins", "--output", "json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    plugins = {p["name"]: p for p in json.loads(done.stdout[done.stdout.index("[") :])}
    plugin = plugins["erpsync_ui"]
    assert plugin["source"].endswith("erpsync_ui.py")
    [app] = plugin["fastapi_apps"]
    assert (app["url_prefix"], app["app"]) == ("/erpsync", "fastapi.applications.FastAPI")
    views = {v["destination"]: v for v in plugin["external_views"]}
    assert set(views) == {"nav", "dag", "dag_run", "task_instance"}
    assert views["dag_run"]["href"] == "/erpsync/dags/{DAG_ID}/runs/{RUN_ID}"
    assert views["task_instance"]["href"] == "/erpsync/dags/{DAG_ID}/runs/{RUN_ID}#{TASK_ID}"
    assert len({v["url_route"] for v in views.values()}) == 4  # a tab shows only with its own url_route
    # the erpsync library beside it is not loaded as plugin files (.airflowignore)
    assert not [p["source"] for p in plugins.values() if "/erpsync/" in p["source"]]
