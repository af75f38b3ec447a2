"""The value column of a mapping row: a constant, a ``{{template}}``, a ``_function`` or nothing.

Values are compiled once per scheme. Evaluation takes a ``resolve(name) -> str | None`` callable
that the caller builds for an order (header fields) or for one of its lines (entry fields).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from erpsync.mapping.expressions import PLACEHOLDER, Expression, ExpressionError, compile_expression

Resolve = Callable[[str], "str | None"]
Result = bool | Decimal | str | None

_FUNCTION_PREFIX = "_function "


@dataclass(frozen=True)
class Template:
    """Text with ``{{name}}`` placeholders. A template that is one placeholder keeps NULL as NULL."""

    source: str
    parts: tuple[tuple[bool, str], ...]  # (is_placeholder, literal text or placeholder name)

    @property
    def placeholders(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(text for is_name, text in self.parts if is_name))

    def evaluate(self, resolve: Resolve, now: datetime | None = None) -> Result:
        if len(self.parts) == 1 and self.parts[0][0]:
            return resolve(self.parts[0][1])
        return "".join((resolve(text) or "") if is_name else text for is_name, text in self.parts)


@dataclass(frozen=True)
class Constant:
    source: str
    placeholders: tuple[str, ...] = ()

    def evaluate(self, resolve: Resolve, now: datetime | None = None) -> Result:
        return self.source


@dataclass(frozen=True)
class Empty:
    """No value: the field is not sent, so Kingdee applies its default or computes it."""

    source: str = ""
    placeholders: tuple[str, ...] = ()

    def evaluate(self, resolve: Resolve, now: datetime | None = None) -> Result:
        return None


@dataclass(frozen=True)
class Function:
    expression: Expression

    @property
    def source(self) -> str:
        return _FUNCTION_PREFIX + self.expression.source

    @property
    def placeholders(self) -> tuple[str, ...]:
        return self.expression.placeholders

    def evaluate(self, resolve: Resolve, now: datetime | None = None) -> Result:
        """``now``: the run's window end, what NOW()/CURDATE() mean, so a rerun gives the same bill."""
        return self.expression.evaluate(resolve, now=now)


Value = Template | Constant | Empty | Function


def parse_template(text: str) -> Template:
    parts: list[tuple[bool, str]] = []
    position = 0
    for match in PLACEHOLDER.finditer(text):
        if match.start() > position:
            parts.append((False, text[position : match.start()]))
        parts.append((True, match.group(1)))
        position = match.end()
    if position < len(text):
        parts.append((False, text[position:]))
    leftover = "".join(t for is_name, t in parts if not is_name)
    if "{{" in leftover or "}}" in leftover:
        raise ValueError(f"malformed placeholder in {text!r}: use {{{{field}}}} or {{{{list.field}}}}")
    return Template(text, tuple(parts))


def compile_value(text: str) -> Value:
    """Compile a mapping value; raises ValueError with the reason."""
    stripped = text.strip()
    if not stripped:
        return Empty()
    if stripped.startswith(_FUNCTION_PREFIX.strip()):
        body = stripped[len(_FUNCTION_PREFIX.strip()) :].strip()
        if not body:
            raise ValueError("_function has no expression")
        try:
            return Function(compile_expression(body))
        except ExpressionError as exc:
            raise ValueError(str(exc)) from None
    if "{{" in stripped or "}}" in stripped:
        return parse_template(stripped)
    return Constant(stripped)
