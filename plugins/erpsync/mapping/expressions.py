"""Safe evaluator for ``_function`` mapping expressions.

A mapping value such as ``_function case '{{batch_details.sell_price}}' when '0' then true else false end``
carries a small MySQL-flavoured SQL expression. This module handles the text after the ``_function ``
prefix. The text is parsed once, when the scheme loads (:func:`compile_expression`). It is evaluated once
per order or line (:meth:`Expression.evaluate`). The code has a tokenizer, a recursive-descent parser and
an AST that evaluates itself. It never calls ``eval`` and never re-parses text after a value is spliced
in, so a field value such as ``x' or 1=1 --`` stays plain data.

Grammar (keywords and function names are case-insensitive; loosest binding first)::

    expression  := or
    or          := and ( OR and )*
    and         := not ( AND not )*
    not         := NOT not | comparison
    comparison  := predicate ( cmp_op predicate | IS [NOT] (NULL | TRUE | FALSE) )*
    cmp_op      := '=' | '<=>' | '!=' | '<>' | '<' | '<=' | '>' | '>='
    predicate   := additive [ [NOT] IN '(' expression (',' expression)* ')'
                            | [NOT] BETWEEN additive AND additive
                            | [NOT] LIKE additive ]
    additive    := (term | interval '+' term) ( '+' term | '-' term | ('+' | '-') interval )*
    interval    := INTERVAL expression unit     unit: MICROSECOND SECOND MINUTE HOUR DAY WEEK MONTH
                                                      QUARTER YEAR
    term        := unary ( ('*' | '/' | '%' | MOD) unary )*
    unary       := '-' unary | primary
    primary     := number | string | placeholder | TRUE | FALSE | NULL | '(' expression ')'
                 | CASE [expression] (WHEN expression THEN expression)+ [ELSE expression] END
                 | CURRENT_DATE | CURRENT_TIMESTAMP | LOCALTIME | LOCALTIMESTAMP
                 | CAST '(' expression AS type ')' | CONVERT '(' expression ',' type ')'
                 | (DATE_ADD | DATE_SUB) '(' expression ',' interval ')'
                 | (ADDDATE | SUBDATE) '(' expression ',' (interval | expression) ')'
                 | function '(' [expression (',' expression)*] ')'
    type        := DECIMAL ['(' p [',' s] ')'] | SIGNED [INTEGER] | UNSIGNED [INTEGER] | CHAR ['(' n ')']
                 | DATE | DATETIME
    placeholder := '{{' name '}}'      name: dotted identifiers such as batch_details.sell_price;
                                       spaces inside the braces are allowed

**Precedence, and why IN/LIKE/BETWEEN bind tighter than '='.** MySQL 8.0's manual ("Operator
Precedence") lists ``= <=> >= > <= < <> != IS LIKE REGEXP IN`` on one level and ``BETWEEN CASE WHEN``
one level looser. That table is the list of yacc ``%left`` declarations, and it is not how the server
parses. Its grammar (``sql/sql_yacc.yy``: ``bool_pri: bool_pri comp_op predicate | bool_pri IS NULL
| predicate``; ``predicate: bit_expr IN (...) | bit_expr BETWEEN bit_expr AND predicate | bit_expr
LIKE simple_expr | bit_expr``) gives IN, BETWEEN and LIKE operands that are bare arithmetic (bit_expr)
and makes a whole predicate the right operand of a comparison. ``a = b IN (c)`` can therefore only be
``a = (b IN (c))``, and ``1 = 2 IN (0)`` is 0 on a real server; the manual's table would give 1. This
module follows the server, because integrators check their expressions by running them in MySQL. The
tests pin it (``test_precedence_follows_the_mysql_parser``). Above that level the order is MySQL's:
NOT, then AND, then OR. ``*``, ``/``, ``%`` and ``MOD`` share one level, above ``+`` and ``-``. Two
small differences remain, both in expressions nobody writes. MySQL takes ``IS TRUE``/``IS FALSE`` one
level looser than comparisons and rejects ``1 = 1 IS TRUE = 1``, which is accepted here. Its BETWEEN
upper bound may itself be a predicate, and its LIKE pattern cannot be arithmetic; here both are
arithmetic (``additive``).

Functions (an unknown function or a wrong number of arguments fails at compile time). All but IF,
IFNULL, COALESCE and CONCAT_WS are strict: a NULL argument gives NULL. *d* is a date argument (see
**Dates**)::

    function                         deviation from MySQL (beyond the general rules below)
    IF(c, a, b)                      -
    IFNULL(a, b), COALESCE(a, ...)   -
    CONCAT(a, ...)                   -
    CONCAT_WS(sep, a, ...)           - (skips NULL arguments; a NULL separator gives NULL)
    ROUND(x[, n])                    always exactly n decimals (n capped at 30)
    TRUNCATE(x, n)                   always exactly n decimals (n capped at 30), like ROUND here
    MOD(a, b), a % b, a MOD b        - (sign of a; zero divisor gives NULL)
    ABS(x)                           -
    GREATEST(a, b, ...)              returns the winning argument unconverted ('10' stays text)
    LEAST(a, b, ...)                 same as GREATEST
    UPPER(s), LOWER(s)               -
    TRIM(s)                          only the one-argument form
    LENGTH(s), CHAR_LENGTH(s)        -
    SUBSTRING(s, pos[, len])         alias SUBSTR; the FROM/FOR form is rejected
    REPLACE(s, from, to)             -
    LEFT(s, n), RIGHT(s, n)          -
    LPAD(s, n, pad), RPAD(s, n, pad) n > 65535 is an error (MySQL: NULL above max_allowed_packet)
    LOCATE(sub, s[, pos])            case-sensitive (MySQL's default collation ignores case)
    INSTR(s, sub)                    case-sensitive, as LOCATE
    DATE_FORMAT(d, fmt)              %u %V %X (week modes 1 and 2) are an evaluation error
    STR_TO_DATE(s, fmt)              week, weekday-number and %D specifiers are an error; see below
    DATE_ADD(d, INTERVAL n unit)     composite units (DAY_HOUR, ...) are rejected at compile time
    DATE_SUB(d, INTERVAL n unit)     as DATE_ADD; also ADDDATE/SUBDATE(d, INTERVAL ...) and (d, days)
    d + INTERVAL n unit, d - ...     as DATE_ADD; INTERVAL n unit + d as well
    NOW(), CURRENT_TIMESTAMP[()]     the run's window end, not the clock; LOCALTIME, LOCALTIMESTAMP too
    CURDATE(), CURRENT_DATE[()]      the date of the run's window end; no fsp argument (NOW(3))
    UNIX_TIMESTAMP([d])              Asia/Shanghai, not the session zone; without d reads NOW()
    FROM_UNIXTIME(n[, fmt])          Asia/Shanghai; NULL below 0 and above 32536771199
    CAST(x AS type)                  see **CAST** below
    CONVERT(x, type)                 as CAST; CONVERT(x USING charset) is rejected

Values are ``None`` (SQL NULL), ``bool``, ``decimal.Decimal`` and ``str``. Decisions:

* **Placeholders.** Inside a quoted literal (``'{{x}}'``), the resolved text is spliced into the literal
  at evaluation time. A NULL there becomes the empty string, as in the platform's plain templates, so
  ``'{{x}}'`` is always a string. Used bare (``{{x}}``), a placeholder is the resolved string, or NULL
  when the resolver returns ``None``. Escapes in the literal are processed at compile time; the spliced
  value is inserted verbatim, with no escape or quote handling. ``'\\{{'`` writes a literal ``{{``. Any
  other ``{{`` that does not start a well-formed placeholder is a compile error, so a typo such as
  ``{{order no}}`` never turns silently into text. The resolver should return text. It may also return
  an int, float or Decimal, which is turned into plain decimal text; other types are an error. Each
  name is resolved at most once per evaluation. Exceptions raised by the resolver propagate unchanged.
* **Literals.** Strings use single or double quotes (MySQL's default mode, not ANSI_QUOTES). A doubled
  quote stands for itself, and MySQL's backslash escapes apply (``\\0 \\' \\" \\b \\n \\r \\t \\Z \\\\``).
  ``\\%`` and ``\\_`` keep their backslash for LIKE, and any other ``\\c`` is ``c``. Numbers are
  ``123``, ``1.50`` or ``.5`` (exact Decimal with scale kept); exponents are not accepted.
  TRUE and FALSE are Python bools, and NULL is ``None``.
* **Comparison** (``=``, ``<>``, ``<``, ``IN``, ``BETWEEN``, simple ``CASE``). If both sides are numbers,
  booleans (1/0) or numeric-looking strings (``[+-]digits[.digits]`` after trimming whitespace), they are
  compared as exact Decimals, so ``'0.0000' = '0'`` is TRUE. WDT sends money with four decimals while
  mapping authors write ``'0'``. Otherwise both sides are compared as strings, case-sensitively, by code
  point, with trailing spaces significant. This differs from MySQL in two deliberate ways.
  (1) MySQL's default collation ignores case and accents. Codes such as spec_no and shop_no are case
  significant, so ignoring case could map one code to another. (2) MySQL turns a non-numeric string
  into 0 when it meets a number (``'abc' = 0`` is TRUE there). Here that case is a FALSE string
  comparison. Cost of the numeric rule: ``'007' = '7'`` is TRUE. Use LIKE or CONCAT to force text.
* **NULL.** NULL follows SQL three-valued logic. A comparison, arithmetic or strict function with a NULL
  operand gives NULL. ``NULL AND FALSE`` is FALSE and ``NULL OR TRUE`` is TRUE. ``<=>`` is null-safe
  equality. ``IN`` is NULL when nothing matched and a NULL was involved. CASE and IF treat NULL as not
  true. CONCAT with any NULL argument is NULL, as in MySQL.
* **Conditions** (AND, OR, NOT, IF, searched CASE, IS TRUE/FALSE) accept bools, numbers (non-zero is
  true) and numeric-looking strings. Any other string is an evaluation error; MySQL would silently read
  it as 0, and a mapping bug should fail loudly instead. AND and OR short-circuit from left to right.
  IF, IFNULL, COALESCE and CASE evaluate only the branch they return.
* **Arithmetic** uses exact Decimals with MySQL DECIMAL scale rules. Numeric strings are read as exact
  Decimals, whereas MySQL would read them as DOUBLE. A non-numeric string is an evaluation error that
  names the value. ``a / b`` has the scale of ``a`` plus 4, rounded half-up (MySQL's
  div_precision_increment), and division by zero gives NULL.
* **ROUND(x, n)** rounds half-up on the exact Decimal and returns exactly ``n`` decimals (n is capped
  at 30). A negative ``n`` rounds to tens, hundreds and so on. Integer arguments (pos, len, n) are
  rounded half-up to whole numbers.
* **String functions** follow MySQL. Positions are 1-based, a negative SUBSTRING position counts from
  the end, and a non-positive length gives ``''``. TRIM strips spaces only. LENGTH counts UTF-8 bytes
  (one Chinese character is 3 bytes), and CHAR_LENGTH counts characters. REPLACE is case-sensitive.
  Numbers become plain decimal text, and booleans become ``'1'``/``'0'``.
* **MOD and %** follow MySQL: the result has the sign of the dividend and the scale of the finer
  operand (``7.50 % 2`` is ``1.50``), and a zero divisor gives NULL. ``DIV`` is rejected.
* **Dates.** Inside the engine a date is a naive ``datetime.date`` (no time part) or
  ``datetime.datetime``, meaning Asia/Shanghai local time, because WDT times are Asia/Shanghai local
  time. A date argument may be a date value or text ``YYYY-MM-DD`` or ``YYYY-MM-DD HH:MM:SS[.ffffff]``
  (``T`` instead of the space, 1-2 digit month/day/time fields are accepted). The zero date (year,
  month or day 0, so ``'0000-00-00 00:00:00'``, WDT's "no time") and the empty string are NULL, so
  every strict function gives NULL, as MySQL with NO_ZERO_DATE. Any other text that is not a valid
  date is an evaluation error that names the value. MySQL would give NULL with a warning, which would
  hide a wrong field. Numbers (MySQL's ``20261129``) are not dates here and are an error too. A date
  that meets text (CONCAT, LIKE, a string comparison, the final result) becomes MySQL's text
  ``YYYY-MM-DD`` or ``YYYY-MM-DD HH:MM:SS`` (with ``.ffffff`` only when there are microseconds), so
  :meth:`Expression.evaluate` still returns only None, bool, Decimal or str. A comparison with a date
  on either side is a date comparison when the other side is a date or date text (a date is midnight
  of its day, as MySQL), so ``CURDATE() = '2026-11-29'`` is TRUE; otherwise the text rule applies. A
  date in arithmetic or as a condition is an error: MySQL would silently read it as the number
  ``YYYYMMDDHHMMSS``. Use INTERVAL, DATE_ADD or UNIX_TIMESTAMP instead. Date arithmetic returns a
  date for DAY, WEEK, MONTH, QUARTER and YEAR on a date, and a datetime otherwise. MONTH, QUARTER and
  YEAR clamp the day to the month's last day (``'2024-02-29' - INTERVAL 1 YEAR`` is
  ``2023-02-28``), and a result outside years 1..9999 is NULL, as MySQL. The amount is rounded half-up
  to whole units, except SECOND, whose fraction is kept as microseconds (as MySQL).
* **DATE_FORMAT** knows %Y %y %m %c %d %e %H %k %h %I %l %i %s %S %p %W %a %M %b %j %f %T %r %D %w %U
  %v %x and %%. Names are English (MySQL's default lc_time_names). Any other letter stands for itself,
  as MySQL, except %u %V %X, which are an error rather than a guessed week number.
* **STR_TO_DATE** reads the same numeric and name specifiers (%T and %r too), case-insensitively.
  Blanks in the format are skipped and blanks are allowed before every field, as MySQL. Text that does
  not match, a zero or partial date and an impossible date (Feb 30, hour 25) give NULL, as MySQL.
  Trailing text after the format is ignored (MySQL only warns). A one- or two-digit %Y or %y year is
  2000-2069 for 00-69 and 1970-1999 otherwise. The result is a date when the format has no time
  field, else a datetime. An unsupported specifier letter is an evaluation error.
* **NOW() and the run's time.** NOW(), CURRENT_TIMESTAMP, LOCALTIME, LOCALTIMESTAMP, CURDATE(),
  CURRENT_DATE and UNIX_TIMESTAMP() return the ``now`` given to :meth:`Expression.evaluate`, the
  run's window end, never the wall clock, so a rerun produces the same bill. ``now`` is a naive
  Asia/Shanghai datetime, or an aware one that is converted to Asia/Shanghai. Microseconds are dropped,
  as MySQL's default fsp 0. An expression that uses one of them (:attr:`Expression.uses_now`) and is
  evaluated without ``now`` fails with an ExpressionError naming the function, even on a branch that
  would not run, so the mistake shows on the first record. Expressions without them keep the old call
  ``evaluate(resolve)``.
* **UNIX_TIMESTAMP / FROM_UNIXTIME** use Asia/Shanghai (tz database, so the 1986-1991 summer times are
  right) instead of the session time zone. UNIX_TIMESTAMP returns an exact Decimal, whole seconds
  unless the date has microseconds, and 0 before the epoch (as MySQL). FROM_UNIXTIME takes an exact
  Decimal; a fraction becomes microseconds.
* **CAST / CONVERT.** DECIMAL is DECIMAL(10,0) and DECIMAL(p) is DECIMAL(p,0). p is 1..65 and s is
  0..30 with s <= p, checked at compile time. The value is rounded half-up to s decimals. A value too
  big for p digits is an error; MySQL would clamp it to 99...9 with a warning, a wrong amount.
  SIGNED and UNSIGNED give a whole Decimal. A number is rounded half-up and text is truncated
  (``CAST('1.9' AS SIGNED)`` is 1), both as MySQL. Outside the 64-bit range, or negative for
  UNSIGNED, is an error (MySQL clamps or wraps). CHAR gives text, and CHAR(n) keeps the first n
  characters. DATE and DATETIME read a date as above. Non-numeric text for DECIMAL/SIGNED/UNSIGNED is
  an error, as in arithmetic.
* **GREATEST / LEAST** give NULL if any argument is NULL. They compare as exact numbers when every
  argument is numeric (by the comparison rule), as dates when one is a date and all are dates or date
  text, and otherwise as case-sensitive text. They return the winning argument unchanged.
* **Rejected syntax** (compile error with a hint, never a silent reinterpretation): ``||`` (OR or
  concatenation depending on sql_mode), ``&&``, ``!``, ``==``, SQL comments (``-- ``, ``#``, ``/*``),
  bare column names, ``DIV``, INTERVAL outside date arithmetic, cast types other than those listed
  (FLOAT, BINARY, JSON, TIME, ...) and function forms such as ``TRIM(x FROM y)`` or
  ``CONVERT(x USING utf8mb4)``.
* **Errors.** Every error is an :class:`ExpressionError` (a ``ValueError``), whatever the field
  values. Only a resolver's own exception and a ``now`` that is not a datetime (``TypeError``, a caller
  bug) pass through. The message quotes the whole expression and, at compile time, the 1-based column
  of the offending token, for example ``unexpected token 'then' at column 34 in: case ...``.
  Expressions nested more than ``_MAX_DEPTH`` levels are rejected at compile time, so evaluation never
  exhausts the stack.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_UP, Context, Decimal, DivisionByZero, InvalidOperation, Overflow
from functools import lru_cache
from typing import Final, NoReturn
from zoneinfo import ZoneInfo

__all__ = ["Expression", "ExpressionError", "Resolver", "Value", "compile_expression"]

Value = bool | Decimal | str | None  # what `Expression.evaluate` returns
_Arg = bool | Decimal | str | date  # a non-NULL value inside the engine (datetime is a date subclass)
_Val = _Arg | None
Resolver = Callable[[str], "str | None"]

_MAX_DEPTH: Final = 100
_CTX: Final = Context(prec=65, rounding=ROUND_HALF_UP, traps=[InvalidOperation, DivisionByZero, Overflow])
_NUMERIC_TEXT: Final = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
# `{{name}}` where name is dotted identifiers; the one definition templates and expressions share
PLACEHOLDER: Final = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\s*\}\}")
_NUMBER: Final = re.compile(r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+")
_WORD: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPERATORS: Final = ("<=>", "<=", ">=", "<>", "!=", "(", ")", ",", "+", "-", "*", "/", "%", "=", "<", ">")
_REJECTED: Final = {
    "||": "'||' is OR or concatenation depending on MySQL's sql_mode; write OR or CONCAT()",
    "&&": "write AND instead of '&&'",
    "==": "write '=' for equality",
    "/*": "comments are not supported",
    "--": "comments are not supported",
    "#": "comments are not supported",
    "!": "write NOT instead of '!'",
}
_ESCAPES: Final = {"0": "\0", "b": "\b", "n": "\n", "r": "\r", "t": "\t", "Z": "\x1a", "%": "\\%", "_": "\\_"}
_KEYWORDS: Final = frozenset(
    "and or not is null true false in like between case when then else end interval div".split()
)
_SHANGHAI: Final = ZoneInfo("Asia/Shanghai")
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_UNIX: Final = 32536771199  # '3001-01-18 23:59:59' UTC, MySQL 8.0.28+ FROM_UNIXTIME limit on 64-bit
_DATE_TEXT: Final = re.compile(
    r"([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})"
    r"(?:[ T]([0-9]{1,2}):([0-9]{1,2}):([0-9]{1,2})(?:\.([0-9]{1,6}))?)?"
)
_MAX_PAD: Final = 65535  # LPAD/RPAD result length; MySQL's limit is max_allowed_packet (64 MiB)
_INTERVAL_UNITS: Final = ("microsecond", "second", "minute", "hour", "day", "week", "month", "quarter", "year")
_NOW_NAMES: Final = {  # function: name in messages
    "now": "NOW()",
    "curdate": "CURDATE()",
    "current_timestamp": "CURRENT_TIMESTAMP",
    "current_date": "CURRENT_DATE",
    "localtime": "LOCALTIME",
    "localtimestamp": "LOCALTIMESTAMP",
}


class ExpressionError(ValueError):
    """A `_function` expression that cannot be compiled or evaluated; the message quotes the expression."""

    def __init__(self, detail: str, source: str, column: int | None = None) -> None:
        where = f" at column {column}" if column is not None else ""
        super().__init__(f"{detail}{where} in: {source}")
        self.detail = detail
        self.source = source
        self.column = column

    def __reduce__(self) -> tuple[type[ExpressionError], tuple[str, str, int | None]]:
        return type(self), (self.detail, self.source, self.column)


class _EvalFailure(Exception):
    """Raised inside evaluation; `Expression.evaluate` turns it into an ExpressionError naming the source."""


# ---------------------------------------------------------------- value conversions


def _number_or_none(value: _Arg) -> Decimal | None:
    if isinstance(value, bool):
        return Decimal(int(value))
    if isinstance(value, Decimal):
        return value
    if isinstance(value, date):
        return None  # dates are never numbers here; see "Dates" in the module docstring
    text = value.strip()
    return Decimal(text) if _NUMERIC_TEXT.fullmatch(text) else None


def _number(value: _Arg, role: str = "a number") -> Decimal:
    number = _number_or_none(value)
    if number is None:
        hint = ""
        if isinstance(value, date):
            hint = "; use DATE_ADD, INTERVAL or UNIX_TIMESTAMP for date arithmetic"
        raise _EvalFailure(f"cannot use non-numeric value '{_text(value)}' as {role}{hint}")
    return number


def _integer(value: _Arg) -> int:
    return int(_number(value, "a whole number").to_integral_value(rounding=ROUND_HALF_UP))


def _text(value: _Arg) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, Decimal):
        return format(value.copy_abs() if value.is_zero() else value, "f")
    if isinstance(value, datetime):
        text = value.strftime("%Y-%m-%d %H:%M:%S").rjust(19, "0")
        return f"{text}.{value.microsecond:06d}" if value.microsecond else text
    if isinstance(value, date):
        return value.strftime("%Y-%m-%d").rjust(10, "0")
    return value


def _parse_date(text: str) -> date | datetime | None:
    """MySQL date text to a date (no time part) or datetime; None for the zero date; error when malformed."""
    match = _DATE_TEXT.fullmatch(text.strip())
    if match is None:
        if not text.strip():
            return None  # WDT sends '' for "no time"
        raise _EvalFailure(f"cannot use '{text}' as a date (expected 'YYYY-MM-DD' or 'YYYY-MM-DD HH:MM:SS')")
    year, month, day = (int(match.group(i)) for i in (1, 2, 3))
    if year == 0 or month == 0 or day == 0:
        return None  # '0000-00-00 00:00:00' and other zero dates: MySQL's NO_ZERO_DATE gives NULL
    try:
        if match.group(4) is None:
            return date(year, month, day)
        hour, minute, second = (int(match.group(i)) for i in (4, 5, 6))
        micro = int((match.group(7) or "").ljust(6, "0"))
        return datetime(year, month, day, hour, minute, second, micro)
    except ValueError:
        raise _EvalFailure(f"cannot use '{text}' as a date: day or time out of range") from None


def _date(value: _Arg) -> date | None:
    """A date or datetime argument; None (SQL NULL) for a zero date."""
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        return _parse_date(value)
    raise _EvalFailure(
        f"cannot use {type(value).__name__ if isinstance(value, bool) else 'number'} "
        f"'{_text(value)}' as a date; write the date as text 'YYYY-MM-DD'"
    )


def _datetime(value: date) -> datetime:
    return value if isinstance(value, datetime) else datetime(value.year, value.month, value.day)


def _date_or_none(value: _Arg) -> datetime | None:
    """For comparisons: a datetime when `value` is a date or valid date text, else None (no error)."""
    if isinstance(value, date):
        return _datetime(value)
    if isinstance(value, str):
        try:
            parsed = _parse_date(value)
        except _EvalFailure:
            return None
        return None if parsed is None else _datetime(parsed)
    return None


def _truth(value: _Val) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    return not _number(value, "a condition (true/false)").is_zero()


def _compare(left: _Val, right: _Val) -> int | None:
    """-1, 0 or 1 under the date-else-numeric-else-string rule; None when either side is NULL."""
    if left is None or right is None:
        return None
    if isinstance(left, date) or isinstance(right, date):
        p, q = _date_or_none(left), _date_or_none(right)
        if p is not None and q is not None:
            return (p > q) - (p < q)
    a, b = _number_or_none(left), _number_or_none(right)
    if a is not None and b is not None:
        return (a > b) - (a < b)
    x, y = _text(left), _text(right)
    return (x > y) - (x < y)


@lru_cache(maxsize=256)
def _like_regex(pattern: str) -> re.Pattern[str]:
    parts: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            parts.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        parts.append(".*" if char == "%" else "." if char == "_" else re.escape(char))
        i += 1
    return re.compile("".join(parts), re.DOTALL)


# ---------------------------------------------------------------- AST


class _Env:
    """Per-evaluation state: the resolver, the values it already returned and the run's `now`."""

    __slots__ = ("_resolve", "_seen", "now")

    def __init__(self, resolve: Resolver, now: datetime | None = None) -> None:
        self._resolve = resolve
        self._seen: dict[str, str | None] = {}
        self.now = now

    def lookup(self, name: str) -> str | None:
        if name not in self._seen:
            raw: object = self._resolve(name)
            if raw is None or isinstance(raw, str):
                self._seen[name] = raw
            elif isinstance(raw, int | float | Decimal) and not isinstance(raw, bool):
                self._seen[name] = format(Decimal(str(raw)), "f")
            else:
                raise _EvalFailure(f"placeholder {{{{{name}}}}} resolved to a {type(raw).__name__}, not text")
        return self._seen[name]


class _Node:
    __slots__ = ()

    def eval(self, env: _Env) -> _Val:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class _Const(_Node):
    value: _Val

    def eval(self, env: _Env) -> _Val:
        return self.value


@dataclass(frozen=True, slots=True)
class _Field(_Node):
    name: str

    def eval(self, env: _Env) -> _Val:
        return env.lookup(self.name)


@dataclass(frozen=True, slots=True)
class _Template(_Node):
    """A quoted literal with placeholders inside: the resolved texts are spliced in, NULL as ''."""

    parts: tuple[str | _Field, ...]

    def eval(self, env: _Env) -> _Val:
        return "".join(p if isinstance(p, str) else (env.lookup(p.name) or "") for p in self.parts)


@dataclass(frozen=True, slots=True)
class _Negate(_Node):
    operand: _Node

    def eval(self, env: _Env) -> _Val:
        value = self.operand.eval(env)
        return None if value is None else _CTX.minus(_number(value))


@dataclass(frozen=True, slots=True)
class _Not(_Node):
    operand: _Node

    def eval(self, env: _Env) -> _Val:
        truth = _truth(self.operand.eval(env))
        return None if truth is None else not truth


@dataclass(frozen=True, slots=True)
class _Logic(_Node):
    op: str  # "and" | "or"
    left: _Node
    right: _Node

    def eval(self, env: _Env) -> _Val:
        decisive = self.op == "or"  # TRUE decides OR, FALSE decides AND
        left = _truth(self.left.eval(env))
        if left is decisive:
            return decisive
        right = _truth(self.right.eval(env))
        if right is decisive:
            return decisive
        return None if left is None or right is None else not decisive


@dataclass(frozen=True, slots=True)
class _Arith(_Node):
    op: str
    left: _Node
    right: _Node

    def eval(self, env: _Env) -> _Val:
        left, right = self.left.eval(env), self.right.eval(env)
        if left is None or right is None:
            return None
        a, b = _number(left), _number(right)
        try:
            if self.op == "+":
                return _CTX.add(a, b)
            if self.op == "-":
                return _CTX.subtract(a, b)
            if self.op == "*":
                return _CTX.multiply(a, b)
            if b.is_zero():
                return None
            if self.op == "%":
                return _CTX.remainder(a, b)  # sign of the dividend, scale of the finer operand, as MySQL
            scale = max(0, -int(a.as_tuple().exponent)) + 4
            return _CTX.divide(a, b).quantize(Decimal(1).scaleb(-scale), context=_CTX)
        except ArithmeticError as exc:
            raise _EvalFailure(f"arithmetic '{self.op}' failed: {type(exc).__name__}") from exc


_COMPARISONS: Final[dict[str, Callable[[int], bool]]] = {
    "=": lambda c: c == 0,
    "!=": lambda c: c != 0,
    "<>": lambda c: c != 0,
    "<": lambda c: c < 0,
    "<=": lambda c: c <= 0,
    ">": lambda c: c > 0,
    ">=": lambda c: c >= 0,
}


@dataclass(frozen=True, slots=True)
class _Compare(_Node):
    op: str
    left: _Node
    right: _Node

    def eval(self, env: _Env) -> _Val:
        left, right = self.left.eval(env), self.right.eval(env)
        if self.op == "<=>":
            return left is None and right is None or _compare(left, right) == 0
        order = _compare(left, right)
        return None if order is None else _COMPARISONS[self.op](order)


@dataclass(frozen=True, slots=True)
class _Is(_Node):
    operand: _Node
    target: bool | None  # IS NULL / IS TRUE / IS FALSE
    negated: bool

    def eval(self, env: _Env) -> _Val:
        value = self.operand.eval(env)
        hit = value is None if self.target is None else _truth(value) is self.target
        return hit is not self.negated


@dataclass(frozen=True, slots=True)
class _In(_Node):
    operand: _Node
    items: tuple[_Node, ...]
    negated: bool

    def eval(self, env: _Env) -> _Val:
        value = self.operand.eval(env)
        unknown = value is None
        for item in self.items:
            order = _compare(value, item.eval(env))
            if order == 0:
                return not self.negated
            unknown = unknown or order is None
        return None if unknown else self.negated


@dataclass(frozen=True, slots=True)
class _Between(_Node):
    operand: _Node
    low: _Node
    high: _Node
    negated: bool

    def eval(self, env: _Env) -> _Val:
        value = self.operand.eval(env)
        above, below = _compare(value, self.low.eval(env)), _compare(value, self.high.eval(env))
        if (above is not None and above < 0) or (below is not None and below > 0):
            return self.negated
        if above is None or below is None:
            return None
        return not self.negated


@dataclass(frozen=True, slots=True)
class _Like(_Node):
    operand: _Node
    pattern: _Node
    negated: bool

    def eval(self, env: _Env) -> _Val:
        value, pattern = self.operand.eval(env), self.pattern.eval(env)
        if value is None or pattern is None:
            return None
        return (_like_regex(_text(pattern)).fullmatch(_text(value)) is not None) is not self.negated


@dataclass(frozen=True, slots=True)
class _Case(_Node):
    subject: _Node | None  # None for a searched CASE
    whens: tuple[tuple[_Node, _Node], ...]
    default: _Node | None

    def eval(self, env: _Env) -> _Val:
        subject = None if self.subject is None else self.subject.eval(env)
        for when, then in self.whens:
            value = when.eval(env)
            hit = _truth(value) is True if self.subject is None else _compare(subject, value) == 0
            if hit:
                return then.eval(env)
        return None if self.default is None else self.default.eval(env)


@dataclass(frozen=True, slots=True)
class _Now(_Node):
    """NOW(), CURDATE() and friends: the run's window end handed to `Expression.evaluate`."""

    name: str  # as the docstring spells it, for messages
    date_only: bool

    def eval(self, env: _Env) -> _Val:
        if env.now is None:  # Expression.evaluate checks first; kept for safety
            raise _EvalFailure(f"{self.name} needs the run's time: call evaluate(resolve, now=...)")
        return env.now.date() if self.date_only else env.now


def _shift(moment: date, amount: int, unit: str) -> date | None:
    """`moment` plus `amount` units; month and year steps clamp the day; None outside years 1..9999."""
    try:
        if unit in ("month", "quarter", "year"):
            months = amount * {"month": 1, "quarter": 3, "year": 12}[unit]
            index = moment.year * 12 + moment.month - 1 + months
            year, month = divmod(index, 12)
            if not 1 <= year <= 9999:
                return None
            day = min(moment.day, calendar.monthrange(year, month + 1)[1])
            return moment.replace(year=year, month=month + 1, day=day)
        if unit in ("day", "week"):
            return moment + timedelta(days=amount * (7 if unit == "week" else 1))
        step = {
            "microsecond": timedelta(microseconds=1),
            "second": timedelta(seconds=1),
            "minute": timedelta(minutes=1),
            "hour": timedelta(hours=1),
        }[unit]
        return _datetime(moment) + step * amount
    except OverflowError:
        return None


@dataclass(frozen=True, slots=True)
class _DateAdd(_Node):
    """DATE_ADD/DATE_SUB/ADDDATE/SUBDATE and `d + INTERVAL n unit`, `d - INTERVAL n unit`."""

    operand: _Node
    amount: _Node
    unit: str
    sign: int  # +1 or -1

    def eval(self, env: _Env) -> _Val:
        value, amount = self.operand.eval(env), self.amount.eval(env)
        if value is None or amount is None:
            return None
        moment = _date(value)
        if moment is None:
            return None
        if self.unit == "second":  # MySQL keeps a fractional SECOND amount as microseconds
            seconds = _number(amount, "an INTERVAL amount") * self.sign
            whole, micro = _split_seconds(seconds)
            shifted = _shift(moment, whole, "second")
            return None if shifted is None else _shift(shifted, micro, "microsecond")
        return _shift(moment, self.sign * _integer(amount), self.unit)


_CAST_TYPES: Final = ("decimal", "signed", "unsigned", "char", "date", "datetime")
_INT64: Final = 2**63


@dataclass(frozen=True, slots=True)
class _Cast(_Node):
    """CAST(x AS type) and CONVERT(x, type); `size` is DECIMAL's (precision, scale) or CHAR's (length,)."""

    operand: _Node
    type: str
    size: tuple[int, ...]

    def eval(self, env: _Env) -> _Val:
        value = self.operand.eval(env)
        if value is None:
            return None
        if self.type == "char":
            text = _text(value)
            return text[: self.size[0]] if self.size else text
        if self.type in ("date", "datetime"):
            moment = _date(value)
            if moment is None:
                return None
            if self.type == "datetime":
                return _datetime(moment)
            return date(moment.year, moment.month, moment.day)
        if self.type == "decimal":
            precision, scale = self.size
            number = _number(value).quantize(Decimal(1).scaleb(-scale), context=_CTX)
            if number.adjusted() >= precision - scale:
                raise _EvalFailure(f"value '{_text(value)}' is out of range for DECIMAL({precision},{scale})")
            return number.copy_abs() if number.is_zero() else number
        # SIGNED / UNSIGNED: MySQL reads a string's integer prefix (truncates '1.9' to 1) but rounds a number
        if isinstance(value, str):
            whole = _number(value).to_integral_value(rounding=ROUND_DOWN)
        else:
            whole = _number(value).to_integral_value(rounding=ROUND_HALF_UP)
        low, high = (-_INT64, _INT64 - 1) if self.type == "signed" else (0, 2 * _INT64 - 1)
        if not low <= whole <= high:
            raise _EvalFailure(f"value '{_text(value)}' is out of range for {self.type.upper()}")
        return whole + 0  # normalises -0


# ---------------------------------------------------------------- functions


@dataclass(frozen=True, slots=True)
class _Function:
    min_args: int
    max_args: int | None
    impl: Callable[..., _Val]
    lazy: bool = False  # lazy: impl(env, *nodes), sees NULLs; otherwise impl(*values) and NULL in -> NULL


def _if(env: _Env, cond: _Node, then: _Node, other: _Node) -> _Val:
    return then.eval(env) if _truth(cond.eval(env)) is True else other.eval(env)


def _coalesce(env: _Env, *args: _Node) -> _Val:
    for arg in args:
        value = arg.eval(env)
        if value is not None:
            return value
    return None


def _round(x: _Arg, places: _Arg = Decimal(0)) -> Decimal:
    n = min(_integer(places), 30)
    number = _number(x)
    if n >= 0:
        return number.quantize(Decimal(1).scaleb(-n), context=_CTX)
    return number.quantize(Decimal(1).scaleb(min(-n, 66)), context=_CTX).quantize(Decimal(1), context=_CTX)


def _substring(s: _Arg, pos: _Arg, length: _Arg | None = None) -> str:
    text, start = _text(s), _integer(pos)
    if start == 0 or abs(start) > len(text):
        return ""
    begin = start - 1 if start > 0 else len(text) + start
    if length is None:
        return text[begin:]
    count = _integer(length)
    return text[begin : begin + count] if count > 0 else ""


def _replace(s: _Arg, old: _Arg, new: _Arg) -> str:
    text, needle = _text(s), _text(old)
    return text.replace(needle, _text(new)) if needle else text


def _left(s: _Arg, n: _Arg) -> str:
    count = _integer(n)
    return _text(s)[:count] if count > 0 else ""


def _right(s: _Arg, n: _Arg) -> str:
    count = _integer(n)
    return _text(s)[-count:] if count > 0 else ""


_MONTHS: Final = tuple(calendar.month_name)[1:]  # English, as MySQL's default lc_time_names en_US
_DAYS: Final = tuple(calendar.day_name)  # Monday first, as date.weekday()
_UNSUPPORTED_SPECIFIERS: Final = "uVX"  # MySQL week modes 1 and 2: rejected rather than guessed


def _format_date(moment: date, fmt: str) -> str:
    full = _datetime(moment)
    hour12 = (full.hour + 11) % 12 + 1
    out: list[str] = []
    i = 0
    while i < len(fmt):
        char = fmt[i]
        if char != "%" or i + 1 == len(fmt):
            out.append(char)
            i += 1
            continue
        spec = fmt[i + 1]
        i += 2
        if spec in _UNSUPPORTED_SPECIFIERS:
            raise _EvalFailure(f"DATE_FORMAT specifier %{spec} is not supported")
        out.append(
            {
                "Y": f"{full.year:04d}",
                "y": f"{full.year % 100:02d}",
                "m": f"{full.month:02d}",
                "c": str(full.month),
                "d": f"{full.day:02d}",
                "e": str(full.day),
                "H": f"{full.hour:02d}",
                "k": str(full.hour),
                "h": f"{hour12:02d}",
                "I": f"{hour12:02d}",
                "l": str(hour12),
                "i": f"{full.minute:02d}",
                "s": f"{full.second:02d}",
                "S": f"{full.second:02d}",
                "p": "AM" if full.hour < 12 else "PM",
                "W": _DAYS[full.weekday()],
                "a": _DAYS[full.weekday()][:3],
                "M": _MONTHS[full.month - 1],
                "b": _MONTHS[full.month - 1][:3],
                "j": f"{full.timetuple().tm_yday:03d}",
                "f": f"{full.microsecond:06d}",
                "T": f"{full:%H:%M:%S}",
                "r": f"{hour12:02d}:{full:%M:%S} {'AM' if full.hour < 12 else 'PM'}",
                "D": f"{full.day}{_ordinal_suffix(full.day)}",
                "w": str((full.weekday() + 1) % 7),
                "U": f"{full:%U}",
                "v": f"{full.isocalendar()[1]:02d}",
                "x": f"{full.isocalendar()[0]:04d}",
            }.get(spec, spec)
        )  # an unknown specifier is the letter itself, as MySQL ('%%' is '%')
    return "".join(out)


def _ordinal_suffix(day: int) -> str:
    return "th" if 10 <= day % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")


def _date_format(value: _Arg, fmt: _Arg) -> _Val:
    moment = _date(value)
    return None if moment is None else _format_date(moment, _text(fmt))


_PARSE_FIELDS: Final[dict[str, tuple[str, str]]] = {  # specifier: (field, regex of the digits or name)
    "Y": ("year", r"[0-9]{1,4}"),
    "y": ("year2", r"[0-9]{1,2}"),
    "m": ("month", r"[0-9]{1,2}"),
    "c": ("month", r"[0-9]{1,2}"),
    "d": ("day", r"[0-9]{1,2}"),
    "e": ("day", r"[0-9]{1,2}"),
    "H": ("hour", r"[0-9]{1,2}"),
    "k": ("hour", r"[0-9]{1,2}"),
    "h": ("hour12", r"[0-9]{1,2}"),
    "I": ("hour12", r"[0-9]{1,2}"),
    "l": ("hour12", r"[0-9]{1,2}"),
    "i": ("minute", r"[0-9]{1,2}"),
    "s": ("second", r"[0-9]{1,2}"),
    "S": ("second", r"[0-9]{1,2}"),
    "f": ("micro", r"[0-9]{1,6}"),
    "p": ("ampm", r"[AaPp][Mm]"),
    "j": ("yday", r"[0-9]{1,3}"),
    "M": ("monthname", "|".join(_MONTHS)),
    "b": ("monthname", "|".join(m[:3] for m in _MONTHS)),
    "W": ("dayname", "|".join(_DAYS)),
    "a": ("dayname", "|".join(d[:3] for d in _DAYS)),
}
_TIME_FIELDS: Final = frozenset({"hour", "hour12", "minute", "second", "micro", "ampm"})


@lru_cache(maxsize=256)
def _str_to_date_regex(fmt: str) -> tuple[re.Pattern[str], tuple[str, ...]]:
    parts: list[str] = []
    names: list[str] = []
    i = 0
    while i < len(fmt):
        char = fmt[i]
        if char.isspace():
            i += 1
            continue  # MySQL skips blanks in the format and before every field of the text
        if char == "%" and i + 1 < len(fmt):
            spec = fmt[i + 1]
            i += 2
            if spec in "Tr":
                expanded, _ = _str_to_date_regex("%H:%i:%s" if spec == "T" else "%h:%i:%s %p")
                parts.append(r"\s*" + expanded.pattern)
                names.extend(_str_to_date_regex("%H:%i:%s" if spec == "T" else "%h:%i:%s %p")[1])
                continue
            if spec in _PARSE_FIELDS:
                field, pattern = _PARSE_FIELDS[spec]
                parts.append(rf"\s*({pattern})")
                names.append(field)
                continue
            if spec.isalpha() and spec != "%":
                raise _EvalFailure(f"STR_TO_DATE specifier %{spec} is not supported")
            char = spec  # '%%' and '%' before punctuation match the character itself
        else:
            i += 1
        parts.append(r"\s*" + re.escape(char))
    return re.compile("".join(parts), re.IGNORECASE), tuple(names)


def _str_to_date(value: _Arg, fmt: _Arg) -> _Val:
    pattern, names = _str_to_date_regex(_text(fmt))
    match = pattern.match(_text(value))  # trailing text is ignored, as MySQL (which only warns)
    if match is None:
        return None
    got: dict[str, str] = {}
    for field, text in zip(names, match.groups(), strict=True):
        got[field] = text
    try:
        if "year" in got and len(got["year"]) <= 2:
            got["year2"] = got.pop("year")  # MySQL reads a two-digit %Y like %y
        if "year2" in got and "year" not in got:
            short = int(got["year2"])
            got["year"] = str(short + (2000 if short < 70 else 1900))
        year = int(got.get("year", "0"))
        if "monthname" in got:
            names_lower = [m.lower() for m in _MONTHS]
            text = got["monthname"].lower()
            got["month"] = str(next(n + 1 for n, m in enumerate(names_lower) if m.startswith(text)))
        if "yday" in got and "month" not in got and "day" not in got:
            day_one = date(year, 1, 1) + timedelta(days=int(got["yday"]) - 1)
            month, day = day_one.month, day_one.day
        else:
            month, day = int(got.get("month", "0")), int(got.get("day", "0"))
        if year == 0 or month == 0 or day == 0:
            return None  # MySQL's strict mode gives NULL for a zero or partial date
        if not _TIME_FIELDS.intersection(got):
            return date(year, month, day)
        hour = int(got.get("hour", "0"))
        if "hour12" in got:
            hour = int(got["hour12"])
            if not 1 <= hour <= 12:
                return None
            hour = hour % 12 + (12 if got.get("ampm", "am").lower() == "pm" else 0)
        micro = int(got.get("micro", "0").ljust(6, "0"))
        minute, second = int(got.get("minute", "0")), int(got.get("second", "0"))
        return datetime(year, month, day, hour, minute, second, micro)
    except (ValueError, OverflowError):
        return None  # Feb 30, hour 25 and the like: NULL, as MySQL


def _split_seconds(seconds: Decimal) -> tuple[int, int]:
    whole = int(seconds.to_integral_value(rounding=ROUND_DOWN))
    micro = int(((seconds - whole) * 1000000).to_integral_value(rounding=ROUND_DOWN))
    return whole, micro


def _from_unixtime(seconds: _Arg, fmt: _Arg | None = None) -> _Val:
    number = _number(seconds)
    if number < 0 or number > _MAX_UNIX:
        return None  # MySQL gives NULL outside its TIMESTAMP-like range
    whole, micro = _split_seconds(number)
    moment = (_EPOCH + timedelta(seconds=whole, microseconds=micro)).astimezone(_SHANGHAI)
    moment = moment.replace(tzinfo=None)
    return moment if fmt is None else _format_date(moment, _text(fmt))


def _unix_timestamp(value: _Arg) -> _Val:
    moment = _date(value)
    if moment is None:
        return None
    local = _datetime(moment).replace(tzinfo=_SHANGHAI)
    delta = local - _EPOCH
    if delta < timedelta(0):
        return Decimal(0)  # MySQL gives 0 before the epoch
    seconds = Decimal(delta.days * 86400 + delta.seconds)
    if delta.microseconds:
        seconds += Decimal(delta.microseconds).scaleb(-6).normalize()  # '.25' keeps 2 decimals, as MySQL
    return seconds


def _truncate(x: _Arg, places: _Arg) -> Decimal:
    n = min(_integer(places), 30)
    number = _number(x)
    if n >= 0:
        return number.quantize(Decimal(1).scaleb(-n), rounding=ROUND_DOWN, context=_CTX)
    shifted = number.scaleb(max(n, -66), _CTX).to_integral_value(rounding=ROUND_DOWN)
    return shifted.scaleb(min(-n, 66), _CTX).quantize(Decimal(1), context=_CTX)


def _mod(a: _Arg, b: _Arg) -> Decimal | None:
    x, y = _number(a), _number(b)
    return None if y.is_zero() else _CTX.remainder(x, y)


def _extreme(pick: int) -> Callable[..., _Val]:
    def choose(*args: _Arg) -> _Val:
        numbers = [_number_or_none(a) for a in args]
        if all(n is not None for n in numbers):
            keys: list[object] = list(numbers)
        elif any(isinstance(a, date) for a in args) and all(_date_or_none(a) is not None for a in args):
            keys = [_date_or_none(a) for a in args]
        else:
            keys = [_text(a) for a in args]
        best = 0
        for index in range(1, len(args)):
            if (keys[index] > keys[best]) - (keys[index] < keys[best]) == pick:  # type: ignore[operator]
                best = index
        return args[best]

    return choose


def _pad(left: bool) -> Callable[[_Arg, _Arg, _Arg], _Val]:
    def pad(s: _Arg, length: _Arg, fill: _Arg) -> _Val:
        text, size, filler = _text(s), _integer(length), _text(fill)
        if size < 0:
            return None
        if size > _MAX_PAD:
            raise _EvalFailure(f"{'LPAD' if left else 'RPAD'}() length {size} is more than {_MAX_PAD}")
        if size <= len(text):
            return text[:size]
        if not filler:
            return None
        padding = (filler * (size // len(filler) + 1))[: size - len(text)]
        return padding + text if left else text + padding

    return pad


def _concat_ws(env: _Env, separator: _Node, *args: _Node) -> _Val:
    sep = separator.eval(env)
    if sep is None:
        return None
    values = [arg.eval(env) for arg in args]
    return _text(sep).join(_text(v) for v in values if v is not None)


def _locate(needle: _Arg, haystack: _Arg, pos: _Arg = Decimal(1)) -> Decimal:
    text, sub, start = _text(haystack), _text(needle), _integer(pos)
    if start < 1 or start > len(text) + 1:
        return Decimal(0)
    return Decimal(text.find(sub, start - 1) + 1)


_FUNCTIONS: Final[dict[str, _Function]] = {
    "if": _Function(3, 3, _if, lazy=True),
    "ifnull": _Function(2, 2, _coalesce, lazy=True),
    "coalesce": _Function(1, None, _coalesce, lazy=True),
    "concat": _Function(1, None, lambda *args: "".join(_text(a) for a in args)),
    "round": _Function(1, 2, _round),
    "abs": _Function(1, 1, lambda x: _number(x).copy_abs()),
    "upper": _Function(1, 1, lambda s: _text(s).upper()),
    "lower": _Function(1, 1, lambda s: _text(s).lower()),
    "trim": _Function(1, 1, lambda s: _text(s).strip(" ")),
    "length": _Function(1, 1, lambda s: Decimal(len(_text(s).encode("utf-8")))),
    "char_length": _Function(1, 1, lambda s: Decimal(len(_text(s)))),
    "substring": _Function(2, 3, _substring),
    "substr": _Function(2, 3, _substring),
    "replace": _Function(3, 3, _replace),
    "left": _Function(2, 2, _left),
    "right": _Function(2, 2, _right),
    "date_format": _Function(2, 2, _date_format),
    "str_to_date": _Function(2, 2, _str_to_date),
    "from_unixtime": _Function(1, 2, _from_unixtime),
    "unix_timestamp": _Function(1, 1, _unix_timestamp),  # the parser turns UNIX_TIMESTAMP() into (NOW())
    "truncate": _Function(2, 2, _truncate),
    "mod": _Function(2, 2, _mod),
    "greatest": _Function(2, None, _extreme(1)),
    "least": _Function(2, None, _extreme(-1)),
    "lpad": _Function(3, 3, _pad(left=True)),
    "rpad": _Function(3, 3, _pad(left=False)),
    "concat_ws": _Function(2, None, _concat_ws, lazy=True),
    "locate": _Function(2, 3, _locate),
    "instr": _Function(2, 2, lambda s, sub: _locate(sub, s)),
}


@dataclass(frozen=True, slots=True)
class _Call(_Node):
    name: str
    function: _Function
    args: tuple[_Node, ...]

    def eval(self, env: _Env) -> _Val:
        if self.function.lazy:
            return self.function.impl(env, *self.args)
        values = [arg.eval(env) for arg in self.args]
        if any(value is None for value in values):
            return None
        try:
            return self.function.impl(*values)
        except ArithmeticError as exc:
            raise _EvalFailure(f"{self.name.upper()}() failed: {type(exc).__name__}") from exc


def _children(node: _Node) -> Iterator[_Node]:
    stack: list[object] = [getattr(node, f.name) for f in fields(node)]  # type: ignore[arg-type]
    while stack:
        item = stack.pop()
        if isinstance(item, _Node):
            yield item
        elif isinstance(item, tuple):
            stack.extend(item)


def _depth_exceeds(node: _Node, limit: int) -> bool:
    if limit <= 0:
        return True
    return any(_depth_exceeds(child, limit - 1) for child in _children(node))


# ---------------------------------------------------------------- tokenizer


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # "number" | "string" | "field" | "word" | "op" | "end"
    text: str  # as written, for messages
    column: int  # 1-based
    value: object = None  # Decimal | tuple of string parts | field name | lower-cased word


def _tokenize(source: str) -> list[_Token]:
    tokens: list[_Token] = []
    i = 0
    while i < len(source):
        char = source[i]
        if char.isspace():
            i += 1
        elif source.startswith("{{", i):
            match = PLACEHOLDER.match(source, i)
            if match is None:
                raise ExpressionError("malformed placeholder", source, i + 1)
            tokens.append(_Token("field", match.group(0), i + 1, match.group(1)))
            i = match.end()
        elif char in "'\"":
            token, i = _read_string(source, i)
            tokens.append(token)
        elif match := _NUMBER.match(source, i):
            if match.end() < len(source) and (source[match.end()].isalnum() or source[match.end()] in "._"):
                raise ExpressionError("malformed number", source, i + 1)
            tokens.append(_Token("number", match.group(0), i + 1, Decimal(match.group(0))))
            i = match.end()
        elif match := _WORD.match(source, i):
            tokens.append(_Token("word", match.group(0), i + 1, match.group(0).lower()))
            i = match.end()
        else:
            i = _read_operator(source, i, tokens)
    tokens.append(_Token("end", "", len(source) + 1))
    return tokens


def _read_operator(source: str, i: int, tokens: list[_Token]) -> int:
    for size in (3, 2, 1):
        chunk = source[i : i + size]
        if len(chunk) < size:
            continue
        if chunk == "--" and source[i + 2 : i + 3] not in ("", " ", "\t", "\n", "\r"):
            continue  # '--5' is minus minus five; '-- ' starts a MySQL comment, rejected below
        if chunk in _REJECTED:
            raise ExpressionError(f"unsupported {chunk!r}: {_REJECTED[chunk]}", source, i + 1)
        if chunk in _OPERATORS:
            tokens.append(_Token("op", chunk, i + 1, chunk))
            return i + size
    raise ExpressionError(f"unexpected character {source[i]!r}", source, i + 1)


def _read_string(source: str, start: int) -> tuple[_Token, int]:
    quote = source[start]
    parts: list[str | _Field] = []
    buffer: list[str] = []
    i = start + 1
    while True:
        if i >= len(source):
            raise ExpressionError("unterminated string starting", source, start + 1)
        char = source[i]
        if char == quote:
            if source[i + 1 : i + 2] == quote:
                buffer.append(quote)
                i += 2
                continue
            break
        if char == "\\" and i + 1 < len(source):
            buffer.append(_ESCAPES.get(source[i + 1], source[i + 1]))
            i += 2
        elif source.startswith("{{", i):
            match = PLACEHOLDER.match(source, i)
            if match is None:
                raise ExpressionError("malformed placeholder", source, i + 1)
            if buffer:
                parts.append("".join(buffer))
                buffer = []
            parts.append(_Field(match.group(1)))
            i = match.end()
        else:
            buffer.append(char)
            i += 1
    if buffer or not parts:
        parts.append("".join(buffer))
    return _Token("string", source[start : i + 1], start + 1, tuple(parts)), i + 1


# ---------------------------------------------------------------- parser


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.tokens = _tokenize(source)
        self.pos = 0

    # -- token helpers
    def peek(self, ahead: int = 0) -> _Token:
        return self.tokens[min(self.pos + ahead, len(self.tokens) - 1)]

    def advance(self) -> _Token:
        token = self.peek()
        self.pos += 1
        return token

    def at(self, *values: str, ahead: int = 0) -> bool:
        token = self.peek(ahead)
        return token.kind in ("word", "op") and token.value in values

    def accept(self, *values: str) -> bool:
        if self.at(*values):
            self.pos += 1
            return True
        return False

    def expect(self, value: str) -> None:
        if not self.accept(value):
            self.fail(self.peek(), f"expected {value.upper() if value.isalpha() else repr(value)}")

    def fail(self, token: _Token, expected: str | None = None) -> NoReturn:
        found = "end of expression" if token.kind == "end" else f"token {token.text!r}"
        detail = f"unexpected {found}" + (f" ({expected})" if expected else "")
        raise ExpressionError(detail, self.source, token.column)

    # -- grammar, loosest binding first
    def parse(self) -> _Node:
        if self.peek().kind == "end":
            raise ExpressionError("empty expression", self.source)
        node = self.expression()
        if self.peek().kind != "end":
            self.fail(self.peek())
        return node

    def expression(self) -> _Node:
        node = self.conjunction()
        while self.accept("or"):
            node = _Logic("or", node, self.conjunction())
        return node

    def conjunction(self) -> _Node:
        node = self.negation()
        while self.accept("and"):
            node = _Logic("and", node, self.negation())
        return node

    def negation(self) -> _Node:
        if self.accept("not"):
            return _Not(self.negation())
        return self.comparison()

    def comparison(self) -> _Node:
        node = self.predicate()
        while True:
            if self.at("=", "<=>", "!=", "<>", "<", "<=", ">", ">="):
                op = str(self.advance().value)
                node = _Compare(op, node, self.predicate())
            elif self.accept("is"):
                negated = self.accept("not")
                token = self.advance()
                targets = {"null": None, "true": True, "false": False}
                if token.kind != "word" or token.value not in targets:
                    self.fail(token, "expected NULL, TRUE or FALSE after IS")
                node = _Is(node, targets[str(token.value)], negated)
            else:
                return node

    def predicate(self) -> _Node:
        node = self.additive()
        negated = self.at("not") and self.at("in", "between", "like", ahead=1)
        if negated:
            self.advance()
        if self.accept("in"):
            self.expect("(")
            items = [self.expression()]
            while self.accept(","):
                items.append(self.expression())
            self.expect(")")
            return _In(node, tuple(items), negated)
        if self.accept("between"):
            low = self.additive()
            self.expect("and")
            return _Between(node, low, self.additive(), negated)
        if self.accept("like"):
            return _Like(node, self.additive(), negated)
        return node

    def additive(self) -> _Node:
        if self.at("interval"):  # INTERVAL n unit + date, as MySQL allows
            amount, unit = self.interval()
            self.expect("+")
            node: _Node = _DateAdd(self.term(), amount, unit, 1)
        else:
            node = self.term()
        while self.at("+", "-"):
            op = str(self.advance().value)
            if self.at("interval"):
                amount, unit = self.interval()
                node = _DateAdd(node, amount, unit, 1 if op == "+" else -1)
            else:
                node = _Arith(op, node, self.term())
        return node

    def interval(self) -> tuple[_Node, str]:
        """INTERVAL expression unit; the INTERVAL keyword is the current token."""
        self.expect("interval")
        amount = self.expression()
        token = self.advance()
        if token.kind != "word" or token.value not in _INTERVAL_UNITS:
            self.fail(token, "expected an INTERVAL unit: " + ", ".join(u.upper() for u in _INTERVAL_UNITS))
        return amount, str(token.value)

    def term(self) -> _Node:
        node = self.unary()
        while True:
            if self.at("*", "/", "%", "mod"):
                op = "%" if self.at("mod") else str(self.peek().value)
                self.advance()
                node = _Arith(op, node, self.unary())
            elif self.at("div"):
                self.fail(self.peek(), "DIV is not supported; write TRUNCATE(a / b, 0)")
            else:
                return node

    def unary(self) -> _Node:
        if self.accept("-"):
            return _Negate(self.unary())
        return self.primary()

    def primary(self) -> _Node:
        token = self.advance()
        if token.kind == "number":
            assert isinstance(token.value, Decimal)
            return _Const(token.value)
        if token.kind == "string":
            assert isinstance(token.value, tuple)
            parts: tuple[str | _Field, ...] = token.value
            return _Const(parts[0]) if len(parts) == 1 and isinstance(parts[0], str) else _Template(parts)
        if token.kind == "field":
            return _Field(str(token.value))
        if token.kind == "op" and token.value == "(":
            node = self.expression()
            self.expect(")")
            return node
        if token.kind == "word":
            word = str(token.value)
            if word in ("true", "false", "null"):
                return _Const({"true": True, "false": False, "null": None}[word])
            if word == "case":
                return self.case()
            if word == "interval":
                self.fail(token, "INTERVAL goes after '+' or '-' or inside DATE_ADD()/DATE_SUB()")
            if word in _NOW_NAMES and word not in ("now", "curdate") and not self.at("("):
                return _Now(_NOW_NAMES[word], word == "current_date")  # CURRENT_DATE without parentheses
            if word not in _KEYWORDS:
                return self.call(token)
        self.fail(token)

    def case(self) -> _Node:
        subject = None if self.at("when") else self.expression()
        whens: list[tuple[_Node, _Node]] = []
        while self.accept("when"):
            when = self.expression()
            self.expect("then")
            whens.append((when, self.expression()))
        if not whens:
            self.fail(self.peek(), "expected WHEN")
        default = self.expression() if self.accept("else") else None
        self.expect("end")
        return _Case(subject, tuple(whens), default)

    def call(self, token: _Token) -> _Node:
        name = str(token.value)
        if not self.at("("):
            self.fail(token, "column names are not supported; write {{placeholder}} or a quoted string")
        special = {
            "cast": self.cast,
            "convert": self.cast,
            "date_add": self.date_add,
            "date_sub": self.date_add,
            "adddate": self.date_add,
            "subdate": self.date_add,
        }.get(name)
        if special is not None:
            return special(token)
        if name in _NOW_NAMES:
            self.expect("(")
            self.expect(")")
            return _Now(_NOW_NAMES[name], name in ("curdate", "current_date"))
        if name == "unix_timestamp" and self.at(")", ahead=1):
            self.pos += 2
            return _Call(name, _FUNCTIONS[name], (_Now("UNIX_TIMESTAMP()", False),))
        function = _FUNCTIONS.get(name)
        if function is None:
            raise ExpressionError(f"unknown function {token.text!r}", self.source, token.column)
        self.expect("(")
        args: list[_Node] = []
        if not self.accept(")"):
            args.append(self.expression())
            while self.accept(","):
                args.append(self.expression())
            self.expect(")")
        high = function.max_args
        if len(args) < function.min_args or (high is not None and len(args) > high):
            wanted = (
                str(function.min_args)
                if high == function.min_args
                else (f"{function.min_args} or more" if high is None else f"{function.min_args} to {high}")
            )
            raise ExpressionError(
                f"{name.upper()}() takes {wanted} arguments, got {len(args)}", self.source, token.column
            )
        return _Call(name, function, tuple(args))

    def cast(self, token: _Token) -> _Node:
        """CAST(x AS type) or CONVERT(x, type)."""
        name = str(token.value)
        self.expect("(")
        operand = self.expression()
        if name == "cast":
            self.expect("as")
        elif self.at("using"):
            self.fail(self.peek(), "CONVERT(x USING charset) is not supported")
        else:
            self.expect(",")
        type_token = self.advance()
        kind = str(type_token.value)
        if type_token.kind != "word" or kind not in _CAST_TYPES:
            self.fail(type_token, "expected a type: DECIMAL(p,s), SIGNED, UNSIGNED, CHAR, DATE or DATETIME")
        size: tuple[int, ...] = ()
        if kind in ("signed", "unsigned"):
            self.accept("integer", "int")
        elif kind == "decimal":
            precision, scale = 10, 0
            if self.accept("("):
                precision = self.size_number(1, 65)
                if self.accept(","):
                    scale = self.size_number(0, 30)
                    if scale > precision:
                        detail = f"DECIMAL scale {scale} exceeds precision {precision}"
                        self.fail(self.tokens[self.pos - 1], detail)
                self.expect(")")
            size = (precision, scale)
        elif kind == "char" and self.accept("("):
            size = (self.size_number(0, 65535),)
            self.expect(")")
        self.expect(")")
        return _Cast(operand, kind, size)

    def size_number(self, low: int, high: int) -> int:
        token = self.advance()
        value = token.value
        if (
            token.kind != "number"
            or not isinstance(value, Decimal)
            or value != value.to_integral_value()
            or not low <= value <= high
        ):
            self.fail(token, f"expected a whole number from {low} to {high}")
        return int(value)

    def date_add(self, token: _Token) -> _Node:
        """DATE_ADD(d, INTERVAL n unit) and DATE_SUB; ADDDATE/SUBDATE also take (d, days)."""
        name = str(token.value)
        self.expect("(")
        operand = self.expression()
        self.expect(",")
        sign = -1 if name in ("date_sub", "subdate") else 1
        if self.at("interval") or name in ("date_add", "date_sub"):
            if not self.at("interval"):
                self.fail(self.peek(), f"expected INTERVAL n unit as {name.upper()}()'s second argument")
            amount, unit = self.interval()
        else:
            amount, unit = self.expression(), "day"
        self.expect(")")
        return _DateAdd(operand, amount, unit, sign)


# ---------------------------------------------------------------- public surface


@dataclass(frozen=True)
class Expression:
    """A compiled `_function` expression; immutable and safe to share between threads."""

    source: str
    placeholders: tuple[str, ...]
    _root: _Node
    _now_name: str | None = None  # the first NOW()-like function in the source, if any

    @property
    def uses_now(self) -> bool:
        """True when the expression reads the run's time (NOW(), CURDATE(), CURRENT_DATE, ...)."""
        return self._now_name is not None

    def evaluate(self, resolve: Resolver, *, now: datetime | None = None) -> Value:
        """Evaluate with `resolve(name)` supplying each placeholder's raw text (or None).

        `now` is the run's window end, returned by NOW() and friends: a naive Asia/Shanghai datetime, or an
        aware one (converted to Asia/Shanghai). It is required when `uses_now` is true.
        """
        if now is not None:
            if not isinstance(now, datetime):
                raise TypeError(f"now must be a datetime, not {type(now).__name__}")
            if now.tzinfo is not None and now.utcoffset() is not None:
                now = now.astimezone(_SHANGHAI).replace(tzinfo=None)
            now = now.replace(microsecond=0, tzinfo=None)  # NOW() has whole seconds, as MySQL's default fsp 0
        elif self._now_name is not None:
            raise ExpressionError(
                f"{self._now_name} needs the run's time: call evaluate(resolve, now=window_end)", self.source
            )
        try:
            result = self._root.eval(_Env(resolve, now))
        except _EvalFailure as exc:
            raise ExpressionError(str(exc), self.source) from None
        except ArithmeticError as exc:  # a Decimal or date limit that no function caught
            raise ExpressionError(f"evaluation failed: {type(exc).__name__}", self.source) from None
        return _text(result) if isinstance(result, date) else result

    def __repr__(self) -> str:
        return f"Expression({self.source!r})"


def compile_expression(source: str) -> Expression:
    """Parse `source` (the text after ``_function ``); raise ExpressionError on any syntax problem."""
    try:
        parser = _Parser(source)
        root = parser.parse()
    except RecursionError:
        raise ExpressionError("expression is nested too deeply", source) from None
    if _depth_exceeds(root, _MAX_DEPTH):
        raise ExpressionError(f"expression is nested more than {_MAX_DEPTH} levels deep", source)
    placeholders: dict[str, None] = {}  # ordered set
    for token in parser.tokens:
        if token.kind == "field":
            placeholders.setdefault(str(token.value), None)
        elif token.kind == "string":
            assert isinstance(token.value, tuple)
            for part in token.value:
                if isinstance(part, _Field):
                    placeholders.setdefault(part.name, None)
    now_name = next((n.name for n in _walk(root) if isinstance(n, _Now)), None)
    return Expression(source, tuple(placeholders), root, now_name)


def _walk(node: _Node) -> Iterator[_Node]:
    """`node` and all its descendants, in source order."""
    yield node
    for child in reversed(list(_children(node))):
        yield from _walk(child)
