"""Scheme files are read strictly: unknown keys, changed codes and bad rows fail with file:line."""

import json
import shutil
from pathlib import Path

import jsonschema
import pytest
import yaml

from erpsync.cli import main
from erpsync.mapping.compile import compile_mapping
from erpsync.scheme import INCLUDE_DIR, SCHEMA_FILE, SchemeError, load_scheme, load_schemes, scheme_json_schema
from erpsync.yaml_text import read_yaml_text

SCHEME = INCLUDE_DIR / "schemes" / "sales_outstock.yaml"


@pytest.fixture
def include(tmp_path: Path) -> Path:
    shutil.copytree(INCLUDE_DIR, tmp_path / "include")
    return tmp_path / "include"


def _edit(include: Path, old: str, new: str) -> tuple[Path, int]:
    """Replace ``old`` once in the scheme's text; returns the path and the line the change is on."""
    path = include / "schemes" / "sales_outstock.yaml"
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new), encoding="utf-8")
    return path, text[: text.index(old)].count("\n") + 1


def _error(path: Path, include: Path) -> str:
    with pytest.raises(SchemeError) as caught:
        compile_mapping(load_scheme(path, include))
    return str(caught.value)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "  retry_delay_seconds: 60",
            "  retry_delay_second: 60",
            "settings.retry_delay_second: unknown key; did you mean 'retry_delay_seconds'?",
        ),
        (
            "  max_active_runs: 1",
            "  max_active_run: 1",
            "settings.max_active_run: unknown key; did you mean 'max_active_runs'?",
        ),
        (
            "    chunk_size: 100",
            "    chunk_sise: 100",
            "settings.load.chunk_sise: unknown key; did you mean 'chunk_size'?",
        ),
        (
            "label: 销售组织, type: string",
            "label: 销售组织, typ: string",
            "target.mapping[3].typ: unknown key; did you mean 'type'?",
        ),
        ("  retries: 3", "  retries: three", "settings.retries: Input should be a valid integer"),
        ("  lookback: 2h", "  lookback: 2 hours", "source.lookback: expected a duration such as 30m, 2h or 2d"),
        ("  by_modified: true", "  by_modified: true\n  by_modified: false", "source.by_modified: written twice"),
        ("  system: wdt", "  system: wdt2", "source.system: Input should be 'wdt'"),
        ("timezone: Asia/Shanghai}", "timezone: Asia/Shanghia}", "settings.schedule.timezone: not a time zone"),
        (
            "aliases: {num: goods_count}",
            "aliases: {num: qty}",
            "target.collections.batch_details.aliases.num: 'qty' is not a line field",
        ),
        ('value: "{{order_no}}"}', 'value: "{{order_nr}}"}', "{{order_nr}} is not a response field"),
        ('value: "{{batch_details.spec_no}}"}', 'value: "{{batch_details.sku}}"}', "'sku' is not a line field"),
        ("when '0' then true else false end", "when '0' then true else end", "unexpected"),
        (
            "type: string, value: PRE001}",
            "type: object, value: PRE001}",
            "FSettleCurrID is a basedata field, not an entity",
        ),
        (
            'value: "{{consign_time}}"}',
            'value: "{{goods_total_amount}}"}',
            "{{goods_total_amount}} is a decimal field; FDate takes a date",
        ),
        (
            'label: 提交并审核, type: bool, value: "false"}',
            'label: 提交并审核, type: bool, value: "nope"}',
            "expected true or false",
        ),
    ],
)
def test_each_problem_names_file_line_and_key(include, old, new, message):
    path, line = _edit(include, old, new)
    error = _error(path, include)
    assert message in error
    assert f"{path}:{line + new.count(chr(10))}: " in error  # the line the change is on (a duplicate: the second)
    assert error.count("\n") == 0 or "missing" in error  # one problem, one line


def test_a_code_is_kept_as_written_never_read_as_a_number(include):
    """YAML 1.1 reads unquoted 03 as 3, 010 as 8 and 1.50 as 1.5; a scheme never does."""
    path, _ = _edit(include, 'type: string, value: "03"}', "type: string, value: 03}")
    text = path.read_text(encoding="utf-8")
    for written, kept in (("03", "03"), ("010", "010"), ("0x1F", "0x1F"), ("1.50", "1.50"), ("no", "no")):
        path.write_text(text.replace("type: string, value: 03}", f"type: string, value: {written}}}"), encoding="utf-8")
        assert yaml.safe_load(f"v: {written}")["v"] != kept  # what plain YAML would have done
        scheme = load_scheme(path, include)
        row = next(r for r in scheme.target.mapping if r.field.endswith("FAuxPropId"))
        assert row.value == kept
        line = {"rec_id": "1", "spec_no": "A", "goods_count": "1", "sell_price": "1"}
        bill = compile_mapping(scheme).build(
            {"stockout_id": "1", "order_no": "CK1", "consign_time": "2026-11-01 00:00:00"}, [line]
        )
        assert bill.model["FEntity"][0]["FAuxPropId"] == {"FNumber": kept}


def test_numbers_and_flags_written_as_text_are_read_where_a_setting_is_one(include):
    path, _ = _edit(include, "  retries: 3", '  retries: "3"')
    _edit(include, "  enabled: true", "  enabled: yes")
    scheme = load_scheme(path, include)
    assert scheme.settings.retries == 3 and scheme.settings.enabled is True


def test_every_problem_is_reported_at_once(include):
    _edit(include, "  retries: 3", "  retry: 3")
    path, _ = _edit(include, "    concurrency: 4", "    concurrency: 0")
    with pytest.raises(SchemeError) as caught:
        load_scheme(path, include)
    problems = {p.where: p for p in caught.value.problems}
    assert set(problems) == {"settings.retries", "settings.retry", "settings.load.concurrency"}
    assert problems["settings.retries"].message == "missing"
    assert [p.line for p in caught.value.problems] == sorted(p.line for p in caught.value.problems)


def test_every_bad_mapping_row_is_reported_at_once(include):
    _edit(include, 'value: "{{order_no}}"}', 'value: "{{order_nr}}"}')
    path, _ = _edit(include, 'value: "{{batch_details.spec_no}}"}', 'value: "{{batch_details.sku}}"}')
    with pytest.raises(SchemeError) as caught:
        compile_mapping(load_scheme(path, include))
    assert [p.where.split(" ")[0] for p in caught.value.problems] == ["target.mapping[1]", "target.mapping[17]"]


def test_a_yaml_syntax_error_names_the_line(include):
    path, line = _edit(include, "dag_id: wdt_kingdee_sales_outstock", "dag_id: [wdt_kingdee_sales_outstock")
    with pytest.raises(SchemeError, match=rf"sales_outstock.yaml:{line + 1}: not valid YAML"):
        load_scheme(path, include)


def test_a_missing_map_value_names_the_map_file_and_line(include):
    (include / "maps").mkdir(exist_ok=True)
    (include / "maps" / "shop_org.csv").write_text("shop_no,sale_org\nFENXIAO004,100\nFENXIAO005\n", encoding="utf-8")
    path, _ = _edit(
        include,
        'label: 销售组织, type: string, value: "{{shop_no}}"}',
        'label: 销售组织, type: string, value: "{{maps.shop_org.sale_org}}"}',
    )
    with pytest.raises(SchemeError, match=r"shop_org.csv:3: 1 cells, the header has 2"):
        compile_mapping(load_scheme(path, include))


def test_preconditions_name_schemes_and_dag_ids_are_unique(include):
    path, line = _edit(include, "  preconditions: []", "  preconditions: [wdt_kingdee_materials]")
    with pytest.raises(SchemeError) as caught:
        load_schemes(include)
    assert f"{path}:{line}: settings.preconditions[0]: 'wdt_kingdee_materials' is not the dag_id of a scheme" in str(
        caught.value
    )
    shutil.copy(path, include / "schemes" / "copy.yaml")
    path.write_text(path.read_text(encoding="utf-8").replace("[wdt_kingdee_materials]", "[]"), encoding="utf-8")
    with pytest.raises(SchemeError, match="is also the dag_id of"):
        load_schemes(include)


def test_the_published_json_schema_is_current_and_accepts_the_scheme():
    published = json.loads((INCLUDE_DIR / "schemes" / SCHEMA_FILE).read_text(encoding="utf-8"))
    assert published == scheme_json_schema(), "run: python -m erpsync schema"
    jsonschema.validate(yaml.safe_load(SCHEME.read_text(encoding="utf-8")), published)
    bad = yaml.safe_load(SCHEME.read_text(encoding="utf-8"))
    bad["settings"]["retry_delay_second"] = 60
    with pytest.raises(jsonschema.ValidationError, match="retry_delay_second"):
        jsonschema.validate(bad, published)


def test_the_reader_keeps_text_and_lines(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text("a: 03\nb:\n  - 010\n  - ~\nc: 'x'\n", encoding="utf-8")
    text = read_yaml_text(path)
    assert text.data == {"a": "03", "b": ["010", None], "c": "x"}
    assert text.line_of(("b", 1)) == 4 and text.line_of(("b", 1, "deeper")) == 4 and text.line_of(("zz",)) == 1


def test_validate_command_prints_every_problem_and_exits_1(include, capsys):
    assert main(["--include", str(include), "validate"]) == 0
    assert "3 schemes checked, 0 problems" in capsys.readouterr().out
    path, line = _edit(include, "  retry_delay_seconds: 60", "  retry_delay_second: 60")
    _edit(include, 'value: "{{order_no}}"}', 'value: "{{order_nr}}"}')
    assert main(["--include", str(include), "validate", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"{path}:{line}: settings.retry_delay_second: unknown key" in out
    assert "2 problems" not in out  # the model is checked first: the mapping is not compiled from a bad file
    assert "1 schemes checked, 1 problems" in out


def test_schema_command_checks_the_published_file(include, capsys):
    assert main(["--include", str(include), "schema", "--check"]) == 0
    (include / "schemes" / SCHEMA_FILE).write_text("{}", encoding="utf-8")
    assert main(["--include", str(include), "schema", "--check"]) == 1
    assert main(["--include", str(include), "schema"]) == 0
    assert main(["--include", str(include), "schema", "--check"]) == 0


def test_validate_looks_base_data_constants_up_in_kingdee(include, kingdee_emulator, monkeypatch, capsys):
    from tests.conftest import KINGDEE

    monkeypatch.setenv(
        "AIRFLOW_CONN_KINGDEE_CHECK",
        json.dumps(
            {
                "conn_type": "generic",
                "host": kingdee_emulator.url,
                "login": KINGDEE["username"],
                "password": KINGDEE["app_secret"],
                "extra": {"acct_id": KINGDEE["acct_id"], "app_id": KINGDEE["app_id"]},
            }
        ),
    )
    assert main(["--include", str(include), "validate", "--kingdee", "kingdee_check"]) == 0
    path, line = _edit(include, "type: string, value: BM000175}", "type: string, value: BM999999}")
    assert main(["--include", str(include), "validate", "--kingdee", "kingdee_check"]) == 1
    out = capsys.readouterr().out
    assert (
        f"{path}:{line}: target.mapping[5] (FSaleDeptID 销售部门): Kingdee has no BD_Department numbered 'BM999999'"
        in out
    )
