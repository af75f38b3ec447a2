"""Safe evaluator for ``_function`` mapping expressions.

A mapping value such as ``_function case '{{batch_details.sell_price}}' when '0' then true else false end``
carries a small MySQL-flavoured SQL expression. This module handles the text after the ``_function ``
prefix. The text is parsed once, when the scheme loads (:func:`compile_expression`). It is evaluated once
per order or line (:meth:`Expression.evaluate`). The code has a tokenizer, a recursive-descent parser and
an AST that evaluates itself. It never calls ``eval`` and never re-parses text after a value is spliced
in, so a field value such as ``x' or 1=1 --`` stays plain data.

Grammar (keywords and function names are case-insensitive; loosest binding first, as in MySQL)::

    expression  := or
    or          := and ( OR and )*
    and         := not ( AND not )*
    not         := NOT not | comparison
    comparison  := predicate ( cmp_op predicate | IS [NOT] (NULL | TRUE | FALSE) )*
    cmp_op      := '=' | '<=>' | '!=' | '<>' | '<' | '<=' | '>' | '>='
    predicate   := additive [ [NOT] IN '(' expression (',' expression)* ')'
                            | [NOT] BETWEEN additive AND additive
                            | [NOT] LIKE additive ]
    additive    := term ( ('+' | '-') term )*
    term        := unary ( ('*' | '/') unary )*
    unary       := '-' unary | primary
    primary     := number | string | placeholder | TRUE | FALSE | NULL | '(' expression ')'
                 | CASE [expression] (WHEN expression THEN expression)+ [ELSE expression] END
                 | function '(' [expression (',' expression)*] ')'
    placeholder := '{{' name '}}'      name: dotted identifiers such as batch_details.sell_price;
                                       spaces inside the braces are allowed

Functions: IF(c,a,b), IFNULL(a,b), COALESCE(a,...), CONCAT(a,...), ROUND(x[,n]), ABS(x), UPPER(s),
LOWER(s), TRIM(s), LENGTH(s), CHAR_LENGTH(s), SUBSTRING(s,pos[,len]) (alias SUBSTR), REPLACE(s,from,to),
LEFT(s,n), RIGHT(s,n). An unknown function or a wrong number of arguments fails at compile time.

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
* **Rejected syntax** (compile error with a hint, never a silent reinterpretation): ``||`` (OR or
  concatenation depending on sql_mode), ``&&``, ``!``, ``==``, SQL comments (``-- ``, ``#``, ``/*``),
  bare column names, ``%``/``DIV``/``MOD`` and function forms such as ``TRIM(x FROM y)``.
* **Errors.** Every error is an :class:`ExpressionError` (a ``ValueError``). The message quotes the whole
  expression and, at compile time, the 1-based column of the offending token, for example
  ``unexpected token 'then' at column 34 in: case ...``. Expressions nested more than
  ``_MAX_DEPTH`` levels are rejected at compile time, so evaluation never exhausts the stack.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from decimal import ROUND_HALF_UP, Context, Decimal, DivisionByZero, InvalidOperation, Overflow
from functools import lru_cache
from typing import Final, NoReturn

__all__ = ["Expression", "ExpressionError", "Resolver", "Value", "compile_expression"]

Value = bool | Decimal | str | None
_Arg = bool | Decimal | str  # a non-NULL value
Resolver = Callable[[str], "str | None"]

_MAX_DEPTH: Final = 100
_CTX: Final = Context(prec=65, rounding=ROUND_HALF_UP, traps=[InvalidOperation, DivisionByZero, Overflow])
_NUMERIC_TEXT: Final = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_PLACEHOLDER: Final = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\s*\}\}")
_NUMBER: Final = re.compile(r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+")
_WORD: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPERATORS: Final = ("<=>", "<=", ">=", "<>", "!=", "(", ")", ",", "+", "-", "*", "/", "=", "<", ">")
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
    "and or not is null true false in like between case when then else end".split()
)


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
    text = value.strip()
    return Decimal(text) if _NUMERIC_TEXT.fullmatch(text) else None


def _number(value: _Arg, role: str = "a number") -> Decimal:
    number = _number_or_none(value)
    if number is None:
        raise _EvalFailure(f"cannot use non-numeric value '{value}' as {role}")
    return number


def _integer(value: _Arg) -> int:
    return int(_number(value, "a whole number").to_integral_value(rounding=ROUND_HALF_UP))


def _text(value: _Arg) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, Decimal):
        return format(value.copy_abs() if value.is_zero() else value, "f")
    return value


def _truth(value: Value) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    return not _number(value, "a condition (true/false)").is_zero()


def _compare(left: Value, right: Value) -> int | None:
    """-1, 0 or 1 under the numeric-else-string rule; None when either side is NULL."""
    if left is None or right is None:
        return None
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
    """Per-evaluation state: the resolver and the values it already returned."""

    __slots__ = ("_resolve", "_seen")

    def __init__(self, resolve: Resolver) -> None:
        self._resolve = resolve
        self._seen: dict[str, str | None] = {}

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

    def eval(self, env: _Env) -> Value:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class _Const(_Node):
    value: Value

    def eval(self, env: _Env) -> Value:
        return self.value


@dataclass(frozen=True, slots=True)
class _Field(_Node):
    name: str

    def eval(self, env: _Env) -> Value:
        return env.lookup(self.name)


@dataclass(frozen=True, slots=True)
class _Template(_Node):
    """A quoted literal with placeholders inside: the resolved texts are spliced in, NULL as ''."""

    parts: tuple[str | _Field, ...]

    def eval(self, env: _Env) -> Value:
        return "".join(p if isinstance(p, str) else (env.lookup(p.name) or "") for p in self.parts)


@dataclass(frozen=True, slots=True)
class _Negate(_Node):
    operand: _Node

    def eval(self, env: _Env) -> Value:
        value = self.operand.eval(env)
        return None if value is None else _CTX.minus(_number(value))


@dataclass(frozen=True, slots=True)
class _Not(_Node):
    operand: _Node

    def eval(self, env: _Env) -> Value:
        truth = _truth(self.operand.eval(env))
        return None if truth is None else not truth


@dataclass(frozen=True, slots=True)
class _Logic(_Node):
    op: str  # "and" | "or"
    left: _Node
    right: _Node

    def eval(self, env: _Env) -> Value:
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

    def eval(self, env: _Env) -> Value:
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

    def eval(self, env: _Env) -> Value:
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

    def eval(self, env: _Env) -> Value:
        value = self.operand.eval(env)
        hit = value is None if self.target is None else _truth(value) is self.target
        return hit is not self.negated


@dataclass(frozen=True, slots=True)
class _In(_Node):
    operand: _Node
    items: tuple[_Node, ...]
    negated: bool

    def eval(self, env: _Env) -> Value:
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

    def eval(self, env: _Env) -> Value:
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

    def eval(self, env: _Env) -> Value:
        value, pattern = self.operand.eval(env), self.pattern.eval(env)
        if value is None or pattern is None:
            return None
        return (_like_regex(_text(pattern)).fullmatch(_text(value)) is not None) is not self.negated


@dataclass(frozen=True, slots=True)
class _Case(_Node):
    subject: _Node | None  # None for a searched CASE
    whens: tuple[tuple[_Node, _Node], ...]
    default: _Node | None

    def eval(self, env: _Env) -> Value:
        subject = None if self.subject is None else self.subject.eval(env)
        for when, then in self.whens:
            value = when.eval(env)
            hit = _truth(value) is True if self.subject is None else _compare(subject, value) == 0
            if hit:
                return then.eval(env)
        return None if self.default is None else self.default.eval(env)


# ---------------------------------------------------------------- functions


@dataclass(frozen=True, slots=True)
class _Function:
    min_args: int
    max_args: int | None
    impl: Callable[..., Value]
    lazy: bool = False  # lazy: impl(env, *nodes), sees NULLs; otherwise impl(*values) and NULL in -> NULL


def _if(env: _Env, cond: _Node, then: _Node, other: _Node) -> Value:
    return then.eval(env) if _truth(cond.eval(env)) is True else other.eval(env)


def _coalesce(env: _Env, *args: _Node) -> Value:
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
}


@dataclass(frozen=True, slots=True)
class _Call(_Node):
    name: str
    function: _Function
    args: tuple[_Node, ...]

    def eval(self, env: _Env) -> Value:
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
            match = _PLACEHOLDER.match(source, i)
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
            match = _PLACEHOLDER.match(source, i)
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
        node = self.term()
        while self.at("+", "-"):
            op = str(self.advance().value)
            node = _Arith(op, node, self.term())
        return node

    def term(self) -> _Node:
        node = self.unary()
        while self.at("*", "/"):
            op = str(self.advance().value)
            node = _Arith(op, node, self.unary())
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
            wanted = str(function.min_args) if high == function.min_args else (
                f"{function.min_args} or more" if high is None else f"{function.min_args} to {high}"
            )
            raise ExpressionError(
                f"{name.upper()}() takes {wanted} arguments, got {len(args)}", self.source, token.column
            )
        return _Call(name, function, tuple(args))


# ---------------------------------------------------------------- public surface


@dataclass(frozen=True)
class Expression:
    """A compiled `_function` expression; immutable and safe to share between threads."""

    source: str
    placeholders: tuple[str, ...]
    _root: _Node

    def evaluate(self, resolve: Resolver) -> Value:
        """Evaluate with `resolve(name)` supplying each placeholder's raw text (or None)."""
        try:
            return self._root.eval(_Env(resolve))
        except _EvalFailure as exc:
            raise ExpressionError(str(exc), self.source) from None

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
    return Expression(source, tuple(placeholders), root)
