"""Tests for the MySQL date, cast and string functions of the `_function` evaluator, the `now` API,
and property tests showing that field values stay data (erpsync.mapping.expressions)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from erpsync.mapping.expressions import ExpressionError, compile_expression

NOW = datetime(2026, 11, 29, 23, 59, 59)  # a run's window end, Asia/Shanghai


def ev(source: str, fields: dict[str, str | None] | None = None, now: datetime | None = NOW) -> object:
    values = fields or {}
    return compile_expression(source).evaluate(lambda name: values[name], now=now)


def D(text: str) -> Decimal:
    return Decimal(text)


def check(source: str, expected: object, fields: dict[str, str | None] | None = None) -> None:
    actual = ev(source, fields)
    same = type(actual) is type(expected) and (
        str(actual) == str(expected) if isinstance(expected, Decimal) else actual == expected
    )
    assert same, f"{source!r} gave {actual!r}, expected {expected!r}"


# ------------------------------------------------------------------ functions


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        # DATE_FORMAT
        (
            "date_format('2026-01-05 13:04:09.000120', '%Y|%y|%m|%c|%d|%e|%H|%k|%h|%I|%l|%i|%s|%S|%p|%f')",
            "2026|26|01|1|05|5|13|13|01|01|1|04|09|09|PM|000120",
        ),
        ("date_format('2026-01-05', '%W %a %M %b %j %D %w %%')", "Monday Mon January Jan 005 5th 1 %"),
        ("date_format('2026-01-05 00:30:00', '%h %p %T %r')", "12 AM 00:30:00 12:30:00 AM"),
        ("date_format('2026-01-05', '%q%')", "q%"),  # unknown specifier: the letter; trailing '%' kept
        ("date_format('2026-01-05', '%U %v %x')", "01 02 2026"),
        ("date_format('{{t}}', '%Y%m%d')", "20260301"),
        ("date_format('0000-00-00 00:00:00', '%Y')", None),  # WDT's "no time" is NULL
        ("date_format('', '%Y')", None),
        ("date_format(null, '%Y')", None),
        # STR_TO_DATE
        ("str_to_date('05/01/2026', '%d/%m/%Y')", "2026-01-05"),
        ("str_to_date('05/01/2026 1:02:03 pm', '%d/%m/%Y %h:%i:%s %p')", "2026-01-05 13:02:03"),
        ("str_to_date('2026-1-5 7:8:9', '%Y-%c-%e %k:%i:%s')", "2026-01-05 07:08:09"),
        ("str_to_date('March 7, 26', '%M %e, %y')", "2026-03-07"),
        ("str_to_date('2026-01-05T10:11:12', '%Y-%m-%dT%T')", "2026-01-05 10:11:12"),
        ("str_to_date('2026-01-05 10:11:12.5', '%Y-%m-%d %H:%i:%s.%f')", "2026-01-05 10:11:12.500000"),
        ("str_to_date('2026-01-05 tail', '%Y-%m-%d')", "2026-01-05"),  # trailing text ignored
        ("str_to_date('2026-02-30', '%Y-%m-%d')", None),
        ("str_to_date('2026/01/05', '%Y-%m-%d')", None),
        ("str_to_date('abc', '%Y')", None),
        ("str_to_date('0000-00-00', '%Y-%m-%d')", None),
        ("str_to_date('13:00 pm 2026-01-01', '%h:%i %p %Y-%m-%d')", None),
        ("str_to_date('2026-01-05', '%Y-%m-%d') = '2026-01-05'", True),
        # DATE_ADD, DATE_SUB, INTERVAL
        ("date_add('2026-01-31', interval 1 month)", "2026-02-28"),
        ("date_add('2024-01-31', interval 1 month)", "2024-02-29"),
        ("date_sub('2024-02-29', interval 1 year)", "2023-02-28"),
        ("date_add('2026-01-31', interval 1 quarter)", "2026-04-30"),
        ("date_add('2026-12-31 23:59:59', interval 1 second)", "2027-01-01 00:00:00"),
        ("date_add('2026-01-01', interval 1.5 second)", "2026-01-01 00:00:01.500000"),
        ("date_add('2026-01-01', interval 1.5 day)", "2026-01-03"),  # rounded half-up
        ("date_add('2026-01-01', interval 2 week)", "2026-01-15"),
        ("date_add('2026-01-01', interval 1 hour)", "2026-01-01 01:00:00"),
        ("date_sub('2026-01-01 00:00:00', interval 90 minute)", "2025-12-31 22:30:00"),
        ("date_add('2026-01-01', interval -1 day)", "2025-12-31"),
        ("date_add('2026-01-01', interval '{{n}}' day)", "2026-01-04"),
        ("adddate('2026-01-01', 31)", "2026-02-01"),
        ("subdate('2026-01-01', interval 1 day)", "2025-12-31"),
        ("'2026-01-31' + interval 1 day", "2026-02-01"),
        ("'2026-01-31' - interval 1 + 1 day", "2026-01-29"),
        ("interval 2 hour + '2026-01-31'", "2026-01-31 02:00:00"),
        ("'{{t}}' - interval 1 day", "2026-02-28 10:00:00"),
        ("'9999-12-31' + interval 1 day", None),
        ("'2026-01-01' + interval 99999999999 year", None),
        ("'0000-00-00 00:00:00' + interval 1 day", None),
        ("null + interval 1 day", None),
        ("'2026-01-01' + interval null day", None),
        # NOW and friends read the run's window end
        ("now()", "2026-11-29 23:59:59"),
        ("current_timestamp", "2026-11-29 23:59:59"),
        ("CURRENT_TIMESTAMP()", "2026-11-29 23:59:59"),
        ("localtimestamp", "2026-11-29 23:59:59"),
        ("curdate()", "2026-11-29"),
        ("current_date", "2026-11-29"),
        ("current_date()", "2026-11-29"),
        ("now() + interval 1 second", "2026-11-30 00:00:00"),
        ("date_format(curdate() - interval 1 day, '%Y-%m-%d')", "2026-11-28"),
        ("concat('d=', curdate())", "d=2026-11-29"),
        ("curdate() = '2026-11-29'", True),
        ("curdate() = '2026-11-29 00:00:00'", True),
        ("now() > '2026-11-29'", True),
        ("now() between '2026-11-01' and '2026-12-01'", True),
        ("curdate() in ('2026-11-28', '2026-11-29')", True),
        ("curdate() like '2026-11-%'", True),
        ("'{{t}}' < now()", True),
        # UNIX_TIMESTAMP / FROM_UNIXTIME in Asia/Shanghai
        ("unix_timestamp('1970-01-01 08:00:01')", D("1")),
        ("unix_timestamp('2026-01-01')", D("1767196800")),
        ("unix_timestamp('2026-01-01 00:00:00.25')", D("1767196800.25")),
        ("unix_timestamp('1970-01-01')", D("0")),  # before the epoch in UTC: 0, as MySQL
        ("unix_timestamp()", D("1795967999")),
        ("unix_timestamp('0000-00-00 00:00:00')", None),
        ("from_unixtime(1767196800)", "2026-01-01 00:00:00"),
        ("from_unixtime('1767196800.5')", "2026-01-01 00:00:00.500000"),
        ("from_unixtime(1767196800, '%Y/%m/%d')", "2026/01/01"),
        ("from_unixtime(unix_timestamp('2026-06-01 12:34:56'))", "2026-06-01 12:34:56"),
        ("from_unixtime(-1)", None),
        ("from_unixtime(99999999999)", None),
        # CAST / CONVERT
        ("cast('19.905' as decimal(10,2))", D("19.91")),
        ("cast('19.9' as decimal(10,4))", D("19.9000")),
        ("cast(2.5 as decimal)", D("3")),
        ("cast('-0.4' as decimal(5))", D("0")),
        ("cast('1.9' as signed)", D("1")),  # text: integer prefix, as MySQL
        ("cast(1.5 as signed)", D("2")),  # number: rounded, as MySQL
        ("cast(-1.5 as signed integer)", D("-2")),
        ("cast('7' as unsigned)", D("7")),
        ("cast(true as signed)", D("1")),
        ("cast(12345 as char)", "12345"),
        ("cast(12345 as char(3))", "123"),
        ("cast(1.50 as char) = '1.50'", True),
        ("cast('2026-01-02 03:04:05' as date)", "2026-01-02"),
        ("cast('2026-01-02' as datetime)", "2026-01-02 00:00:00"),
        ("convert('2026-01-02 03:04:05', date)", "2026-01-02"),
        ("convert('12.345', decimal(10, 1))", D("12.3")),
        ("cast(null as signed)", None),
        ("cast('0000-00-00' as date)", None),
        # TRUNCATE, MOD
        ("truncate(1.999, 2)", D("1.99")),
        ("truncate(-1.999, 1)", D("-1.9")),
        ("truncate(1.5, 3)", D("1.500")),
        ("truncate(1299, -2)", D("1200")),
        ("truncate(-1299, -2)", D("-1200")),
        ("truncate(99, -5)", D("0")),
        ("truncate('19.9999', 0)", D("19")),
        ("truncate(null, 1)", None),
        ("mod(7, 3)", D("1")),
        ("mod(-7, 3)", D("-1")),
        ("mod(7, -3)", D("1")),
        ("mod(7.50, 2)", D("1.50")),
        ("mod(7, 0)", None),
        ("7 % 0", None),
        ("7 mod 2.5", D("2.0")),
        ("'{{n}}' % 2", D("1")),
        ("null % 2", None),
        # GREATEST, LEAST
        ("greatest(1, '10', 9)", "10"),
        ("greatest('0.5', 0.25)", "0.5"),
        ("least(3, 1.50, 2)", D("1.50")),
        ("greatest('b', 'a', 'c')", "c"),
        ("least('b', 'B')", "B"),  # case-sensitive text
        ("greatest('10', 'abc')", "abc"),  # not all numeric: text
        ("greatest(1, null)", None),
        ("least(null, 1)", None),
        ("greatest(curdate(), '2026-11-30')", "2026-11-30"),
        ("least(now(), '2026-11-30')", "2026-11-29 23:59:59"),
        # LPAD, RPAD
        ("lpad('5', 3, '0')", "005"),
        ("rpad('ab', 5, 'xy')", "abxyx"),
        ("lpad('旺', 3, '店')", "店店旺"),
        ("lpad('abc', 2, '0')", "ab"),
        ("rpad('abc', 0, '0')", ""),
        ("lpad('a', 3, '')", None),
        ("lpad('abc', 3, '')", "abc"),
        ("lpad('a', -1, '0')", None),
        ("lpad('a', 0, '')", ""),
        ("lpad(null, 3, '0')", None),
        ("lpad(7, 3, 0)", "007"),
        # CONCAT_WS
        ("concat_ws('-', 'a', null, 'b')", "a-b"),
        ("concat_ws('-', 'a', '', 'b')", "a--b"),
        ("concat_ws('-', null)", ""),
        ("concat_ws(null, 'a', 'b')", None),
        ("concat_ws(',', 1.50, true, curdate())", "1.50,1,2026-11-29"),
        # LOCATE, INSTR
        ("locate('b', 'abcb')", D("2")),
        ("locate('b', 'abcb', 3)", D("4")),
        ("locate('b', 'abcb', 5)", D("0")),
        ("locate('b', 'abcb', 0)", D("0")),
        ("locate('z', 'abc')", D("0")),
        ("locate('B', 'abc')", D("0")),  # case-sensitive
        ("locate('', 'abc')", D("1")),
        ("locate('店', '旺店通')", D("2")),
        ("instr('abc', 'c')", D("3")),
        ("instr('abc', 'x')", D("0")),
        ("instr(null, 'x')", None),
    ],
)
def test_functions(source: str, expected: object) -> None:
    check(source, expected, {"t": "2026-03-01 10:00:00", "n": "3"})


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("date_format('2026-02-30', '%Y')", "cannot use '2026-02-30' as a date"),
        ("date_format('yesterday', '%Y')", "cannot use 'yesterday' as a date"),
        ("date_format(20260101, '%Y')", "cannot use number '20260101' as a date"),
        ("date_format('2026-01-01', '%u')", "DATE_FORMAT specifier %u is not supported"),
        ("str_to_date('1', '%U')", "STR_TO_DATE specifier %U is not supported"),
        ("now() + 1", "cannot use non-numeric value '2026-11-29 23:59:59' as a number; use DATE_ADD"),
        ("if(curdate(), 1, 2)", "as a condition"),
        ("cast(1000 as decimal(3,0))", "out of range for DECIMAL(3,0)"),
        ("cast(-1 as unsigned)", "out of range for UNSIGNED"),
        ("cast('9223372036854775808' as signed)", "out of range for SIGNED"),
        ("cast('abc' as decimal(5,2))", "non-numeric value 'abc'"),
        ("'abc' + interval 1 day", "cannot use 'abc' as a date"),
        ("date_add('2026-01-01', interval 'x' day)", "non-numeric value 'x'"),
        ("mod('x', 2)", "non-numeric value 'x'"),
        ("lpad('a', 'x', '0')", "as a whole number"),
        ("rpad('a', 65536, '0')", "RPAD() length 65536 is more than 65535"),
    ],
)
def test_evaluation_errors(source: str, message: str) -> None:
    with pytest.raises(ExpressionError) as info:
        ev(source)
    assert message in str(info.value)
    assert str(info.value).endswith(f"in: {source}")


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            "date_add('2026-01-01', 1)",
            "unexpected token '1' (expected INTERVAL n unit as DATE_ADD()'s second argument) at column 24",
        ),
        ("date_add('2026-01-01', interval 1 fortnight)", "(expected an INTERVAL unit: MICROSECOND"),
        ("date_add('2026-01-01', interval 1 day_hour)", "unexpected token 'day_hour'"),
        ("date_add('2026-01-01', interval 1 day", "unexpected end of expression (expected ')') at column 38"),
        ("date_add('2026-01-01')", "unexpected token ')' (expected ',') at column 22"),
        ("interval 1 day", "unexpected end of expression (expected '+') at column 15"),
        ("1 + interval 1", "unexpected end of expression (expected an INTERVAL unit"),
        ("- interval 1 day", "token 'interval' (INTERVAL goes after '+' or '-' or inside DATE_ADD"),
        ("'2026-01-01' * interval 1 day", "unexpected token 'interval' (INTERVAL goes after '+' or '-'"),
        ("cast(1 as float)", "unexpected token 'float' (expected a type: DECIMAL(p,s)"),
        ("cast(1, signed)", "unexpected token ',' (expected AS) at column 7"),
        ("convert(1 as signed)", "unexpected token 'as' (expected ',') at column 11"),
        ("convert('a' using utf8mb4)", "'using' (CONVERT(x USING charset) is not supported) at column 13"),
        ("cast(1 as decimal(3,4))", "DECIMAL scale 4 exceeds precision 3) at column 21"),
        ("cast(1 as decimal(66,2))", "expected a whole number from 1 to 65) at column 19"),
        ("cast(1 as decimal(10,2.5))", "expected a whole number from 0 to 30) at column 22"),
        ("cast(1 as decimal(10", "unexpected end of expression (expected ')') at column 21"),
        ("cast(1 as signed", "unexpected end of expression (expected ')') at column 17"),
        ("now(3)", "unexpected token '3' (expected ')') at column 5"),
        ("curdate", "unexpected token 'curdate' (column names are not supported"),
        ("unix_timestamp(1, 2)", "UNIX_TIMESTAMP() takes 1 arguments, got 2 at column 1"),
        ("from_unixtime()", "FROM_UNIXTIME() takes 1 to 2 arguments, got 0"),
        ("date_format('2026-01-01')", "DATE_FORMAT() takes 2 arguments, got 1"),
        ("greatest(1)", "GREATEST() takes 2 or more arguments, got 1"),
        ("concat_ws('-')", "CONCAT_WS() takes 2 or more arguments, got 1"),
        ("lpad('a', 2)", "LPAD() takes 3 arguments, got 2"),
        ("locate('a')", "LOCATE() takes 2 to 3 arguments, got 1"),
        ("truncate(1)", "TRUNCATE() takes 2 arguments, got 1"),
        ("7 mod", "unexpected end of expression at column 6"),
        ("% 2", "unexpected token '%' at column 1"),
        ("sysdate()", "unknown function 'sysdate' at column 1"),
    ],
)
def test_compile_errors(source: str, message: str) -> None:
    with pytest.raises(ExpressionError) as info:
        compile_expression(source)
    assert message in str(info.value)
    assert str(info.value).endswith(f"in: {source}")


# ------------------------------------------------------------------ the `now` API


def test_uses_now() -> None:
    for source in (
        "now()",
        "curdate()",
        "current_date",
        "current_timestamp",
        "unix_timestamp()",
        "if(false, now(), 1)",
        "date_format(localtime, '%Y')",
    ):
        assert compile_expression(source).uses_now, source
    for source in ("1", "unix_timestamp('2026-01-01')", "'now()'", "{{now}}"):
        assert not compile_expression(source).uses_now, source


def test_old_call_signature_still_works_without_now() -> None:
    expression = compile_expression("date_format('{{t}}', '%Y')")
    assert expression.evaluate(lambda _: "2026-01-02 03:04:05") == "2026"
    assert compile_expression("1 + 1").evaluate(lambda _: None) == 2


@pytest.mark.parametrize(
    ("source", "named"),
    [
        ("now()", "NOW()"),
        ("CURDATE()", "CURDATE()"),
        ("current_date", "CURRENT_DATE"),
        ("unix_timestamp()", "UNIX_TIMESTAMP()"),
        ("if(1, 'x', now())", "NOW()"),
    ],
)
def test_now_required_when_used(source: str, named: str) -> None:
    with pytest.raises(ExpressionError) as info:
        compile_expression(source).evaluate(lambda _: None)
    expected = f"{named} needs the run's time: call evaluate(resolve, now=window_end) in: {source}"
    assert str(info.value) == expected


def test_now_aware_is_converted_to_shanghai_and_whole_seconds() -> None:
    now, curdate = compile_expression("now()"), compile_expression("curdate()")
    utc_4pm = datetime(2026, 1, 1, 16, 0, tzinfo=UTC)
    assert now.evaluate(lambda _: None, now=utc_4pm) == "2026-01-02 00:00:00"
    assert curdate.evaluate(lambda _: None, now=utc_4pm) == "2026-01-02"
    plus_one = timezone(timedelta(hours=1))
    assert now.evaluate(lambda _: None, now=datetime(2026, 1, 1, 1, tzinfo=plus_one)) == "2026-01-01 08:00:00"
    assert now.evaluate(lambda _: None, now=datetime(2026, 1, 1, 0, 0, 0, 999999)) == "2026-01-01 00:00:00"


def test_now_must_be_a_datetime() -> None:
    with pytest.raises(TypeError, match="now must be a datetime"):
        compile_expression("now()").evaluate(lambda _: None, now="2026-01-01")  # type: ignore[arg-type]


def test_now_is_keyword_only_and_reruns_are_identical() -> None:
    expression = compile_expression("concat(curdate(), ' ', unix_timestamp())")
    with pytest.raises(TypeError):
        expression.evaluate(lambda _: None, NOW)  # type: ignore[call-arg]  # now given positionally on purpose
    assert expression.evaluate(lambda _: None, now=NOW) == expression.evaluate(lambda _: None, now=NOW)


def test_results_are_plain_values() -> None:
    for source in (
        "now()",
        "curdate()",
        "str_to_date('2026-01-01', '%Y-%m-%d')",
        "'2026-01-01' + interval 1 day",
        "cast('2026-01-01' as date)",
        "from_unixtime(0)",
        "greatest(now(), curdate())",
    ):
        assert type(ev(source)) is str, source


# ------------------------------------------------------------------ property tests: values stay data

SPECIAL = [
    "",
    " ",
    "'",
    "''",
    '"',
    "\\",
    "\\'",
    "{{",
    "}}",
    "{{x}}",
    "{{ x }}",
    "' or 1=1 --",
    "x' or '1'='1",
    "1) or (1",
    "a%",
    "_",
    "NULL",
    "null",
    "TRUE",
    "now()",
    "interval 1 day",
    "case when 1 then 2 end",
    "0",
    "0.0000",
    "-0",
    "+5",
    "1e3",
    "19.9000",
    "99999999999999999999999999999999999999",
    "2026-01-31",
    "2026-02-30",
    "2026-01-31 10:11:12",
    "0000-00-00 00:00:00",
    "0000-00-00",
    "9999-12-31",
    "%Y-%m-%d",
    "旺店通",
    "\x00",
    "\n",
]
DECIMALS = st.decimals(allow_nan=False, allow_infinity=False, places=4, min_value=-(10**12), max_value=10**12)
DATES = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59))
VALUES = st.one_of(
    st.none(),
    st.text(max_size=30),
    st.sampled_from(SPECIAL),
    DECIMALS.map(lambda d: format(d, "f")),
    DATES.map(lambda d: d.strftime("%Y-%m-%d %H:%M:%S").rjust(19, "0")),
    DATES.map(lambda d: d.strftime("%Y-%m-%d").rjust(10, "0")),
)

SEED_LIKE = [
    "case '{{x}}' when '0' then true else false end",
    "case when '{{x}}' = 'vip' then 'free' else 'paid' end",
    "if({{x}} is null, 'none', concat('[', {{x}}, ']'))",
    "ifnull({{x}}, 'd')",
    "coalesce({{x}}, '{{y}}', 'z')",
    "round('{{x}}', 2)",
    "'{{x}}' * {{y}}",
    "{{x}} in ('a', '0', null)",
    "'{{x}}' between '{{y}}' and 'z'",
    "'{{x}}' like '{{y}}'",
    "upper(substring('{{x}}', 2, 3))",
    "replace('{{x}}', '{{y}}', '-')",
    "date_format('{{x}}', '%Y-%m-%d %H:%i:%s')",
    "str_to_date('{{x}}', '{{y}}')",
    "date_add('{{x}}', interval {{y}} day)",
    "'{{x}}' - interval 1 month",
    "unix_timestamp('{{x}}')",
    "from_unixtime({{x}}, '%Y')",
    "cast('{{x}}' as decimal(12,2))",
    "cast({{x}} as signed)",
    "convert('{{x}}', datetime)",
    "truncate({{x}}, {{y}})",
    "mod('{{x}}', {{y}})",
    "'{{x}}' % 3",
    "greatest('{{x}}', {{y}}, curdate())",
    "least({{x}}, '{{y}}')",
    "lpad('{{x}}', {{y}}, '*')",
    "concat_ws({{y}}, '{{x}}', {{x}})",
    "locate('{{y}}', '{{x}}', {{y}})",
    "instr({{x}}, '{{y}}')",
    "now() > '{{x}}'",
]
COMPILED = [compile_expression(source) for source in SEED_LIKE]


@settings(max_examples=200, deadline=None, database=None)
@given(x=VALUES, y=VALUES)
def test_any_field_value_raises_only_expression_error(x: str | None, y: str | None) -> None:
    fields = {"x": x, "y": y}
    for expression in COMPILED:
        try:
            result = expression.evaluate(lambda name: fields[name], now=NOW)
        except ExpressionError:
            continue
        assert result is None or type(result) in (bool, Decimal, str), (expression, result)


@settings(max_examples=200, deadline=None, database=None)
@given(x=VALUES)
def test_field_value_never_changes_the_structure(x: str | None) -> None:
    text = x or ""

    def run(source: str) -> object:
        return compile_expression(source).evaluate(lambda _: x, now=NOW)

    assert run("'{{x}}' = 'a'") is (text == "a")
    assert run("'{{x}}' <=> 'a' or 'b' = 'c'") is (text == "a")
    assert run("concat('[', '{{x}}', ']')") == f"[{text}]"
    assert run("char_length('{{x}}')") == len(text)
    assert run("'{{x}}' like 'a%'") is text.startswith("a")
    assert run("lpad('{{x}}', 5, '*')") == text.rjust(5, "*")[:5]
    assert run("locate('{{x}}', concat('{{x}}', 'z'))") == 1
    assert run("instr(concat('z', '{{x}}'), '{{x}}')") == ("z" + text).find(text) + 1
    assert run("cast('{{x}}' as char) = concat('{{x}}')") is True
    assert run("concat_ws('|', 'a', {{x}}, 'b')") == ("a|b" if x is None else f"a|{x}|b")
    branch = run("case when '{{x}}' = 'vip' then 'free' else 'paid' end")
    assert branch == ("free" if text == "vip" else "paid")
    result = run("str_to_date('{{x}}', '%Y-%m-%d')")
    assert result is None or re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", str(result))
    assert compile_expression("'{{x}}' = 'a'").placeholders == ("x",)


@settings(max_examples=200, deadline=None, database=None)
@given(moment=DATES, months=st.integers(min_value=-1200, max_value=1200))
def test_date_round_trips(moment: datetime, months: int) -> None:
    text = moment.strftime("%Y-%m-%d %H:%M:%S").rjust(19, "0")
    fields = {"t": text, "n": str(months)}

    def run(source: str) -> object:
        return compile_expression(source).evaluate(lambda name: fields[name], now=NOW)

    assert run("date_format('{{t}}', '%Y-%m-%d %H:%i:%s')") == text
    assert run("str_to_date(date_format('{{t}}', '%d.%m.%Y %r'), '%d.%m.%Y %r')") == text
    shifted = run("'{{t}}' + interval {{n}} month")
    if shifted is not None:
        assert str(shifted)[8:10] <= text[8:10]  # the day is kept or clamped to the month's end
        assert str(shifted)[11:] == text[11:]
    if datetime(1970, 1, 2) <= moment < datetime(3001, 1, 1):  # FROM_UNIXTIME's range
        assert run("from_unixtime(unix_timestamp('{{t}}'))") == text
