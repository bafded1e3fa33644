"""The direction of the imports, read from the source with ``ast`` (imports inside functions included): the
library ``lewel`` imports neither the service ``api`` nor the front end ``app``; its modules import each other
without a cycle; and collapsed to its packages (top-level modules such as ``config.py`` count as their own units),
every unit imports only units of lower layers, in the order docs/architecture.md draws."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LEWEL = ROOT / "lewel"
ARCHITECTURE = ROOT / "docs" / "architecture.md"

#: lewel's layers, bottom up: a unit imports only units of lower layers (the table of docs/architecture.md)
LAYERS: list[set[str]] = [
    {"config", "distributed", "formatting", "lazy_exports"},
    {"models", "views"},
    {"files"},
    {"inference"},
    {"export", "lewel"},
    {"data"},
    {"maps"},
    {"drawing"},
    {"train"},
    {"commands"},
    {"cli"},
]


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


def unit(module: str) -> str:
    """The unit of a lewel module: its package or top-level module under ``lewel`` (``lewel.maps.atlas`` ->
    ``maps``, ``lewel.inference`` -> ``inference``), or ``lewel`` for the package's own ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The module graph collapsed to units: unit -> the other units its modules import."""
    units: dict[str, set[str]] = {unit(name): set() for name in graph}
    for name, targets in graph.items():
        units[unit(name)].update(unit(t) for t in targets if unit(t) != unit(name))
    return units


def layer_violations(units: dict[str, set[str]], layers: list[set[str]]) -> list[str]:
    """Every unit missing from ``layers``, and every import of a unit that is not in a lower layer."""
    level = {name: k for k, layer in enumerate(layers) for name in layer}
    found = [f"{name} is in no layer" for name in sorted(units) if name not in level]
    found += [
        f"{name} (layer {level[name] + 1}) imports {target} (layer {level[target] + 1})"
        for name, targets in sorted(units.items())
        for target in sorted(targets)
        if name in level and target in level and level[target] >= level[name]
    ]
    return found


def documented_layers(text: str) -> list[set[str]]:
    """The layers of the first table under ``## Layers`` of docs/architecture.md, bottom up as its rows are: the
    names in backticks of each row's first column (``config.py`` -> ``config``, ``models/`` -> ``models``,
    ``__init__.py`` -> ``lewel``); no layers when the section is missing."""
    _, found, rest = text.partition("\n## Layers")
    lines = rest.split("\n## ", 1)[0].splitlines() if found else []
    rows = [line for line in lines if line.startswith("|") and not set(line) <= set("|-: ")]
    layers = []
    for row in rows[1:]:
        names = re.findall(r"`([^`]+)`", row.split("|")[1])
        layers.append({"lewel" if n == "__init__.py" else n.removesuffix(".py").removesuffix("/") for n in names})
    return layers


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


def test_the_library_has_no_package_cycle():
    units = package_graph(import_graph())
    assert {"maps", "drawing", "files", "inference", "cli"} <= set(units), "the package graph was not built"
    found = cycles(units)
    assert not found, "import cycles among lewel's packages:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_the_packages_import_down_the_layers():
    found = layer_violations(package_graph(import_graph()), LAYERS)
    assert not found, "imports against the layer order (tests/test_imports.py LAYERS):\n" + "\n".join(found)


def test_the_layers_are_the_ones_docs_architecture_draws():
    assert documented_layers(ARCHITECTURE.read_text()) == LAYERS


def test_a_package_cycle_is_found_through_different_modules():
    """Two modules of ``a`` and one of ``b``: no module cycle, but ``a`` and ``b`` import each other."""
    graph = {"lewel.a.x": {"lewel.b.y"}, "lewel.b.y": {"lewel.a.z"}, "lewel.a.z": set(), "lewel.c": {"lewel.a.x"}}
    assert cycles(graph) == []
    assert package_graph(graph) == {"a": {"b"}, "b": {"a"}, "c": {"a"}}
    assert cycles(package_graph(graph)) == [["a", "b"]]


def test_the_documented_layers_are_read_bottom_up_from_the_first_column():
    text = "# A\n\n## Layers of it\n\n| units | holds |\n| --- | --- |\n| `config.py`, `__init__.py` | x `maps/` |\n" \
        "| `maps/` | y |\n\n## Next\n\n| `cli.py` | z |\n"
    assert documented_layers(text) == [{"config", "lewel"}, {"maps"}]
    assert documented_layers("# no such section") == []


def test_the_layer_check_finds_an_upward_import_and_an_unplaced_unit():
    layers = [{"low"}, {"high"}]
    assert layer_violations({"low": set(), "high": {"low"}}, layers) == []
    assert layer_violations({"low": {"high"}, "high": set(), "new": set()}, layers) == [
        "new is in no layer",
        "low (layer 1) imports high (layer 2)",
    ]



#: one concept per module: no Python module of the library, the service, the front end or the benchmarks reaches this
MAX_LINES = 600


def long_modules(base: Path, folders: tuple[str, ...], limit: int = MAX_LINES) -> dict[str, int]:
    """The ``.py`` files under ``base / folder`` of ``limit`` lines or more, named relative to ``base``."""
    lengths = {
        str(path.relative_to(base)): len(path.read_text(encoding="utf-8").splitlines())
        for folder in folders
        for path in sorted((base / folder).rglob("*.py"))
    }
    return {name: lines for name, lines in lengths.items() if lines >= limit}


def test_no_module_reaches_600_lines():
    assert long_modules(ROOT, ("lewel", "api", "app", "benchmarks", "scripts", "tests")) == {}


def test_the_length_check_finds_a_long_module(tmp_path):
    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    (tmp_path / "pkg" / "sub" / "long.py").write_text("x = 1\n" * MAX_LINES)
    (tmp_path / "pkg" / "short.py").write_text("x = 1\n" * (MAX_LINES - 1))
    assert long_modules(tmp_path, ("pkg",)) == {"pkg/sub/long.py": MAX_LINES}
