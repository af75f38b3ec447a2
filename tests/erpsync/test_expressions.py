"""Tests for the `_function` expression evaluator (erpsync.mapping.expressions)."""

from __future__ import annotations

import pickle
from decimal import Decimal
from typing import Any

import pytest

from erpsync.mapping.expressions import Expression, ExpressionError, Resolver, compile_expression

FISFREE = "case '{{batch_details.sell_price}}' when '0' then true else false end"  # seed row FIsFree


def ev(source: str, fields: dict[str, str | None] | None = None) -> object:
    values = fields or {}
    return compile_expression(source).evaluate(lambda name: values[name])


def D(text: str) -> Decimal:
    return Decimal(text)


def same(actual: object, expected: object) -> bool:
    """Equal value *and* type (True == Decimal(1) must not pass), Decimal scale included."""
    if type(actual) is not type(expected):
        return False
    if isinstance(expected, Decimal):
        return str(actual) == str(expected)
    return actual == expected


def check(source: str, expected: object, fields: dict[str, str | None] | None = None) -> None:
    actual = ev(source, fields)
    assert same(actual, expected), f"{source!r} gave {actual!r}, expected {expected!r}"


# ------------------------------------------------------------------ the seed's FIsFree row


@pytest.mark.parametrize(
    ("sell_price", "expected"),
    [("0.0000", True), ("0", True), ("0.00", True), ("19.9000", False), (None, False), ("", False)],
)
def test_seed_fisfree(sell_price: str | None, expected: bool) -> None:
    expression = compile_expression(FISFREE)
    assert expression.placeholders == ("batch_details.sell_price",)
    result = expression.evaluate(lambda name: {"batch_details.sell_price": sell_price}[name])
    assert result is expected


def test_seed_fisfree_uppercase_keywords_and_spaces_in_braces() -> None:
    source = "CASE '{{ batch_details.sell_price }}' WHEN '0' THEN TRUE ELSE FALSE END"
    assert compile_expression(source).evaluate(lambda _: "0.0000") is True


# ------------------------------------------------------------------ public surface


def test_expression_surface() -> None:
    expression = compile_expression("concat({{b}}, '{{a}}-{{ b }}', {{c.d}}, '{{a}}')")
    assert isinstance(expression, Expression)
    assert expression.source == "concat({{b}}, '{{a}}-{{ b }}', {{c.d}}, '{{a}}')"
    assert expression.placeholders == ("b", "a", "c.d")
    assert "concat" in repr(expression)
    assert compile_expression("1 + 2").placeholders == ()


def test_resolver_called_once_per_name() -> None:
    calls: list[str] = []

    def resolve(name: str) -> str:
        calls.append(name)
        return "5"

    assert compile_expression("{{x}} + '{{x}}' + {{y}}").evaluate(resolve) == 15
    assert calls == ["x", "y"]


def test_resolver_may_return_numbers_but_not_other_types() -> None:
    lenient: Any = lambda value: lambda _: value  # noqa: E731 - the resolver contract says text
    assert compile_expression("{{x}} * 2").evaluate(lenient(Decimal("1.5"))) == D("3.0")
    assert compile_expression("{{x}} = 3").evaluate(lenient(3)) is True
    assert compile_expression("{{x}}").evaluate(lenient(1e-7)) == "0.0000001"
    with pytest.raises(ExpressionError, match=r"\{\{x\}\} resolved to a list"):
        compile_expression("{{x}}").evaluate(lenient([]))


def test_resolver_exceptions_propagate() -> None:
    def resolve(name: str) -> str:
        raise KeyError(name)

    with pytest.raises(KeyError):
        compile_expression("{{missing}}").evaluate(resolve)


def test_expression_error_is_value_error_and_picklable() -> None:
    with pytest.raises(ValueError) as info:
        compile_expression("1 +")
    error = info.value
    assert isinstance(error, ExpressionError)
    assert error.column == 4 and error.source == "1 +"
    clone = pickle.loads(pickle.dumps(error))
    assert str(clone) == str(error) and clone.column == 4


# ------------------------------------------------------------------ placeholders, quoting, injection


INJECTIONS = ["' or 1=1 --", "x' or '1'='1", '"; drop table t; --', "a\\' b", "{{other}}", "'", "\\"]


@pytest.mark.parametrize("value", INJECTIONS)
def test_quoted_placeholder_splices_value_verbatim(value: str) -> None:
    assert ev("'{{v}}'", {"v": value}) == value
    assert ev("concat('[', '{{v}}', ']')", {"v": value}) == f"[{value}]"
    assert ev("'{{v}}' = 'admin'", {"v": value}) is False
    assert ev(FISFREE, {"batch_details.sell_price": value}) is False


@pytest.mark.parametrize("value", INJECTIONS)
def test_bare_placeholder_is_a_value(value: str) -> None:
    assert ev("{{v}}", {"v": value}) == value
    assert ev("{{v}} = 'admin'", {"v": value}) is False
    assert ev("length({{v}})", {"v": value}) == len(value.encode())


def test_injection_cannot_change_the_branch() -> None:
    source = "case when '{{name}}' = 'vip' then 'free' else 'paid' end"
    assert ev(source, {"name": "x' or 1=1 --"}) == "paid"
    assert ev(source, {"name": "vip"}) == "free"


def test_null_placeholder_bare_vs_quoted() -> None:
    assert ev("{{v}}", {"v": None}) is None
    assert ev("'{{v}}'", {"v": None}) == ""
    assert ev("'<{{v}}>'", {"v": None}) == "<>"
    assert ev("{{v}} is null", {"v": None}) is True
    assert ev("'{{v}}' is null", {"v": None}) is False


def test_placeholder_mixed_with_literal_text_and_escapes() -> None:
    assert ev("'a\\'{{v}}\\n'", {"v": "\\n"}) == "a'\\n\n"  # escapes in the literal only
    assert ev('"{{v}}"""', {"v": "x"}) == 'x"'
    assert ev("'\\{{v}}'") == "{{v}}"  # escaped brace: no placeholder
    assert compile_expression("'\\{{v}}'").placeholders == ()


def test_placeholder_value_with_placeholder_syntax_is_not_resolved_again() -> None:
    seen: list[str] = []

    def resolve(name: str) -> str:
        seen.append(name)
        return "{{secret}}"

    assert compile_expression("'{{v}}'").evaluate(resolve) == "{{secret}}"
    assert seen == ["v"]


# ------------------------------------------------------------------ literals


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("'abc'", "abc"),
        ('"abc"', "abc"),
        ("'it''s'", "it's"),
        ('"say ""hi"""', 'say "hi"'),
        ("'a\"b'", 'a"b'),
        ("'\\''", "'"),
        ("'\\\"'", '"'),
        ("'\\\\'", "\\"),
        ("'\\n\\t\\r\\b\\0\\Z'", "\n\t\r\b\0\x1a"),
        ("'\\%\\_'", "\\%\\_"),
        ("'\\q'", "q"),
        ("''", ""),
        ("'旺店通'", "旺店通"),
        ("42", D("42")),
        ("1.50", D("1.50")),
        (".5", D(".5")),
        ("7.", D("7")),
        ("TRUE", True),
        ("false", False),
        ("NULL", None),
        ("null", None),
    ],
)
def test_literals(source: str, expected: object) -> None:
    check(source, expected)


# ------------------------------------------------------------------ comparison


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        # numeric-looking on both sides: exact Decimal comparison
        ("'0.0000' = '0'", True),
        ("'0.0000' = 0", True),
        ("' 19.90 ' = 19.9", True),
        ("'-1' < '0'", True),
        ("'10' > '9'", True),  # as strings '10' < '9'
        ("'+5' = 5", True),
        ("'007' = '7'", True),  # documented cost of the numeric rule
        ("true = 1", True),
        ("false = '0.00'", True),
        ("1.0 = 1.00", True),
        # otherwise: case-sensitive string comparison
        ("'abc' = 'abc'", True),
        ("'abc' = 'ABC'", False),
        ("'abc' < 'abd'", True),
        ("'a ' = 'a'", False),
        ("'abc' = 0", False),  # MySQL would say TRUE
        ("'' = 0", False),
        ("'1e3' = 1000", False),  # exponents are not numeric-looking
        ("'10' > 'abc'", False),
        ("true = 'true'", False),
        # every comparison operator
        ("1 = 1", True),
        ("1 != 2", True),
        ("1 <> 1", False),
        ("1 < 2", True),
        ("2 <= 2", True),
        ("3 > 2", True),
        ("2 >= 3", False),
        ("'b' > 'a'", True),
        ("'b' <= 'a'", False),
        # null-safe equality
        ("null <=> null", True),
        ("1 <=> null", False),
        ("'0.0' <=> 0", True),
        # comparisons chain left to right, as MySQL
        ("1 = 1 = 1", True),
        ("3 > 2 > 1", False),
    ],
)
def test_comparison(source: str, expected: object) -> None:
    check(source, expected)


@pytest.mark.parametrize("op", ["=", "!=", "<>", "<", "<=", ">", ">="])
def test_comparison_with_null_is_null(op: str) -> None:
    assert ev(f"null {op} 1") is None
    assert ev(f"'a' {op} null") is None
    assert ev(f"{{{{v}}}} {op} 1", {"v": None}) is None


# ------------------------------------------------------------------ logic and NULL


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("true and true", True),
        ("true and false", False),
        ("true and null", None),
        ("null and false", False),
        ("false and null", False),
        ("null and null", None),
        ("true or null", True),
        ("null or true", True),
        ("false or null", None),
        ("false or false", False),
        ("not true", False),
        ("not false", True),
        ("not null", None),
        ("1 and '2.5'", True),
        ("0 or '0.000'", False),
        ("not 0", True),
        ("null is null", True),
        ("null is not null", False),
        ("0 is null", False),
        ("'' is not null", True),
        ("1 is true", True),
        ("0 is false", True),
        ("null is true", False),
        ("null is not false", True),
        ("'1' is not true", False),
    ],
)
def test_logic(source: str, expected: object) -> None:
    check(source, expected)


def test_logic_short_circuits() -> None:
    assert ev("false and 'abc' + 1 = 2") is False
    assert ev("true or 'abc' + 1 = 2") is True


def test_non_numeric_condition_is_an_error() -> None:
    with pytest.raises(ExpressionError, match="non-numeric value 'yes' as a condition"):
        ev("if({{flag}}, 1, 2)", {"flag": "yes"})
    with pytest.raises(ExpressionError):
        ev("not 'abc'")


# ------------------------------------------------------------------ IN, BETWEEN, LIKE


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("2 in (1, 2, 3)", True),
        ("'0.00' in ('1', '0')", True),
        ("'b' in ('a', 'c')", False),
        ("'b' not in ('a', 'c')", True),
        ("'a' not in ('a')", False),
        ("'b' in ('a', null)", None),
        ("'a' in ('a', null)", True),
        ("'b' not in ('a', null)", None),
        ("null in (1, 2)", None),
        ("1 + 1 in (2)", True),
        ("2 between 1 and 3", True),
        ("'1.5' between 1 and 2", True),
        ("1 between 1 and 1", True),
        ("0 between 1 and 3", False),
        ("0 not between 1 and 3", True),
        ("2 not between 1 and 3", False),
        ("'b' between 'a' and 'c'", True),
        ("null between 1 and 3", None),
        ("5 between 1 and null", None),
        ("0 between 1 and null", False),  # already below the low end
        ("2 between 1 and 3 and 1 = 1", True),  # BETWEEN's AND binds first
        ("'abc' like 'a%'", True),
        ("'abc' like 'a_c'", True),
        ("'abc' like 'a_'", False),
        ("'abc' like 'ABC'", False),  # case-sensitive like '='
        ("'a%c' like 'a\\%c'", True),
        ("'abc' like 'a\\%c'", False),
        ("'a_c' like 'a\\_c'", True),
        ("'a.c' like 'a.c'", True),
        ("'abc' like 'a.c'", False),  # regex metacharacters are literal
        ("'line1\nline2' like 'line1%'", True),
        ("'abc' not like '%z%'", True),
        ("'' like '%'", True),
        ("null like '%'", None),
        ("'x' like null", None),
        ("10.50 like '10.5%'", True),
    ],
)
def test_in_between_like(source: str, expected: object) -> None:
    check(source, expected)


# ------------------------------------------------------------------ arithmetic


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("1 + 2", D("3")),
        ("'19.9000' + 0.1", D("20.0000")),
        ("'19.9000' * 2", D("39.8000")),
        ("0.1 + 0.2", D("0.3")),
        ("5 - 7", D("-2")),
        ("-5", D("-5")),
        ("- -5", D("5")),
        ("--5", D("5")),
        ("-'2.50'", D("-2.50")),
        ("1 / 3", D("0.3333")),
        ("2 / 3", D("0.6667")),  # half-up at scale + 4
        ("10.0000 / 3", D("3.33333333")),
        ("10 / 4", D("2.5000")),
        ("1 / 0", None),
        ("'5' / '0.000'", None),
        ("null + 1", None),
        ("1 * null", None),
        ("-null", None),
        ("true + true", D("2")),
        ("{{n}} * {{p}}", D("59.7000")),
    ],
)
def test_arithmetic(source: str, expected: object) -> None:
    check(source, expected, {"n": "3", "p": "19.9000"})


def test_non_numeric_arithmetic_names_the_value_and_expression() -> None:
    with pytest.raises(ExpressionError) as info:
        ev("{{qty}} * 2", {"qty": "abc"})
    assert "non-numeric value 'abc'" in str(info.value)
    assert str(info.value).endswith("in: {{qty}} * 2")
    with pytest.raises(ExpressionError, match="non-numeric value ''"):
        ev("'{{qty}}' + 1", {"qty": None})


# ------------------------------------------------------------------ precedence


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("1 + 2 * 3", D("7")),
        ("(1 + 2) * 3", D("9")),
        ("10 - 4 - 3", D("3")),  # left associative
        ("12 / 3 / 2", D("2.00000000")),
        ("-2 * 3", D("-6")),
        ("- (2 - 5)", D("3")),
        ("1 + 1 = 2", True),
        ("true or false and false", True),  # AND binds tighter than OR
        ("(true or false) and false", False),
        ("not 1 = 2", True),  # NOT binds looser than '='
        ("not true and false", False),  # (NOT true) AND false
        ("not (true and false)", True),
        ("not 1 in (2, 3)", True),
        ("1 = 1 and 2 = 2 or 1 = 0", True),
        ("2 * 3 between 5 and 7", True),
        ("1 + 1 is not null", True),
        ("'a' = 'a' is true", True),
        ("7 % 4 * 2", D("6")),  # '%' and MOD share the level of '*' and '/', left associative
        ("1 + 7 mod 3 * 2", D("3")),
        ("-7 % 3 + 1", D("0")),
    ],
)
def test_precedence(source: str, expected: object) -> None:
    check(source, expected)


# Each of these differs between MySQL's parser (sql_yacc.yy: `bool_pri comp_op predicate`, so IN, LIKE
# and BETWEEN bind tighter than '=') and the manual's precedence table (IN and LIKE on the level of '=',
# left-associative; BETWEEN looser). The module follows the parser; see the module docstring.
@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("1 = 2 in (0)", False),  # 1 = (2 IN (0)); the table would give (1 = 2) IN (0), TRUE
        ("0 = 5 not in (1, 2)", False),  # 0 = TRUE; table: (0 = 5) NOT IN (1, 2), TRUE
        ("0 = 'b' like 'a'", True),  # 0 = FALSE; table: (0 = 'b') LIKE 'a', FALSE
        ("1 between 0 and 2 = 1", True),  # (BETWEEN) = 1; table: 1 BETWEEN 0 AND (2 = 1), FALSE
        ("3 = 1 between 0 and 2", False),  # 3 = TRUE; table: (3 = 1) BETWEEN 0 AND 2, TRUE
        ("2 in (2) = 1", True),  # the same under both readings
    ],
)
def test_precedence_follows_the_mysql_parser(source: str, expected: object) -> None:
    check(source, expected)


# ------------------------------------------------------------------ CASE


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("case 2 when 1 then 'one' when 2 then 'two' else 'many' end", "two"),
        ("case 9 when 1 then 'one' else 'many' end", "many"),
        ("case 9 when 1 then 'one' end", None),
        ("case null when null then 'hit' else 'miss' end", "miss"),  # NULL never matches
        ("case when 1 > 2 then 'a' when 2 > 1 then 'b' end", "b"),
        ("case when null then 'a' else 'b' end", "b"),
        ("case when 0 then 'a' when '1.0' then 'b' end", "b"),
        ("case 1 when 1 then 2.50 end", D("2.50")),
        ("case 1 when 1 then null else 'x' end", None),
        ("case 1 when 1 then true end", True),
        ("case 'x' when 'x' then case 1 when 1 then 'nested' end end", "nested"),
        ("case when true then 'first' when true then 'second' end", "first"),
        ("case 1 when 1 then 'ok' else 'abc' + 1 end", "ok"),  # untaken branch not evaluated
    ],
)
def test_case(source: str, expected: object) -> None:
    check(source, expected)


# ------------------------------------------------------------------ functions


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("if(1 > 0, 'y', 'n')", "y"),
        ("IF(null, 'y', 'n')", "n"),
        ("if(0, 'y', 'n')", "n"),
        ("if(true, 1, 'abc' + 1)", D("1")),  # lazy
        ("ifnull(null, 'd')", "d"),
        ("ifnull('', 'd')", ""),
        ("IfNull(3, 'abc' + 1)", D("3")),
        ("coalesce(null, null, 'c', 'd')", "c"),
        ("coalesce(null)", None),
        ("concat('a', 'b', 'c')", "abc"),
        ("concat('n=', 1.50, ',', true, ',', -0.00)", "n=1.50,1,0.00"),
        ("concat('a', null)", None),
        ("round(2.5)", D("3")),
        ("round(-2.5)", D("-3")),
        ("round('2.675', 2)", D("2.68")),
        ("round('19.9000', 2)", D("19.90")),
        ("round(1.5, 3)", D("1.500")),
        ("round(1234.5678, -2)", D("1200")),
        ("round(1250, -2)", D("1300")),
        ("round(49, -2)", D("0")),
        ("round(2.45, 1.4)", D("2.5")),  # n rounded to 1
        ("round(null)", None),
        ("round(1, null)", None),
        ("abs(-2.50)", D("2.50")),
        ("abs('-3')", D("3")),
        ("upper('abc旺')", "ABC旺"),
        ("lower('ABC')", "abc"),
        ("trim('  a b  ')", "a b"),
        ("trim('\ta\t')", "\ta\t"),  # MySQL TRIM strips spaces only
        ("length('abc')", D("3")),
        ("length('旺店通')", D("9")),  # bytes, as MySQL
        ("char_length('旺店通')", D("3")),
        ("length(19.90)", D("5")),
        ("substring('abcdef', 2)", "bcdef"),
        ("substring('abcdef', 2, 3)", "bcd"),
        ("substring('abcdef', -2)", "ef"),
        ("substring('abcdef', -3, 2)", "de"),
        ("substring('abcdef', 0)", ""),
        ("substring('abcdef', 7)", ""),
        ("substring('abcdef', -7)", ""),
        ("substring('abcdef', 2, 0)", ""),
        ("substring('abcdef', 2, -1)", ""),
        ("substring('abcdef', 5, 10)", "ef"),
        ("substr('旺店通ERP', 4)", "ERP"),
        ("replace('a-b-c', '-', '+')", "a+b+c"),
        ("replace('aAa', 'a', 'x')", "xAx"),
        ("replace('abc', '', 'x')", "abc"),
        ("replace('abc', 'b', null)", None),
        ("left('abcdef', 2)", "ab"),
        ("left('ab', 5)", "ab"),
        ("left('ab', 0)", ""),
        ("left('ab', -1)", ""),
        ("right('abcdef', 2)", "ef"),
        ("right('ab', 5)", "ab"),
        ("right('ab', 0)", ""),
        ("left(null, 1)", None),
        ("UPPER(concat(left('{{v}}', 2), right('{{v}}', 1)))", "CKX"),
    ],
)
def test_functions(source: str, expected: object) -> None:
    check(source, expected, {"v": "ck-x"})


def test_function_numeric_argument_must_be_numeric() -> None:
    with pytest.raises(ExpressionError, match="non-numeric value 'x' as a whole number"):
        ev("left('abc', 'x')")
    with pytest.raises(ExpressionError, match="non-numeric value 'x'"):
        ev("round('x')")


def test_function_arithmetic_failure_is_expression_error() -> None:
    with pytest.raises(ExpressionError, match="ROUND"):
        ev("round(" + "9" * 60 + ", 30)")


# ------------------------------------------------------------------ compile errors


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("case '{{x}}' when '0' true else false end", "unexpected token 'true' (expected THEN) at column 23"),
        ("case '{{x}}' when then '0' end", "unexpected token 'then' at column 19"),
        ("case 1 else 2 end", "unexpected token 'else' (expected WHEN) at column 8"),
        ("case 1 when 1 then 2", "unexpected end of expression (expected END) at column 21"),
        ("1 +", "unexpected end of expression at column 4"),
        ("1 2", "unexpected token '2' at column 3"),
        ("(1 + 2", "unexpected end of expression (expected ')') at column 7"),
        ("1 + 2)", "unexpected token ')' at column 6"),
        ("'abc", "unterminated string starting at column 1"),
        ("concat('a', 'b", "unterminated string starting at column 13"),
        ("'a\\", "unterminated string starting at column 1"),
        ("{{x", "malformed placeholder at column 1"),
        ("'{{order no}}'", "malformed placeholder at column 2"),
        ("{{}}", "malformed placeholder at column 1"),
        ("1 = {{a.}}", "malformed placeholder at column 5"),
        ("foo(1)", "unknown function 'foo' at column 1"),
        ("1 + sqrt(4)", "unknown function 'sqrt' at column 5"),
        ("sell_price = 0", "unexpected token 'sell_price' (column names are not supported"),
        ("concat", "unexpected token 'concat' (column names are not supported"),
        ("if(1, 2)", "IF() takes 3 arguments, got 2 at column 1"),
        ("round()", "ROUND() takes 1 to 2 arguments, got 0 at column 1"),
        ("coalesce()", "COALESCE() takes 1 or more arguments, got 0"),
        ("left('a', 1, 2)", "LEFT() takes 2 arguments, got 3"),
        ("1 || 0", "unsupported '||'"),
        ("1 && 0", "unsupported '&&'"),
        ("!1", "unsupported '!'"),
        ("1 == 1", "unsupported '=='"),
        ("1 -- comment", "unsupported '--': comments are not supported at column 3"),
        ("1 # comment", "unsupported '#'"),
        ("1 /* c */", "unsupported '/*'"),
        ("5 div 2", "unexpected token 'div' (DIV is not supported; write TRUNCATE(a / b, 0)) at column 3"),
        ("5 @ 2", "unexpected character '@' at column 3"),
        ("1 ; 2", "unexpected character ';' at column 3"),
        ("1e3", "malformed number at column 1"),
        ("1.2.3", "malformed number at column 1"),
        ("12abc", "malformed number at column 1"),
        ("1 is 2", "unexpected token '2' (expected NULL, TRUE or FALSE after IS) at column 6"),
        ("1 between 0", "unexpected end of expression (expected AND) at column 12"),
        ("1 in 2", "unexpected token '2' (expected '(') at column 6"),
        ("1 not 2", "unexpected token 'not' at column 3"),
        ("'a' 'b'", "unexpected token \"'b'\" at column 5"),
        ("trim(both 'x' from 'y')", "unexpected token 'both'"),
        ("+1", "unexpected token '+' at column 1"),
        ("", "empty expression"),
        ("   ", "empty expression"),
    ],
)
def test_compile_errors(source: str, message: str) -> None:
    with pytest.raises(ExpressionError) as info:
        compile_expression(source)
    assert message in str(info.value)
    assert str(info.value).endswith(f"in: {source}")


def test_compile_error_reports_column_attribute() -> None:
    with pytest.raises(ExpressionError) as info:
        compile_expression("case '{{batch_details.sell_price}}' when '0' then then false end")
    assert info.value.column == 51
    assert info.value.detail == "unexpected token 'then'"


def test_deep_nesting_is_rejected_not_crashing() -> None:
    with pytest.raises(ExpressionError, match="nested"):
        compile_expression("(" * 5000 + "1" + ")" * 5000)
    with pytest.raises(ExpressionError, match="nested more than"):
        compile_expression(" + ".join(["1"] * 500))
    assert ev(" + ".join(["1"] * 50)) == 50


def test_compiled_expression_is_reusable() -> None:
    expression = compile_expression(FISFREE)

    def price_of(price: str | None) -> Resolver:
        return lambda _: price

    results = [expression.evaluate(price_of(price)) for price in ("0", "1", "0.0000", None)]
    assert results == [True, False, True, False]
