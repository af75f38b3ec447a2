"""docker-compose.yaml read from Python: what running its services without Docker needs.

    from tests.deploy.compose import airflow_environment, service_command

    env = airflow_environment({"postgres:5432": "127.0.0.1:54321", "redis:6379": "127.0.0.1:63790",
                               "airflow-apiserver:8080": "127.0.0.1:18080"}, service="airflow-init")
    service_command("airflow-worker")   # ['airflow', 'celery', 'worker']
    service_command("airflow-init")     # ['python', 'scripts/deploy_init.py'], run in the checkout

``${VAR}`` references are resolved as Compose resolves them, from ``variables`` (default: the demo
values of .env.example). Commands run in /opt/airflow in the image, laid out as the checkout, so their
relative paths hold when run with the repository as working directory.

    schema_errors(load())               # [] : the Compose Specification's JSON Schema accepts the file

The schema is the one the pinned check-jsonschema ships (requirements-dev.txt), read with jsonschema:
no docker-compose program needed.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import re
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from jsonschema import validators

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yaml"
ENV_EXAMPLE = REPO / ".env.example"
COMMON = "x-airflow-common"
# what the image's entrypoint runs as it is; any other first word is an `airflow` sub-command
_ENTRYPOINT_COMMANDS = ("airflow", "python", "bash")
_REFERENCE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_]\w*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}|(?P<plain>[A-Za-z_]\w*))"
)


def read_env_file(path: Path = ENV_EXAMPLE) -> dict[str, str]:
    """``KEY=value`` lines of an env file (comments and blank lines skipped; values taken as written)."""
    values: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_]\w*", key.strip()):
            raise ValueError(f"{path}:{number}: not KEY=value")
        values[key.strip()] = value.strip()
    return values


def interpolate(text: str, variables: Mapping[str, str]) -> str:
    """``text`` with ``$$``, ``$VAR``, ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?message}``
    and ``${VAR?message}`` resolved; a variable without a default that ``variables`` lacks is a KeyError
    (Compose would put an empty string and warn)."""

    def resolve(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["braced"] or match["plain"]
        op, arg = match["op"], match["arg"] or ""
        value = variables.get(name)
        unset = value is None or (op is not None and op.startswith(":") and value == "")
        if op in ("-", ":-"):
            return arg if unset else value  # type: ignore[return-value]
        if unset:
            raise KeyError(f"{name} is not set{': ' + arg if op in ('?', ':?') and arg else ''}")
        return value  # type: ignore[return-value]

    return _REFERENCE.sub(resolve, text)


def load(path: Path = COMPOSE_FILE) -> dict[str, Any]:
    """The compose file as YAML (anchors and ``<<`` merges resolved; ``${VAR}`` left as written)."""
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def resolve(document: Any, variables: Mapping[str, str] | None = None) -> Any:
    """``document`` (as :func:`load` reads it) with ``${VAR}`` resolved in every string value, as Compose
    interpolates the file before it checks it; keys are left alone, as Compose leaves them. A variable
    without a default that ``variables`` (default .env.example) lacks is a KeyError."""
    variables = read_env_file() if variables is None else variables
    if isinstance(document, dict):
        return {key: resolve(value, variables) for key, value in document.items()}
    if isinstance(document, list):
        return [resolve(value, variables) for value in document]
    return interpolate(document, variables) if isinstance(document, str) else document


@functools.cache
def compose_schema() -> dict[str, Any]:
    """The Compose Specification's JSON Schema, as the pinned check-jsonschema ships it (its vendored
    copy of the compose-spec project's schema/compose-spec.json)."""
    vendor = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    return json.loads(vendor.joinpath("compose-spec.json").read_bytes())


def schema_errors(document: Any) -> list[str]:
    """What the Compose Specification's JSON Schema finds wrong in ``document``, one ``path: message``
    each (empty: the schema accepts it). Of a ``oneOf`` that fails, the deepest reason is given, e.g.
    ``services.x.depends_on.y.condition: 'done' is not one of [...]`` rather than "not valid under any
    of the given schemas"."""
    schema = compose_schema()
    cls = validators.validator_for(schema)
    cls.check_schema(schema)
    found = []
    for error in cls(schema, format_checker=cls.FORMAT_CHECKER).iter_errors(document):
        while error.context:
            error = max(error.context, key=lambda e: len(e.absolute_path))
        found.append((tuple(map(str, error.absolute_path)), error.validator, error.message))
    # A property that fails its own schema fails the branch that declares it, and then every property of
    # that branch counts as unevaluated in the parent: a second report naming good properties. It is
    # left out while a reason below it stands (an unknown key among them shows once that is fixed).
    paths = [path for path, _, _ in found]
    return sorted(
        f"{'.'.join(path) or '(top level)'}: {message}"
        for path, validator, message in found
        if validator != "unevaluatedProperties"
        or not any(len(other) > len(path) and other[: len(path)] == path for other in paths)
    )


def _environment(section: Mapping[str, Any]) -> dict[str, str]:
    env = section.get("environment") or {}
    if isinstance(env, list):  # the KEY=value list form
        env = dict(item.partition("=")[::2] for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def airflow_environment(
    substitutions: Mapping[str, str] | None = None,
    *,
    service: str | None = None,
    variables: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of the Airflow services: ``x-airflow-common``'s, or ``service``'s own (which
    includes it, e.g. airflow-init's connection variables), resolved with ``variables`` (default
    .env.example).

    ``substitutions`` then replaces text in every value, e.g. ``{"postgres:5432": "127.0.0.1:54321",
    "file:///opt/airflow/staging": tmp.as_uri()}``: name hosts with their port so that only the
    address is replaced. A substitution that matches no value is a ValueError (a typo, or the file
    changed)."""
    compose = load()
    section = compose["services"][service] if service else compose[COMMON]
    variables = read_env_file() if variables is None else variables
    env = {key: interpolate(value, variables) for key, value in _environment(section).items()}
    substitutions = substitutions or {}
    unused = set(substitutions)
    for old in sorted(substitutions, key=len, reverse=True):  # longest first: "redis:6379" before "redis"
        for key, value in env.items():
            if old in value:
                env[key] = value.replace(old, substitutions[old])
                unused.discard(old)
    if unused:
        raise ValueError(f"substitutions match no value of the environment: {sorted(unused)}")
    return env


def service_command(name: str, *, variables: Mapping[str, str] | None = None) -> list[str]:
    """The argv ``name`` runs, as the image's entrypoint runs it (``airflow`` before a bare sub-command),
    resolved with ``variables`` (default .env.example)."""
    service = load()["services"][name]
    command = service["command"]
    argv = shlex.split(command) if isinstance(command, str) else [str(part) for part in command]
    variables = read_env_file() if variables is None else variables
    argv = [interpolate(part, variables) for part in argv]
    if "entrypoint" not in service and argv[0] not in _ENTRYPOINT_COMMANDS:
        argv.insert(0, "airflow")
    return argv
