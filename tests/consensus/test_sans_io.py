"""The core is sans-IO: no torch, no network, no clock, no global randomness (DESIGN.md §4)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "tclearn"
FORBIDDEN = {"torch", "socket", "asyncio", "time", "datetime", "random", "threading", "http", "urllib", "requests",
             "ssl", "subprocess", "os", "sqlite3"}


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_the_consensus_core_imports_no_io_clock_or_randomness():
    for path in sorted((SRC / "consensus").glob("*.py")):
        bad = imported_roots(path) & FORBIDDEN
        assert not bad, f"{path.name} imports {sorted(bad)}"


def test_the_core_does_not_reach_the_learning_or_transport_layers():
    for path in sorted((SRC / "consensus").glob("*.py")):
        text = path.read_text()
        assert "tclearn.learning" not in text and "tclearn.transport" not in text, path.name


def test_the_simulator_draws_only_from_seeded_generators():
    module_level = re.compile(r"\brandom\.(random|randint|choice|choices|shuffle|sample|uniform|seed)\(")
    for path in sorted((SRC / "sim").glob("*.py")) + sorted((SRC / "member").glob("*.py")):
        assert not module_level.search(path.read_text()), f"{path.name} uses the global random generator"
