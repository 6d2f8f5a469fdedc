"""The package layering README's "Layout" promises: no import cycle between packages, the
core imports no other part of autoprune, and no module imports another package's private
modules. Every import counts, including those inside functions."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOP_LEVEL = ("autoprune", "agents", "envs")


def _modules() -> Iterator[tuple[str, Path]]:
    for top in TOP_LEVEL:
        for path in sorted((ROOT / top).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            yield ".".join(p for p in parts if p != "__init__"), path


def _imports(path: Path) -> Iterator[str]:
    """Every absolute module name ``path`` imports (``from a import b`` gives ``a.b`` too)."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def _package(module: str) -> str | None:
    """The layer a module belongs to: ``agents``, ``envs`` or ``autoprune.<package>``."""
    parts = module.split(".")
    if parts[0] in ("agents", "envs"):
        return parts[0]
    if parts[0] != "autoprune" or len(parts) < 2:
        return None
    return f"autoprune.{parts[1]}" if (ROOT / "autoprune" / parts[1]).is_dir() else None


def _graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for module, path in _modules():
        source = _package(module)
        if source is None:
            continue
        for name in _imports(path):
            target = _package(name)
            if target is not None and target != source:
                edges.setdefault(source, set()).add(target)
    return edges


def _reachable(edges: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for nxt in edges.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_no_import_cycle_between_packages() -> None:
    edges = _graph()
    cycles = sorted(
        f"{a} -> {b}" for a, targets in edges.items() for b in targets if a in _reachable(edges, b)
    )
    assert cycles == []
    assert len(edges) > 10  # the scan found the packages (a broken scan would pass vacuously)


ROWS = (
    ("autoprune.core", "autoprune.system"),
    (
        "autoprune.data",
        "autoprune.models",
        "autoprune.compress",
        "autoprune.coding",
        "autoprune.cost",
        "autoprune.export",
        "autoprune.latency",
        "autoprune.tracking",
    ),
    ("autoprune.workflow", "autoprune.deep_compression", "autoprune.admm", "envs", "agents"),
    ("autoprune.deploy",),
    ("autoprune.searches", "autoprune.cli"),
)
"""README's "Layout" table, from the bottom up."""


def test_no_package_imports_a_later_row_of_the_layout() -> None:
    row = {package: level for level, packages in enumerate(ROWS) for package in packages}
    assert set(_graph()) <= set(row)  # a new package must be given its row
    upward = sorted(
        f"{a} -> {b}" for a, targets in _graph().items() for b in targets if row[b] > row[a]
    )
    assert upward == []


def test_the_core_imports_no_other_part_of_autoprune() -> None:
    edges = _graph()
    assert edges.get("autoprune.core", set()) == set()
    assert "autoprune.core" in edges["autoprune.workflow"]  # the scan sees imports of it


def test_no_module_imports_another_packages_private_modules() -> None:
    offending = []
    for module, path in _modules():
        for name in _imports(path):
            parts = name.split(".")
            private = next(
                (i for i, p in enumerate(parts) if p.startswith("_") and not p.startswith("__")),
                None,
            )
            if parts[0] not in TOP_LEVEL or private is None or private == 0:
                continue
            owner = ".".join(parts[:private])
            if not (module == owner or module.startswith(owner + ".")):
                offending.append(f"{module} imports {name}")
    assert offending == []


def _module_level_imports(path: Path) -> Iterator[str]:
    """The imports ``path`` runs when it is imported: its top-level statements (also inside
    a top-level ``try`` or ``if``), not those in functions or under ``if TYPE_CHECKING``."""
    todo = list(ast.parse(path.read_text()).body)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            todo.extend(node.orelse)
        elif isinstance(node, (ast.If, ast.Try)):
            todo.extend(ast.iter_child_nodes(node))
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def test_no_module_level_import_cycle_inside_a_package() -> None:
    paths = dict(_modules())
    packages = {m for m, p in paths.items() if p.name == "__init__.py"}
    edges: dict[str, set[str]] = {}
    for module, path in paths.items():
        home = module if module in packages else module.rpartition(".")[0]
        for name in _module_level_imports(path):
            sibling = name.rpartition(".")[0] == home and name not in packages
            if sibling and name in paths and name != module:
                edges.setdefault(module, set()).add(name)
    cycles = sorted(
        f"{a} -> {b}" for a, targets in edges.items() for b in targets if a in _reachable(edges, b)
    )
    assert cycles == []
    assert len(edges) > 20  # the scan found modules importing their siblings
