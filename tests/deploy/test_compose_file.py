"""docker-compose.yaml, Dockerfile and .env.example agree with each other and with the pinned files.

The default suite checks the file without any program beyond Python: against the Compose Specification's
JSON Schema (the copy the pinned check-jsonschema ships, read with jsonschema), resolved with
.env.example's values as Compose resolves it, with every service, volume and network it names declared
in each profile; the rest are the promises the README makes about the deployment. Broken copies show
that the checks refuse real mistakes.

Compose itself (Debian's docker-compose 1.29, no Docker daemon needed; .ci/run installs it) checks the
file and the same broken copies in the `deploy` group (make test-slow).
"""

from __future__ import annotations

import ast
import copy
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.compose import (
    COMMON,
    COMPOSE_FILE,
    ENV_EXAMPLE,
    REPO,
    airflow_environment,
    compose_schema,
    load,
    read_env_file,
    resolve,
    schema_errors,
    service_command,
)

DOCKERFILE = REPO / "Dockerfile"
EMULATORS = {"wdt-emulator", "kingdee-emulator"}
PROFILES = [[], ["emulators"], ["flower"]]
REFERENCE = re.compile(r"(?<!\$)\$\{(?P<name>[A-Za-z_]\w*)(?P<op>:?[-?])?[^}]*\}")
SECRET_NAME = re.compile(r"PASSWORD|SECRET|FERNET|JWT|TOKEN|APP_ID", re.IGNORECASE)

Mutation = Callable[[dict[str, Any]], object]


def _service(name: str, **changes: Any) -> Mutation:
    return lambda document: document["services"][name].update(changes)


# Broken copies of the file: (what is changed, what the check must say). Compose refuses each too
# (test_compose_refuses_the_broken_copies, in the deploy group).
SCHEMA_MISTAKES: dict[str, tuple[Mutation, str]] = {
    "ports as a string": (
        _service("airflow-apiserver", ports="8080"),
        "services.airflow-apiserver.ports: '8080' is not of type 'array'",
    ),
    "an unknown top-level key": (
        lambda d: d.update(servcies={}),
        "(top level): 'servcies' does not match any of the regexes: '^x-'",
    ),
    "a depends_on condition Compose lacks": (
        lambda d: d["services"]["airflow-worker"]["depends_on"].update(
            {"airflow-init": {"condition": "service_succeeded"}}
        ),
        "services.airflow-worker.depends_on.airflow-init.condition: 'service_succeeded' is not one of",
    ),
    "an unknown service key": (
        _service("redis", restart_policy={"condition": "any"}),
        "services.redis: Unevaluated properties are not allowed ('restart_policy' was unexpected)",
    ),
    "a list as an environment value": (
        _service("redis", environment={"REDIS_ARGS": ["--save", ""]}),
        "services.redis.environment.REDIS_ARGS: ['--save', ''] is not of type",
    ),
}
REFERENCE_MISTAKES: dict[str, tuple[Mutation, str]] = {
    "a dependency that is not a service": (
        lambda d: d["services"]["airflow-worker"]["depends_on"].update({"celery": {"condition": "service_started"}}),
        "airflow-worker depends on celery, which is not a service",
    ),
    "an undeclared named volume": (
        _service("redis", volumes=["redis-data:/data"]),
        "redis mounts the volume redis-data, which the top-level volumes lack",
    ),
}


def broken(mutate: Mutation) -> dict[str, Any]:
    """The compose file as read, with one mistake made."""
    document = copy.deepcopy(load())
    mutate(document)
    return document


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load()


def airflow_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in compose["services"].items() if name.startswith("airflow-") or name == "flower"}


# -- the Compose Specification, without Compose ---------------------------------------------------


def test_the_schema_is_the_compose_specification() -> None:
    schema = compose_schema()
    assert schema["title"] == "Compose Specification"
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["additionalProperties"] is False and set(schema["patternProperties"]) == {"^x-"}
    assert {"services", "volumes", "networks", "secrets", "configs"} <= set(schema["properties"])


def test_the_compose_specification_accepts_the_file(compose: dict[str, Any]) -> None:
    assert schema_errors(compose) == []
    # and as Compose checks it, resolved with .env.example's values (a variable the file needs and
    # .env.example lacks is a KeyError here; Compose would put an empty string and warn "is not set")
    assert schema_errors(resolve(compose)) == []


@pytest.mark.parametrize("mistake", SCHEMA_MISTAKES)
def test_the_schema_refuses_a_broken_copy(mistake: str) -> None:
    mutate, expected = SCHEMA_MISTAKES[mistake]
    errors = schema_errors(broken(mutate))
    assert len(errors) == 1 and errors[0].startswith(expected), errors


def reference_errors(document: dict[str, Any], profiles: list[str]) -> list[str]:
    """What Compose refuses beyond the schema, with ``profiles`` enabled: a dependency on a service that
    is not there or not started, a named volume or network the top-level sections lack, a build
    context that is not a folder with a Dockerfile."""
    services = document["services"]
    active = {name for name, s in services.items() if not s.get("profiles") or set(s["profiles"]) & set(profiles)}
    volumes, networks = set(document.get("volumes") or {}), set(document.get("networks") or {}) | {"default"}
    errors = []
    for name in sorted(active):
        service = services[name]
        for dependency in service.get("depends_on") or []:
            if dependency not in services:
                errors.append(f"{name} depends on {dependency}, which is not a service")
            elif dependency not in active:
                errors.append(f"{name} depends on {dependency}, which the profiles {profiles} do not start")
        for mount in service.get("volumes") or []:
            source = (
                mount.get("source")
                if isinstance(mount, dict) and mount.get("type") == "volume"
                else (mount.split(":", 1)[0] if isinstance(mount, str) and ":" in mount else None)
            )
            if source and not source.startswith(("/", ".", "~", "$")) and source not in volumes:
                errors.append(f"{name} mounts the volume {source}, which the top-level volumes lack")
        for network in service.get("networks") or []:
            if network not in networks:
                errors.append(f"{name} joins the network {network}, which the top-level networks lack")
        build = service.get("build")
        if build is not None:
            context = REPO / (build if isinstance(build, str) else build.get("context", "."))
            dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
            if not (context / dockerfile).is_file():
                errors.append(f"{name} builds {context / dockerfile}, which is not a file")
    return errors


@pytest.mark.parametrize("profiles", PROFILES)
def test_every_reference_resolves_in_each_profile(compose: dict[str, Any], profiles: list[str]) -> None:
    assert reference_errors(compose, profiles) == []


@pytest.mark.parametrize("mistake", REFERENCE_MISTAKES)
def test_the_reference_check_refuses_a_broken_copy(mistake: str) -> None:
    mutate, expected = REFERENCE_MISTAKES[mistake]
    assert reference_errors(broken(mutate), []) == [expected]


def test_a_plain_up_starts_nothing_that_needs_a_profile() -> None:
    # Compose 1.29's `config` lets this pass; `up` would not start the worker
    document = broken(
        lambda d: d["services"]["airflow-worker"]["depends_on"].update(
            {"wdt-emulator": {"condition": "service_healthy"}}
        )
    )
    assert reference_errors(document, ["emulators"]) == []
    assert reference_errors(document, []) == [
        "airflow-worker depends on wdt-emulator, which the profiles [] do not start"
    ]


def test_emulators_only_with_their_profile(compose: dict[str, Any]) -> None:
    profiles = {name: service.get("profiles", []) for name, service in compose["services"].items()}
    assert {name for name, p in profiles.items() if "emulators" in p} == EMULATORS
    assert all(profiles[name] == ["emulators"] for name in EMULATORS)
    # everything else starts with a plain `docker compose up` (Flower has its own profile)
    assert {name for name, p in profiles.items() if p} == EMULATORS | {"flower"}
    assert profiles["flower"] == ["flower"]
    for name, service in compose["services"].items():
        emulator = any(str(part).startswith("emulators.") for part in service.get("command", []))
        assert (name in EMULATORS) == emulator, name


def test_every_airflow_service_runs_the_same_image_and_settings(compose: dict[str, Any]) -> None:
    common = compose[COMMON]
    assert common["build"] == "." and common["image"]
    services = airflow_services(compose)
    assert set(services) >= {
        "airflow-apiserver",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
        "airflow-worker",
        "airflow-init",
        "flower",
    }
    for name, service in services.items():
        assert (service["build"], service["image"], service["user"]) == (
            common["build"],
            common["image"],
            common["user"],
        ), name
        missing = {k: v for k, v in common["environment"].items() if service["environment"].get(k) != v}
        assert not missing, f"{name} lacks or changes the common settings {sorted(missing)}"
        assert set(common["volumes"]) <= set(service["volumes"]), name
        for dependency in ("postgres", "redis"):
            assert service["depends_on"][dependency] == {"condition": "service_healthy"}, name
    for name, service in compose["services"].items():  # the emulators run the same build
        if name in EMULATORS:
            assert (service["build"], service["image"]) == (common["build"], common["image"]), name


def test_common_settings(compose: dict[str, Any]) -> None:
    env = compose[COMMON]["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
    assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis:6379/")
    # the driver named: SQLAlchemy 2.1 takes a bare postgresql:// for psycopg 3, which is not installed
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql+psycopg2://")
    assert env["AIRFLOW__CORE__AUTH_MANAGER"].endswith(".SimpleAuthManager")
    assert env["AIRFLOW__CORE__DEFAULT_TIMEZONE"] == "Asia/Shanghai"
    assert env["AIRFLOW__CORE__TEST_CONNECTION"] == "Enabled"
    assert env["AIRFLOW__CORE__SENSITIVE_VAR_CONN_NAMES"] == "app_id"
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    assert env["AIRFLOW__ERPSYNC__WDT_RATE_LIMIT_URL"] == "redis://redis:6379/1"
    assert env["GX_ANALYTICS_ENABLED"] == "false"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
    # the same filter as the local runs: scripts/demo.py's airflow_env, read without importing erpsync
    demo = ast.parse((REPO / "scripts" / "demo.py").read_text(encoding="utf-8"))
    filters = [
        node.values[node.keys.index(key)]
        for node in ast.walk(demo)
        if isinstance(node, ast.Dict)
        for key in node.keys
        if isinstance(key, ast.Constant) and key.value == "PYTHONWARNINGS"
    ]
    assert len(filters) == 1 and env["PYTHONWARNINGS"] == ast.literal_eval(filters[0])


def test_init_runs_the_deploy_script_and_the_others_wait_for_it(compose: dict[str, Any]) -> None:
    services = airflow_services(compose)
    assert service_command("airflow-init") == ["python", "scripts/deploy_init.py"]
    assert (REPO / "scripts" / "deploy_init.py").is_file()
    assert services["airflow-init"].get("restart") == "no"
    for name, service in services.items():
        if name != "airflow-init":
            assert service["depends_on"]["airflow-init"] == {"condition": "service_completed_successfully"}, name
    # workers need the Task Execution API of the api-server
    assert services["airflow-worker"]["depends_on"]["airflow-apiserver"] == {"condition": "service_healthy"}


def test_commands() -> None:
    assert service_command("airflow-worker") == ["airflow", "celery", "worker"]
    assert service_command("airflow-scheduler") == ["airflow", "scheduler"]
    assert service_command("airflow-apiserver") == ["airflow", "api-server"]
    wdt = service_command("wdt-emulator", variables={"WDT_APP_KEY": "k", "WDT_APP_SECRET": "s", "WDT_SID": "shop"})
    assert wdt[:3] == ["python", "-m", "emulators.wdt"]
    assert wdt[wdt.index("--app-key") + 1] == "k" and wdt[wdt.index("--target-app-key") + 1] == "21363512"


def test_healthchecks(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if name != "airflow-init":  # one-shot: its exit status is its health
            assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"


def test_workers_scale(compose: dict[str, Any]) -> None:
    worker = compose["services"]["airflow-worker"]
    # a published port (the log server's 8793), a fixed name or hostname would collide between replicas
    assert not {"ports", "container_name", "hostname"} & set(worker), "airflow-worker cannot be scaled"
    assert worker["environment"]["DUMB_INIT_SETSID"] == "0"


def test_staging_on_a_shared_volume(compose: dict[str, Any]) -> None:
    env = airflow_environment()
    assert env["AIRFLOW__ERPSYNC__STAGING_ROOT"] == "file:///opt/airflow/staging"
    assert "erpsync-staging:/opt/airflow/staging" in compose[COMMON]["volumes"]
    assert "erpsync-staging" in compose["volumes"]


def test_env_example_defines_every_required_variable() -> None:
    lines = COMPOSE_FILE.read_text(encoding="utf-8").splitlines()
    text = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
    defined = read_env_file()
    required = {m["name"] for m in REFERENCE.finditer(text) if m["op"] not in ("-", ":-")}
    assert required, "the compose file needs its secrets from .env"
    assert not required - set(defined), f".env.example lacks {sorted(required - set(defined))}"
    # and documents nothing the file does not use
    used = {m["name"] for m in REFERENCE.finditer(text)}
    assert not set(defined) - used, (
        f".env.example sets variables docker-compose.yaml never reads: {sorted(set(defined) - used)}"
    )


def test_no_secret_in_the_compose_file(compose: dict[str, Any]) -> None:
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    example = read_env_file()
    for name, value in example.items():
        if SECRET_NAME.search(name):
            assert value not in text, f"the value of {name} is written in docker-compose.yaml"
    sections = [compose[COMMON], *compose["services"].values()]
    for section in sections:
        for key, value in (section.get("environment") or {}).items():
            value = str(value)
            if SECRET_NAME.search(key) and not key.endswith("_FILE"):
                # a secret comes from .env whole, with no default to fall back on
                assert re.fullmatch(r"\$\{[A-Za-z_]\w*(:-)?\}", value), f"{key}: {value!r} is not a ${{VAR}}"
            for password in re.findall(r"://[^:/@]+:([^@]*)@", value):
                assert re.fullmatch(r"\$\{[A-Za-z_]\w*\}", password), f"{key} has a password written in"


def test_airflow_environment_interpolates_and_substitutes() -> None:
    env = airflow_environment(
        {
            "postgres:5432": "127.0.0.1:54321",
            "redis:6379": "127.0.0.1:63790",
            "airflow-apiserver:8080": "127.0.0.1:18080",
        },
        variables={
            "POSTGRES_PASSWORD": "pw",
            "AIRFLOW_FERNET_KEY": "f",
            "AIRFLOW_JWT_SECRET": "j",
            "AIRFLOW_API_SECRET_KEY": "a",
        },
    )
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == "postgresql+psycopg2://airflow:pw@127.0.0.1:54321/airflow"
    assert env["AIRFLOW__ERPSYNC__WDT_RATE_LIMIT_URL"] == "redis://127.0.0.1:63790/1"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:18080/execution/"
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] == "admin:admin"  # the file's default
    init = airflow_environment(service="airflow-init")
    assert init["WDT_APP_KEY"] == read_env_file()["WDT_APP_KEY"] and "AIRFLOW__CORE__EXECUTOR" in init
    with pytest.raises(KeyError, match="POSTGRES_PASSWORD"):
        airflow_environment(variables={})
    with pytest.raises(ValueError, match="postgres:5433"):
        airflow_environment({"postgres:5433": "x"})


def test_dockerfile_matches_the_pins() -> None:
    dockerfile = DOCKERFILE.read_text(encoding="utf-8")
    requirements = (REPO / "requirements.txt").read_text(encoding="utf-8")
    pins = dict(re.findall(r"^([A-Za-z0-9_.\-]+)==(\S+)", requirements, re.MULTILINE))
    names = [line.split("#")[0].strip() for line in requirements.splitlines() if line.split("#")[0].strip()]
    assert all("==" in name for name in names), "requirements.txt pins every package"
    base = re.search(r"^FROM apache/airflow:(\S+)-python(\S+)$", dockerfile, re.MULTILINE)
    assert base, "the image builds on apache/airflow:<version>-python<version>"
    assert base[1] == pins["apache-airflow"], "the Dockerfile's FROM and requirements.txt name different Airflows"
    assert base[2] == "3.11", "constraints.txt is resolved for Python 3.11"
    # it installs exactly the pinned files, with the lock file
    assert re.search(r"^COPY .*\brequirements\.txt constraints\.txt /opt/airflow/$", dockerfile, re.MULTILINE)
    assert "pip install --no-cache-dir -r /opt/airflow/requirements.txt -c /opt/airflow/constraints.txt" in dockerfile
    dev = (REPO / "requirements-dev.txt").read_text(encoding="utf-8")
    setuptools = re.search(r"^setuptools==(\S+)", dev, re.MULTILINE)
    assert setuptools and f"setuptools=={setuptools[1]}" in dockerfile, (
        "the build backend as pinned in requirements-dev.txt"
    )
    for line in dockerfile.splitlines():  # nothing unpinned slips in
        if "pip install" in line:
            words = line.split("pip install", 1)[1].split()
            packages = [
                w for w in words if not w.startswith("-") and w not in ("\\", "&&") and not w.startswith("/opt/airflow")
            ]
            assert all("==" in p for p in packages), line
    # every copied path exists, and local state stays out of the build context
    for source in re.findall(r"^COPY --chown=\S+ (.+) \S+$", dockerfile, re.MULTILINE):
        for path in source.split():
            assert (REPO / path).exists(), path
    ignored = (REPO / ".dockerignore").read_text(encoding="utf-8").split()
    assert {".env", ".venv/", ".git/", ".airflow/", ".airflow-live/", ".demo/", "staging/", "artifacts/"} <= set(
        ignored
    )
    assert ".env" in (REPO / ".gitignore").read_text(encoding="utf-8").split()


# -- Compose itself: Debian's docker-compose 1.29 (deploy group: make test-slow, .ci/run installs it) ----


def docker_compose(*args: str, file: Path = COMPOSE_FILE) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail(
            "docker-compose is not installed: `apt-get install -y --no-install-recommends docker-compose` "
            "(Debian's 1.29; .ci/run installs it)"
        )
    # only PATH: a variable of the caller's shell would win over .env.example and hide a missing one
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")}
    return subprocess.run(
        [binary, "-f", str(file), "--env-file", str(ENV_EXAMPLE), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.deploy
@pytest.mark.parametrize("profiles", PROFILES)
def test_compose_accepts_the_file(profiles: list[str]) -> None:
    options = [word for profile in profiles for word in ("--profile", profile)]
    result = docker_compose(*options, "config", "-q")
    assert result.returncode == 0, f"docker-compose config {' '.join(options)}:\n{result.stderr}"
    # Compose only warns about a variable .env.example lacks, and puts an empty string
    assert "is not set" not in result.stderr, result.stderr


@pytest.mark.deploy
def test_compose_resolves_the_file_as_read_here(compose: dict[str, Any]) -> None:
    # the profiles and environments the checks above read with PyYAML (anchors, `<<` merges) are
    # Compose's own (its 1.29 lists every service under `config`, profile or not)
    result = docker_compose("config")
    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load(result.stdout)["services"]
    assert set(resolved) == set(compose["services"])
    for name, service in compose["services"].items():
        assert resolved[name].get("profiles", []) == service.get("profiles", []), name
    for name in airflow_services(compose):
        assert resolved[name]["environment"] == airflow_environment(service=name), name


@pytest.mark.deploy
@pytest.mark.parametrize("mistake", [None, *SCHEMA_MISTAKES, *REFERENCE_MISTAKES])
def test_compose_refuses_the_broken_copies(mistake: str | None, tmp_path: Path) -> None:
    mutations = {**SCHEMA_MISTAKES, **REFERENCE_MISTAKES}
    document = broken(mutations[mistake][0]) if mistake else load()
    copy_file = tmp_path / "docker-compose.yaml"  # None: the copy as written here is accepted
    copy_file.write_text(yaml.safe_dump(document, sort_keys=False, allow_unicode=True), encoding="utf-8")
    result = docker_compose("config", "-q", file=copy_file)
    assert (result.returncode != 0) == bool(mistake), result.stderr
