"""The steps are generic: they read and write through the connector registry and never import a
connector, so a new flow on another API or form needs no change under ``steps/``."""

from __future__ import annotations

import ast
import json
import subprocess
import sys

from tests.conftest import REPO

STEPS = REPO / "plugins" / "erpsync" / "steps"
CONNECTORS = ("erpsync.wdt", "erpsync.kingdee")


def _imports(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module


def test_no_step_module_imports_a_connector():
    found = {(path.name, name) for path in STEPS.glob("*.py") for name in _imports(path) if name.startswith(CONNECTORS)}
    assert not found


def test_importing_the_steps_loads_no_connector_module():
    """Not directly, and not through what the steps import (run, scheme, mapping, staging…)."""
    code = (
        "import json, sys\n"
        "import erpsync.steps.extract, erpsync.steps.validate, erpsync.steps.transform, erpsync.steps.load\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.startswith({CONNECTORS!r}))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def test_the_registry_names_the_connector_of_each_system():
    from erpsync.connectors import source_connector, target_connector

    assert source_connector("wdt").__name__ == "erpsync.wdt.connector"
    assert target_connector("kingdee").__name__ == "erpsync.kingdee.connector"
    for module in (source_connector("wdt"), target_connector("kingdee")):
        assert module.CONFIG_ERRORS
