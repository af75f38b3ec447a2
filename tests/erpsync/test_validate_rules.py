"""The vectorised rules against Great Expectations itself: for every expectation of the shipped suites,
on the same data, GX and the compiled check find the same rows and the same GX result (SUMMARY).

GX runs the way validate ran it before the rules were compiled: one pandas frame with the text as
staged and the suite's decimal columns as exact ``Decimal`` (null when the text is no finite number).
The compiled checks read the same rows staged as Parquet in small row groups, so every rule is also
checked across row-group boundaries (a value repeated in two groups, row numbers that run on).
"""

from __future__ import annotations

import json
import math
import os
import random
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from airflow.sdk import ObjectStoragePath

from erpsync.scheme import INCLUDE_DIR, SourceKeys
from erpsync.steps.rules import ROW, Suite, ValidationSetupError, load_suite, rule_result, scan, suite_result

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

SUITE_FILES = sorted((INCLUDE_DIR / "expectations").glob("*.json"))
KEYS = SourceKeys("stockout_id", "order_no", "rec_id")
ROWS = 64
GROUP_ROWS = 5  # small row groups: rules meet values in other groups
COMPLETE_ONLY = {"unexpected_list", "unexpected_index_list", "unexpected_index_query"}
GOOD_NUMBERS = ["1.0000", "2.5", " 19.9000 ", "1e2", "0.01", "3"]
# null, not numbers, not finite, the bounds' edges and below, and many distinct failing values
BAD_NUMBERS = [None, "two", "NaN", "-Infinity", "", "0", "0.0000", "-0", "-1.0000", "-0.01"] + [
    f"-{n}.5" for n in range(30)
]


def _reference_decimal(value: Any) -> Decimal | None:
    """How validate typed a decimal column for GX: the stripped text as a Decimal, null otherwise."""
    if value is None:
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _columns(suite: Suite) -> list[str]:
    return list(dict.fromkeys([*suite.index_columns, *(r.column for r in suite.rules)]))


def _frame(suite: Suite, kind: str, seed: int) -> dict[str, list[str | None]]:
    """Staged text for every column the suite reads: ``failing`` breaks every rule of the suite
    (nulls, repeats, text that is no number, numbers on and below the bounds), ``passing`` none."""
    rng = random.Random(f"{suite.name}-{kind}-{seed}")
    rows = 0 if kind == "empty" else ROWS
    frame: dict[str, list[str | None]] = {}
    for column in _columns(suite):
        if column in suite.decimal_columns:
            pool = GOOD_NUMBERS + (BAD_NUMBERS if kind == "failing" else [])
            frame[column] = [rng.choice(pool) for _ in range(rows)]
        elif kind == "failing":  # repeats (about 30 distinct values, each at least twice) and nulls
            frame[column] = [
                None if rng.random() < 0.15 else f"{column}-{rng.randrange(rows // 2)}" for _ in range(rows)
            ]
        else:
            frame[column] = [f"{column}-{n}" for n in range(rows)]
    return frame


def _stage(frame: dict[str, list[str | None]], path: Path) -> ObjectStoragePath:
    table = pa.table({c: pa.array(v, pa.string()) for c, v in frame.items()})
    pq.write_table(table, path, row_group_size=GROUP_ROWS)
    return ObjectStoragePath(path.as_uri())


@pytest.fixture(scope="module")
def gx_context():
    import logging

    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context, context.data_sources.add_pandas(name="reference")


def _gx_results(gx_context, suite: Suite, frame: dict[str, list[str | None]], name: str) -> dict[tuple, Any]:
    """GX's own results on the frame (COMPLETE: every failing row), by (type, column). Read as GX
    returns them, not serialised: GX's JSON conversion inspects the stack for every Decimal."""
    import great_expectations as gx
    import pandas as pd
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    context, source = gx_context
    spec = json.loads(suite.path.read_text(encoding="utf-8"))
    gx_suite = context.suites.add(
        gx.ExpectationSuite(
            name=name,
            expectations=[ExpectationConfiguration(type=e["type"], kwargs=e["kwargs"]) for e in spec["expectations"]],
        )
    )
    typed: dict[str, list[Any]] = {ROW: list(range(len(next(iter(frame.values())))))}
    for column, values in frame.items():
        typed[column] = [_reference_decimal(v) for v in values] if column in suite.decimal_columns else values
    batch = source.add_dataframe_asset(name=name).add_batch_definition_whole_dataframe("all")
    outcome = batch.get_batch(batch_parameters={"dataframe": pd.DataFrame(typed)}).validate(
        gx_suite,
        result_format={"result_format": "COMPLETE", "unexpected_index_column_names": [ROW, *suite.index_columns]},
    )
    found = {}
    for result in outcome.results:
        config = result.expectation_config
        assert not result.exception_info["raised_exception"], result.exception_info
        found[(config.type, config.kwargs["column"])] = result
    return found


def _normal(value: Any) -> Any:
    """Numbers compared as exact decimals (the rules write a Decimal as its text, GX's JSON a float);
    GX's pandas nulls and numpy integers as its JSON has them (null, int)."""
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (float, np.floating)) and math.isnan(value):
        return None
    if isinstance(value, Decimal):
        return value
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normal(v) for v in value]
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, str):
        number = _reference_decimal(value)
        return number if number is not None and value.strip() == value else value
    return value


@pytest.mark.parametrize("kind", ["failing", "passing", "empty"])
@pytest.mark.parametrize("suite_file", SUITE_FILES, ids=[p.stem for p in SUITE_FILES])
def test_every_shipped_expectation_agrees_with_gx(suite_file, kind, gx_context, tmp_path):
    suite = load_suite(suite_file)
    frame = _frame(suite, kind, seed=1)
    mine = scan(_stage(frame, tmp_path / "staged.parquet"), suite, KEYS)
    theirs = _gx_results(gx_context, suite, frame, f"{suite.name}_{kind}")
    assert len(theirs) == len(suite.rules) == len(mine.tallies)  # (type, column) names each rule once
    assert mine.rows == (0 if kind == "empty" else ROWS)
    for rule, tally in zip(suite.rules, mine.tallies, strict=True):
        expected = theirs[(rule.type, rule.column)]
        got = rule_result(rule, tally, suite, "staging-x")
        where = f"{suite.name}: {rule.type} on {rule.column}"
        assert got["success"] == expected.success, where
        # the SUMMARY result, key for key; COMPLETE only adds the full lists
        assert set(expected.result) - set(got["result"]) <= COMPLETE_ONLY, where
        summary = {k: v for k, v in expected.result.items() if k not in COMPLETE_ONLY}
        assert _normal(got["result"]) == _normal(summary), where
        # every failing row, with its value as staged: what the quarantine lists
        failing = [row[ROW] for row in expected.result.get("unexpected_index_list", [])]
        assert [b.row for b in tally.broken] == failing, where
        assert [b.value for b in tally.broken] == [frame[rule.column][r] for r in failing], where
        if kind == "failing":
            assert tally.unexpected_count > 0, f"{where}: the failing data breaks no rule"
            assert tally.unexpected_count == expected.result["unexpected_count"]
        else:
            assert got["success"], where


def test_gx_reads_and_renders_the_results(tmp_path):
    """The results validate writes are GX's own form: GX loads them and renders its Data Docs page."""
    from great_expectations.core.expectation_validation_result import expectationSuiteValidationResultSchema
    from great_expectations.render.renderer import ValidationResultsPageRenderer
    from great_expectations.render.view import DefaultJinjaPageView

    suite = load_suite(INCLUDE_DIR / "expectations" / "stockout_lines.json")
    found = scan(_stage(_frame(suite, "failing", seed=2), tmp_path / "lines.parquet"), suite, KEYS)
    meta = {
        "great_expectations_version": "1.24.1",
        "run_id": {"run_name": "test", "run_time": "2026-11-02T00:00:00+00:00"},
        "validation_time": "2026-11-02T00:00:00+00:00",
        "batch_spec": {"path": "lines.parquet"},
    }
    results = [
        rule_result(r, t, suite, "staging-stockout_lines") for r, t in zip(suite.rules, found.tallies, strict=True)
    ]
    text = json.dumps(suite_result(suite, results, meta))  # as written to quality/<suite>.json
    loaded = expectationSuiteValidationResultSchema.load(json.loads(text))
    assert loaded.statistics["unsuccessful_expectations"] == sum(not r["success"] for r in results) > 0
    page = DefaultJinjaPageView().render(ValidationResultsPageRenderer().render(loaded))
    assert "stockout_lines" in page and "goods_count" in page


def _suite_file(tmp_path: Path, expectations: list[dict], decimal_columns: list[str] | None = None) -> Path:
    path = tmp_path / "custom_lines.json"
    meta = {"index_columns": ["rec_id"], "decimal_columns": decimal_columns or ["goods_count"]}
    path.write_text(json.dumps({"name": "custom_lines", "meta": meta, "expectations": expectations}))
    return path


@pytest.mark.parametrize(
    ("expectation", "message"),
    [
        (
            {"type": "expect_column_values_to_match_regex", "kwargs": {"column": "spec_no", "regex": "^GT"}},
            "expect_column_values_to_match_regex is not supported",
        ),
        (
            {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "spec_no", "mostly": 0.9}},
            "argument mostly is not supported",
        ),
        (
            {"type": "expect_column_values_to_be_between", "kwargs": {"column": "spec_no", "min_value": 0}},
            "the column must be one of meta.decimal_columns",
        ),
        (
            {"type": "expect_column_values_to_be_between", "kwargs": {"column": "goods_count"}},
            "min_value and max_value cannot both be null",
        ),
        (
            {"type": "expect_column_values_to_be_between", "kwargs": {"column": "goods_count", "min_value": "0"}},
            "min_value must be a number",
        ),
        (
            {
                "type": "expect_column_values_to_be_between",
                "kwargs": {"column": "goods_count", "min_value": 2, "max_value": 1},
            },
            "min_value is greater than max_value",
        ),
    ],
)
def test_a_rule_that_cannot_be_run_exactly_fails_naming_the_suite_and_the_expectation(tmp_path, expectation, message):
    first = {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "rec_id"}}
    with pytest.raises(ValidationSetupError) as raised:
        load_suite(_suite_file(tmp_path, [first, expectation]))
    text = str(raised.value)
    assert "suite custom_lines" in text and "expectation 2" in text and message in text


def test_a_column_the_staged_file_lacks_fails_the_suite(tmp_path):
    suite = load_suite(
        _suite_file(tmp_path, [{"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "batch_no"}}])
    )
    staged = _stage({"rec_id": ["1"], "goods_count": ["1"]}, tmp_path / "lines.parquet")
    with pytest.raises(ValidationSetupError, match=r"suite custom_lines: lines.parquet has no column batch_no"):
        scan(staged, suite, KEYS)


def test_bounds_are_exact_decimals_as_written(tmp_path):
    """0.1 in the suite is the decimal 0.1, not the float just above it (GX would compare with that float)."""
    suite = load_suite(
        _suite_file(
            tmp_path,
            [{"type": "expect_column_values_to_be_between", "kwargs": {"column": "goods_count", "min_value": 0.1}}],
        )
    )
    assert suite.rules[0].min_value == Decimal("0.1")
    staged = _stage({"rec_id": ["1", "2", "3"], "goods_count": ["0.1", "0.10", "0.0999"]}, tmp_path / "lines.parquet")
    (tally,) = scan(staged, suite, KEYS).tallies
    assert [b.value for b in tally.broken] == ["0.0999"]
