"""Prepare an Airflow deployment of erpsync: the `airflow-init` service of docker-compose.yaml.

    python scripts/deploy_init.py

Runs the Airflow of this interpreter (``python -m airflow``) with the current environment, so it works
the same in the image and outside Docker with plain environment variables; idempotent:

1. ``airflow db migrate``;
2. ``airflow pools import include/pools.json`` (``ERPSYNC_POOLS_FILE`` to use another file);
3. the connections ``wdt_default`` and ``kingdee_default`` from the variables below, through
   ``airflow connections import --overwrite`` of a JSON file readable only by this user that is deleted
   right after. A connection none of whose required variables is set is skipped (one made in the UI
   stays as it is); one with only some of them set is an error;
4. with ``AIRFLOW_UI_PASSWORDS`` (``user:password,…``), those passwords in the SimpleAuthManager's
   passwords file (``[core] simple_auth_manager_passwords_file``) for users of
   ``[core] simple_auth_manager_users``; the api-server generates the others.

wdt_default:      WDT_GATEWAY_URL, WDT_APP_KEY, WDT_APP_SECRET, WDT_SID (required);
                  WDT_TRANSPORT (qimen | openapi2; default qimen: WDT_GATEWAY_URL is then the Qimen
                  gateway, with openapi2 WDT's openapi2 base URL and WDT_APP_KEY/SECRET WDT's appkey),
                  WDT_TARGET_APP_KEY (21363512, Qimen only), WDT_MIN_INTERVAL_SECONDS (the hook's default, 1)
kingdee_default:  KINGDEE_URL, KINGDEE_ACCT_ID, KINGDEE_USERNAME, KINGDEE_APP_SECRET (required);
                  KINGDEE_AUTH (signature | password | app_secret; default signature),
                  KINGDEE_APP_ID (required for signature), KINGDEE_LCID (2052)

An empty variable counts as unset (compose passes ``${VAR:-}``). No secret is printed: the output of
the Airflow commands is shown with every secret value replaced by ``***``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[1]
DEFAULT_TARGET_APP_KEY = "21363512"
WDT_TRANSPORTS = ("qimen", "openapi2")
KINGDEE_AUTH_MODES = ("signature", "password", "app_secret")
KINGDEE_LCIDS = (2052, 1033, 3076)
# settings whose whole value is secret, and settings that are URLs which may carry a password
SECRET_VARIABLES = (
    "WDT_APP_SECRET",
    "KINGDEE_APP_SECRET",
    "KINGDEE_APP_ID",
    "AIRFLOW__CORE__FERNET_KEY",
    "AIRFLOW__API_AUTH__JWT_SECRET",
    "AIRFLOW__API__SECRET_KEY",
)
URL_VARIABLES = (
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
    "AIRFLOW__CELERY__RESULT_BACKEND",
    "AIRFLOW__CELERY__BROKER_URL",
    "AIRFLOW__ERPSYNC__WDT_RATE_LIMIT_URL",
)


class InitError(Exception):
    """A setting is wrong; the message names the variable, never a secret value."""


def say(text: str) -> None:
    print(f"deploy_init: {text}", flush=True)


def _get(env: Mapping[str, str], name: str) -> str:
    return env.get(name, "").strip()


def _required(env: Mapping[str, str], conn_id: str, names: Iterable[str]) -> bool:
    """True when every variable is set, False when none is; an error when only some are."""
    names = list(names)
    missing = [n for n in names if not _get(env, n)]
    if not missing:
        return True
    if len(missing) == len(names):
        say(f"{conn_id}: skipped, {', '.join(names)} not set (a connection already in Airflow is left as it is)")
        return False
    present = ", ".join(n for n in names if n not in missing)
    raise InitError(
        f"{conn_id}: {', '.join(missing)} not set, while {present} are: "
        "set all of them, or none to leave the connection alone"
    )


def wdt_connection(env: Mapping[str, str]) -> dict[str, str] | None:
    """The wdt_default connection (the shape `airflow connections import` reads), or None to skip it."""
    if not _required(env, "wdt_default", ("WDT_GATEWAY_URL", "WDT_APP_KEY", "WDT_APP_SECRET", "WDT_SID")):
        return None
    transport = _get(env, "WDT_TRANSPORT") or "qimen"
    if transport not in WDT_TRANSPORTS:
        raise InitError(f"WDT_TRANSPORT: {transport!r} is not one of {', '.join(WDT_TRANSPORTS)}")
    extra: dict[str, object] = {"transport": transport, "sid": _get(env, "WDT_SID")}
    if transport == "qimen":
        extra["target_app_key"] = _get(env, "WDT_TARGET_APP_KEY") or DEFAULT_TARGET_APP_KEY
    if interval := _get(env, "WDT_MIN_INTERVAL_SECONDS"):
        try:
            seconds = float(interval)
        except ValueError:
            raise InitError(f"WDT_MIN_INTERVAL_SECONDS: {interval!r} is not a number of seconds") from None
        if seconds < 0:
            raise InitError(f"WDT_MIN_INTERVAL_SECONDS: {interval!r} is negative")
        extra["min_interval_seconds"] = seconds
    return {
        "conn_type": "wdt",
        "host": _get(env, "WDT_GATEWAY_URL"),
        "login": _get(env, "WDT_APP_KEY"),
        "password": _get(env, "WDT_APP_SECRET"),
        "extra": json.dumps(extra, ensure_ascii=False),
    }


def kingdee_connection(env: Mapping[str, str]) -> dict[str, str] | None:
    """The kingdee_default connection, or None to skip it."""
    auth = _get(env, "KINGDEE_AUTH") or "signature"
    if auth not in KINGDEE_AUTH_MODES:
        raise InitError(f"KINGDEE_AUTH: {auth!r} is not one of {', '.join(KINGDEE_AUTH_MODES)}")
    names = ["KINGDEE_URL", "KINGDEE_ACCT_ID", "KINGDEE_USERNAME", "KINGDEE_APP_SECRET"]
    if auth == "signature":  # signed requests need the app id; the session logins do not
        names.append("KINGDEE_APP_ID")
    if not _required(env, "kingdee_default", names):
        return None
    lcid_text = _get(env, "KINGDEE_LCID") or "2052"
    if not lcid_text.isdigit() or int(lcid_text) not in KINGDEE_LCIDS:
        raise InitError(f"KINGDEE_LCID: {lcid_text!r} is not one of {', '.join(map(str, KINGDEE_LCIDS))}")
    extra: dict[str, object] = {"acct_id": _get(env, "KINGDEE_ACCT_ID"), "auth": auth, "lcid": int(lcid_text)}
    if app_id := _get(env, "KINGDEE_APP_ID"):
        extra["app_id"] = app_id
    return {
        "conn_type": "kingdee",
        "host": _get(env, "KINGDEE_URL"),
        "login": _get(env, "KINGDEE_USERNAME"),
        "password": _get(env, "KINGDEE_APP_SECRET"),
        "extra": json.dumps(extra, ensure_ascii=False),
    }


def ui_passwords(env: Mapping[str, str]) -> dict[str, str]:
    """``AIRFLOW_UI_PASSWORDS`` (``user:password,user2:password2``) as a mapping."""
    passwords: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in _get(env, "AIRFLOW_UI_PASSWORDS").split(","))):
        user, sep, password = item.partition(":")
        if not sep or not user.strip() or not password:
            # the item may be a bare password: name only its position
            raise InitError(f"AIRFLOW_UI_PASSWORDS: item {len(passwords) + 1} is not user:password")
        passwords[user.strip()] = password
    return passwords


def secret_values(env: Mapping[str, str]) -> list[str]:
    """Every secret value the environment holds, longest first (for redaction)."""
    values = [_get(env, name) for name in SECRET_VARIABLES]
    for name in URL_VARIABLES:
        try:
            values.append(urlsplit(_get(env, name)).password or "")
        except ValueError:
            pass
    values += ui_passwords(env).values()
    return sorted({v for v in values if v}, key=len, reverse=True)


def redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def airflow(*args: str, secrets: Iterable[str]) -> None:
    """Run ``python -m airflow ARGS`` with this environment, its output shown redacted; fail if it fails."""
    secrets = list(secrets)
    say(f"airflow {' '.join(args)}")
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    )
    assert process.stdout is not None
    for line in process.stdout:
        sys.stdout.write(redact(line, secrets))
    sys.stdout.flush()
    if process.wait():
        raise InitError(f"`airflow {' '.join(args[:2])}` failed with exit code {process.returncode}")


def import_connections(connections: Mapping[str, Mapping[str, str]], secrets: Iterable[str]) -> None:
    """``airflow connections import --overwrite`` of a file that lives only for that call."""
    fd, name = tempfile.mkstemp(prefix="erpsync-connections-", suffix=".json")  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            json.dump(connections, file, ensure_ascii=False)
        airflow("connections", "import", "--overwrite", name, secrets=secrets)
    finally:
        os.unlink(name)


def write_ui_passwords(passwords: Mapping[str, str]) -> None:
    """Put the given users' passwords into the SimpleAuthManager's file, keeping the other users'."""
    from airflow.configuration import conf  # here: the other steps run Airflow in a child process

    manager = conf.get("core", "auth_manager")
    if not manager.endswith(".SimpleAuthManager"):
        raise InitError(f"AIRFLOW_UI_PASSWORDS is set, but [core] auth_manager is {manager}, not the SimpleAuthManager")
    from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager

    users = {user.username for user in SimpleAuthManager.get_users()}
    unknown = sorted(set(passwords) - users)
    if unknown:
        raise InitError(
            f"AIRFLOW_UI_PASSWORDS names {', '.join(unknown)}, not in "
            f"[core] simple_auth_manager_users ({', '.join(sorted(users))})"
        )
    path = Path(SimpleAuthManager.get_generated_password_file())
    path.parent.mkdir(parents=True, exist_ok=True)
    stored: dict[str, str] = {}
    if path.exists() and (text := path.read_text(encoding="utf-8").strip()):
        try:
            stored = json.loads(text)
        except json.JSONDecodeError:
            raise InitError(f"{path} is not the JSON the SimpleAuthManager writes; remove it") from None
    stored.update(passwords)
    # a new file beside the old, then renamed over it: the api-server never reads half a file
    fd, tmp = tempfile.mkstemp(prefix=".passwords-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(json.dumps(stored) + "\n")
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    say(f"UI login: password of {', '.join(sorted(passwords))} set from AIRFLOW_UI_PASSWORDS in {path}")


def main() -> int:
    env = os.environ  # also what the Airflow commands and the configuration read
    secrets: list[str] = []
    try:
        secrets = secret_values(env)
        pools = Path(_get(env, "ERPSYNC_POOLS_FILE") or REPO / "include" / "pools.json")
        # every setting is checked before anything is changed
        built = {"wdt_default": wdt_connection(env), "kingdee_default": kingdee_connection(env)}
        connections = {conn_id: conn for conn_id, conn in built.items() if conn}
        passwords = ui_passwords(env)
        if not pools.is_file():
            raise InitError(f"no pools file {pools}")

        airflow("db", "migrate", secrets=secrets)
        airflow("pools", "import", str(pools), secrets=secrets)
        if connections:
            import_connections(connections, secrets)
        if passwords:
            write_ui_passwords(passwords)
        else:
            say(
                "UI login: AIRFLOW_UI_PASSWORDS not set; the api-server generates a password for each user "
                "of [core] simple_auth_manager_users that has none, prints it once in its log and keeps it in "
                "[core] simple_auth_manager_passwords_file"
            )
    except InitError as error:
        # messages name variables, not values; redacted all the same
        say(f"ERROR: {redact(str(error), secrets)}")
        return 1
    say("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
