"""The package's import structure: snnexp's subpackages import each other without a cycle."""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "snnexp"


def package_of(module: str) -> str | None:
    """'snnexp.models.csnn' -> 'models'; 'snnexp.errors' -> 'errors'; other packages -> None."""
    parts = module.split(".")
    return parts[1] if parts[0] == "snnexp" and len(parts) > 1 else None


def import_graph() -> dict[str, set[str]]:
    """Subpackage (or top-level module) -> the other ones it imports, counting every import statement
    (also those inside functions: a deferred import is still a dependency)."""
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        me = package_of(".".join(rel.parts))
        if me is None or me == "__init__":
            continue
        edges = graph.setdefault(me, set())
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 else []
            edges |= {p for p in map(package_of, names) if p and p != me}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state and (cycle := visit(m)):
                return cycle
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state and (cycle := visit(n)):
            return cycle
    return None


def test_no_import_cycle_between_subpackages():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def module_name(path: Path) -> str:
    """snnexp/models/csnn.py -> 'snnexp.models.csnn'; snnexp/models/__init__.py -> 'snnexp.models'."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def module_graph() -> dict[str, set[str]]:
    """Module -> the snnexp modules it imports (a package's name stands for its __init__), counting
    every import statement, deferred ones too. `from snnexp.a import b` is an edge to snnexp.a.b when
    b is a module, else to snnexp.a."""
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for me, path in files.items():
        edges = graph.setdefault(me, set())
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in files else node.module
                           for a in node.names]
            else:
                continue
            edges |= {t for t in targets if t in files and t != me}
    return graph


def test_no_import_cycle_between_modules():
    """File level: two modules that import each other (even through a deferred import) are a cycle."""
    cycle = find_cycle(module_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)
