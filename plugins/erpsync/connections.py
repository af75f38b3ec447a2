"""Reading an Airflow connection's fields with errors that name the connection and the field."""

from __future__ import annotations

from typing import Any


class ConnectionConfigError(ValueError):
    pass


def required(conn_id: str, name: str, value: Any) -> str:
    if value in (None, ""):
        raise ConnectionConfigError(f"connection {conn_id!r}: {name} is empty")
    return str(value)


def extra_value(conn_id: str, extra: dict[str, Any], key: str, default: Any = ...) -> Any:
    if key not in extra or extra[key] in (None, ""):
        if default is ...:
            raise ConnectionConfigError(f"connection {conn_id!r}: extra field {key!r} is missing")
        return default
    return extra[key]


def number(conn_id: str, extra: dict[str, Any], key: str, default: float, kind: type = float) -> Any:
    """An optional numeric extra field; a value that is not a number is a configuration error.

    An empty value (``null`` or ``""``) counts as absent: the connection form writes one for a blank field.
    """
    value = extra.get(key)
    if value in (None, ""):
        value = default
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise ConnectionConfigError(f"connection {conn_id!r}: extra.{key} must be a number, got {value!r}") from None


def connection_test_failure(conn_id: str, exc: Exception) -> tuple[bool, str]:
    """``(False, message)`` for Airflow's "Test connection", without the connection's id: the UI tests a
    copy stored under a random id, which would only confuse. Our messages never hold a secret.
    """
    return False, str(exc).removeprefix(f"connection {conn_id!r}: ")
