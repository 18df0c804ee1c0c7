"""A class owns its state and its methods: no method calls one that only a sibling or subclass defines.

Before, a height was one class spread over four mixin files, whose methods
called methods only another mixin defined. The parts of a height are now
composed; this test keeps them so: every `self.x(...)` inside a class names
a method or callable attribute of that class (or of a base class defined in
the same file).
"""

from __future__ import annotations

import ast
from pathlib import Path

import tclearn

PACKAGES = ("consensus", "member", "sim", "ledger")


def _defined(cls: ast.ClassDef) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(cls):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                for e in ast.walk(target):
                    if isinstance(e, ast.Attribute) and isinstance(e.value, ast.Name) and e.value.id == "self":
                        names.add(e.attr)
                    elif isinstance(e, ast.Name):
                        names.add(e.id)
    return names


def _strays(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    classes = {n.name: n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)}
    found = []
    for cls in classes.values():
        defined = _defined(cls)
        for base in cls.bases:  # a base class of the same file counts (inheritance, not a mixin of another file)
            if isinstance(base, ast.Name) and base.id in classes:
                defined |= _defined(classes[base.id])
        for node in ast.walk(cls):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "self" \
                    and node.func.attr not in defined:
                found.append(f"{path.name}:{node.lineno}: {cls.name} calls self.{node.func.attr}")
    return found


def test_no_method_calls_a_method_its_own_class_does_not_define() -> None:
    root = Path(tclearn.__file__).parent
    strays = [s for package in PACKAGES for path in sorted((root / package).glob("*.py")) for s in _strays(path)]
    assert strays == []


def test_the_check_finds_a_mixin_call(tmp_path: Path) -> None:
    mixin = tmp_path / "mixin.py"
    mixin.write_text("class Candidates:\n    def on_vote(self):\n        self._start_block()\n")
    assert _strays(mixin) == ["mixin.py:3: Candidates calls self._start_block"]
