"""The architecture as tests: imports point down the layers, and SQL lives in registry/ alone."""

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "mlops_nb"
# A statement: a SQL verb, then (somewhere after it) the word that makes it one.
SQL = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|CREATE|DROP|ALTER|PRAGMA)\b.*\b(FROM|INTO|SET|TABLE|INDEX|VALUES)\b",
                 re.DOTALL)


def sql_in(source: str) -> list[tuple[int, str]]:
    """(line, text) of every string literal in ``source`` that holds a SQL statement."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.search(node.value):
            found.append((node.lineno, node.value))
    return found


def test_imports_point_down_the_layers():
    lint = Path(sys.executable).with_name("lint-imports")
    if not lint.exists():
        pytest.fail("import-linter is missing: pip install -e '.[dev]'")
    done = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


def test_the_layers_contract_names_every_package():
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"][0]
    layered = {name.strip() for layer in config["layers"] for name in layer.split("|")}
    packages = {f"mlops_nb.{p.name}" for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    modules = {f"mlops_nb.{p.stem}" for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    assert packages | modules <= layered, f"not in any layer: {sorted((packages | modules) - layered)}"


def test_no_sql_outside_the_registry():
    offenders = [f"{path.relative_to(ROOT)}:{line}: {text[:60]!r}"
                 for path in sorted(PACKAGE.rglob("*.py")) if "registry" not in path.relative_to(PACKAGE).parts
                 for line, text in sql_in(path.read_text(encoding="utf-8"))]
    assert not offenders, "SQL belongs in mlops_nb/registry/, behind a named function:\n" + "\n".join(offenders)


def test_the_sql_check_finds_statements_and_leaves_prose_alone():
    source = ('a = "SELECT id FROM runs WHERE pipeline = ?"\n'
              'b = ("INSERT INTO outputs (run_id) "\n     "VALUES (?)")\n'
              'c = "select the runs from the list"\nd = "UPDATE: nothing changed"\n')
    assert [line for line, _ in sql_in(source)] == [1, 2]
    assert sql_in((PACKAGE / "registry" / "runs.py").read_text()), "the registry's own SQL must be found"
