"""The command line: check schemes and see what they would post, without Airflow running.

    python -m erpsync validate [SCHEME ...] [--kingdee CONNECTION]
                                                   every problem of the schemes, as file:line: key: message
    python -m erpsync preview SCHEME --order FILE.json
    python -m erpsync preview SCHEME --number CK2026110100001 [--window START END]
    python -m erpsync schema [--check]             write (or check) include/schemes/scheme.schema.json
    python -m erpsync reconcile SCHEME --day YYYY-MM-DD [--days N] [--json] [--repush]
                                                   对账: the source's documents against the target's bills

``validate`` exits 1 when a scheme has a problem, so it can guard a commit or a deployment.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from erpsync.scheme import (
    INCLUDE_DIR,
    SCHEMA_FILE,
    Problem,
    Scheme,
    SchemeError,
    cross_check,
    load_folder,
    load_scheme,
    scheme_json_schema,
    scheme_paths,
)


def _problems_of(exc: SchemeError) -> list[Problem | str]:
    return list(exc.problems) if exc.problems else [str(exc)]


def check_schemes(paths: Sequence[Path], include_dir: Path) -> tuple[list[tuple[Scheme, Any]], list[Problem | str]]:
    """Load and compile every scheme of ``paths``: the compiled ones (scheme, mapping) and the
    problems of all of them, not only the first."""
    from erpsync.mapping.compile import compile_mapping

    compiled: list[tuple[Scheme, Any]] = []
    schemes: list[Scheme] = []
    problems: list[Problem | str] = []
    for path in paths:
        try:
            scheme = load_scheme(path, include_dir)
        except SchemeError as exc:
            problems += _problems_of(exc)
            continue
        schemes.append(scheme)
        try:
            compiled.append((scheme, compile_mapping(scheme)))
        except SchemeError as exc:
            problems += _problems_of(exc)
    # preconditions and dag ids are checked against every scheme of the folder (the others' own
    # problems are reported when they are validated)
    checked = {s.path.resolve() for s in schemes}
    others = [s for s in load_folder(include_dir)[0] if s.path.resolve() not in checked]
    problems += [p for p in cross_check([*schemes, *others]) if p.path.resolve() in checked]
    return compiled, problems


def check_constants(scheme: Scheme, mapping: Any, client: Any) -> list[Problem]:
    """Base-data numbers written as constants (a department, a bill type, a currency) that Kingdee
    does not have: every bill would be held back for them, so say so before any run."""
    from erpsync.mapping.values import Constant

    wanted: dict[str, dict[str, list[Any]]] = {}
    for rules in (mapping.header, *mapping.subheads.values(), mapping.entry):
        for rule in rules:
            if rule.field.form and isinstance(rule.value, Constant):
                wanted.setdefault(rule.field.form, {}).setdefault(rule.value.source, []).append(rule)
    problems = []
    for form, numbers in wanted.items():
        known = client.existing_numbers(form, numbers)
        for number, rules in numbers.items():
            if number in known:
                continue
            for rule in rules:
                index = scheme.target.mapping.index(rule.row)
                problems.append(
                    scheme.problem(
                        ("target", "mapping", index, "value"),
                        f"Kingdee has no {form} numbered {number!r}",
                        f"target.mapping[{index}] ({rule.row.field} {rule.row.label})",
                    )
                )
    return problems


def validate(args: argparse.Namespace, out: TextIO) -> int:
    include_dir = Path(args.include).resolve()
    paths = [Path(p).resolve() for p in args.schemes] or scheme_paths(include_dir)
    if not paths:
        print(f"no schemes in {include_dir / 'schemes'}", file=out)
        return 1
    compiled, problems = check_schemes(paths, include_dir)
    if args.kingdee and compiled:
        from contextlib import closing

        from erpsync.kingdee.hook import KingdeeHook

        with closing(KingdeeHook(args.kingdee).get_conn()) as client:
            for scheme, mapping in compiled:
                problems += check_constants(scheme, mapping, client)
    for problem in problems:
        print(problem, file=out)
    for scheme, _ in compiled:
        if not any(isinstance(p, Problem) and p.path == scheme.path for p in problems):
            print(f"ok  {scheme.path}: {scheme.dag_id}, {len(scheme.target.mapping)} mapping rows", file=out)
    print(f"{len(paths)} schemes checked, {len(problems)} problems", file=out)
    return 1 if problems else 0


def schema(args: argparse.Namespace, out: TextIO) -> int:
    target = Path(args.include) / "schemes" / SCHEMA_FILE
    text = json.dumps(scheme_json_schema(), ensure_ascii=False, indent=2) + "\n"
    if args.check:
        current = target.read_text(encoding="utf-8") if target.exists() else ""
        if current != text:
            print(f"{target} is out of date: run python -m erpsync schema", file=out)
            return 1
        print(f"{target} is up to date", file=out)
        return 0
    target.write_text(text, encoding="utf-8")
    print(f"wrote {target}", file=out)
    return 0


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m erpsync", description=__doc__.split("\n\n")[0])
    parser.add_argument("--include", default=str(INCLUDE_DIR), help="the include/ folder (schemes, apis, maps)")
    commands = parser.add_subparsers(dest="command", required=True)

    check = commands.add_parser("validate", help="check schemes against the API and form definitions")
    check.add_argument("schemes", nargs="*", help="scheme files (default: every include/schemes/*.yaml)")
    check.add_argument(
        "--kingdee",
        metavar="CONNECTION",
        help="also look the base-data constants up in Kingdee through this Airflow connection",
    )
    check.set_defaults(run=validate)

    publish = commands.add_parser("schema", help="write the JSON Schema of scheme files")
    publish.add_argument("--check", action="store_true", help="only say whether the published file is current")
    publish.set_defaults(run=schema)

    from erpsync.preview import add_preview_command
    from erpsync.reconcile.cli import add_reconcile_command

    add_preview_command(commands)
    add_reconcile_command(commands)
    args = parser.parse_args(argv)
    return args.run(args, out or sys.stdout)
