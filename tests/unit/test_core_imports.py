"""The deployed core has no import cycles: every module of ``shared`` can be understood from the ones
it imports, and the operator CLI depends on the core, never the other way round."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "shared"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Core modules ``path`` imports at module level or in functions (relative and absolute)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            for alias in node.names:
                candidate = f"{target}.{alias.name}"
                found.add(candidate if (ROOT / Path(*candidate.split("."))).with_suffix(".py").exists() else target)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {target for target in found if target == "shared" or target.startswith("shared.")} - {name}


def graph() -> dict[str, set[str]]:
    modules = {module_name(path): path for path in CORE.rglob("*.py")}
    return {name: {t for t in imports_of(path) if t in modules and t != "shared"} for name, path in modules.items()}


def test_the_core_has_no_import_cycle():
    edges = graph()
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for target in sorted(edges[node]):
            if state.get(target) == 1:
                cycles.append([*stack[stack.index(target):], target] if target in stack else [node, target])
            elif state.get(target) is None:
                visit(target, [*stack, target])
        state[node] = 2

    for node in sorted(edges):
        if state.get(node) is None:
            visit(node, [node])
    assert cycles == []


def test_the_core_never_imports_the_cli_the_emulator_or_tests():
    for path in CORE.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for forbidden in ("relay_cli", "emulator", "tests.", "bench", "devtools"):
            assert f"import {forbidden}" not in text and f"from {forbidden}" not in text, (path, forbidden)
