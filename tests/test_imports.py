"""The direction of the imports, read from the source with ``ast`` (imports inside functions included): the
library ``lewel`` imports neither the service ``api`` nor the front end ``app``, and its modules import each
other without a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LEWEL = ROOT / "lewel"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def lewel_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(LEWEL.rglob("*.py"))}


def imported_names(path: Path, name: str) -> list[tuple[str, list[str], int]]:
    """Every import in the file, at any depth: (absolute module, imported names, line)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.extend((alias.name, [], node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.append((target, [alias.name for alias in node.names], node.lineno))
    return found


def import_graph() -> dict[str, set[str]]:
    """lewel module -> the lewel modules it imports (``from pkg import sub`` counts as an import of pkg.sub)."""
    modules = lewel_modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for target, names, _ in imported_names(path, name):
            if target.split(".")[0] != "lewel":
                continue
            submodules = [f"{target}.{n}" for n in names if f"{target}.{n}" in modules]
            targets = submodules if submodules and len(submodules) == len(names) else [target] + submodules
            graph[name].update(t for t in targets if t in modules and t != name)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each as a sorted list."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_library_imports_neither_the_service_nor_the_app():
    offending = [
        f"{path.relative_to(ROOT)}:{line} imports {target}"
        for name, path in lewel_modules().items()
        for target, _, line in imported_names(path, name)
        if target.split(".")[0] in ("api", "app")
    ]
    assert not offending, "lewel/ must not import api/ or app/:\n" + "\n".join(offending)


def test_the_library_has_no_import_cycle():
    graph = import_graph()
    assert "lewel.maps" in graph and graph["lewel.cli"], "the graph was not built"
    found = cycles(graph)
    assert not found, "import cycles among lewel's modules:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
