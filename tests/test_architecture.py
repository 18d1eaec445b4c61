"""The layout is a contract too: what speaks SQL, and which package may import which.

See docs/ARCHITECTURE.md. Each check here is written so that it can fail: it first proves that it
finds what it looks for where that thing is allowed.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "eventtui"

# SQL as this codebase writes it: statements in upper case, and placeholders compared to columns
# (`id <= ?`), which is what a WHERE fragment built outside the store would look like.
SQL = re.compile(
    r"\bSELECT\s+\S"
    r"|\bINSERT\s+(?:OR\s+\w+\s+)?INTO\b"
    r"|\bUPDATE\s+\w+\s+SET\b"
    r"|\bDELETE\s+FROM\b"
    r"|\bPRAGMA\s+\w"
    r"|\bCREATE\s+(?:TABLE|INDEX|VIEW|TRIGGER|TEMP|UNIQUE)\b"
    r"|\bATTACH\s+(?:DATABASE\s+)?\S"
    r"|\bVACUUM\b|\bBEGIN\b|\bCOMMIT\b"
    r"|\b\w+\s*(?:=|!=|<>|<=|>=|<|>)\s*\?"
)

# Modules outside eventtui/store/ that may hold SQL text, and why.
SQL_ALLOWED = {
    # The filter grammar's compiler: its whole job is turning user text into parameterised WHERE
    # fragments over the `events` table (README: "A filter compiles to parameterised SQL").
    # The store runs them; filters.py never opens a connection.
    "filters.py",
    # The in-memory evaluator of one event against a compiled filter (expectations' `where` while
    # events stream past): a private `:memory:` connection, never the store.
    "matching.py",
}


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def sql_literals(path: Path) -> Iterator[tuple[int, str]]:
    """(line, text) of each string literal in `path` that reads as SQL; docstrings excepted."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _docstrings(tree)
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in skip
            and SQL.search(node.value)
        ):
            yield node.lineno, node.value


def test_the_sql_finder_finds_the_stores_sql() -> None:
    found = list(sql_literals(PACKAGE / "store" / "reader.py"))
    assert any("SELECT" in text for _, text in found)
    assert list(sql_literals(PACKAGE / "filters.py")), "filters.py compiles to SQL; found none"


def test_only_the_store_speaks_sql() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] == "store" or relative.as_posix() in SQL_ALLOWED:
            continue
        offenders.extend(
            f"eventtui/{relative.as_posix()}:{line}: {text.strip()[:70]!r}"
            for line, text in sql_literals(path)
        )
    assert not offenders, "SQL outside eventtui/store/:\n" + "\n".join(offenders)


# --- layers (import-linter contracts in pyproject.toml) ----------------------------------------------

LINT_IMPORTS = (
    "import sys\n"
    "from importlinter.cli import lint_imports\n"
    "sys.exit(lint_imports(no_logo=True, no_cache=True))\n"
)


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """`lint-imports` on the project at `root` (its pyproject.toml and its eventtui package)."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [sys.executable, "-c", LINT_IMPORTS],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_every_import_follows_the_layers() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "BROKEN" not in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("store/wrong_way.py", "import eventtui.monitor\n", "Layers"),
        ("collector/wrong_way.py", "import eventtui.monitor\n", "Layers"),
        ("monitor/wrong_way.py", "import textual.app\n", "never imports Textual"),
    ],
    ids=["store-imports-monitor", "collector-imports-monitor", "monitor-imports-textual"],
)
def test_a_wrong_way_import_breaks_a_contract(
    tmp_path: Path, module: str, line: str, contract: str
) -> None:
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    shutil.copytree(PACKAGE, tmp_path / "eventtui", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "eventtui" / module).write_text(line)
    result = lint_imports(tmp_path)
    assert result.returncode != 0, result.stdout
    broken = [text for text in result.stdout.splitlines() if "BROKEN" in text]
    assert any(contract in text for text in broken), result.stdout


# What a viewer must not load before its first paint, and why each is heavy (benchmarks/startup.py
# measures the whole path): ~0.1 s for jsonschema (only a plan with schemas needs it), ~0.2 s for
# sqlite_utils (only a migration), the demo and its websocket client (only the demo); ~20 ms for
# the anomalies screen's DataTable (only once opened), ~8 ms for multiprocessing (only a writer).
HEAVY_FOR_VIEWERS = (
    "jsonschema",
    "referencing",
    "sqlite_utils",
    "eventtui.demo",
    "websockets",
    "eventtui.tui.screens.anomalies",
    "multiprocessing",
)


def loaded_by(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys\nprint(' '.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return set(out.stdout.split()) & set(HEAVY_FOR_VIEWERS)


def test_the_open_and_watch_path_loads_nothing_heavy_before_the_first_paint() -> None:
    assert loaded_by("import eventtui.tui.launch, eventtui.cli") == set()


def test_the_heavy_modules_load_when_they_are_needed(tmp_path: Path) -> None:
    # The check above can fail: the same probe sees them once a schema, a migration or the demo asks.
    schema = tmp_path / "order.json"
    schema.write_text('{"type": "object", "required": ["total"]}')
    code = (
        "from eventtui.plan import Plan\n"
        "from eventtui.config import PlanConfig, PlanEvent\n"
        f"plan = Plan(PlanConfig(events={{'Order': PlanEvent(schema={str(schema)!r})}}))\n"
        "assert plan.check('Order', '{}')\n"
        "from eventtui.store import connect\n"
        f"connect(__import__('pathlib').Path({str(tmp_path / 'new.db')!r}), create=True).close()\n"
        "import eventtui.demo\n"
        "import eventtui.tui.screens.anomalies\n"
        "from eventtui.store import Writer\n"
        f"writer = Writer(__import__('pathlib').Path({str(tmp_path / 'w.db')!r}), source='t')\n"
        "writer.start()\n"
        "writer.close()\n"
    )
    assert loaded_by(code) == set(HEAVY_FOR_VIEWERS)
