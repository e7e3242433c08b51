"""The house: imports point one way down the apps, and no module imports itself round a cycle.

regions <- accounts <- uploads (with uploads.progress) <- dashboard, public <- operations;
simulator and benchmarks on top; the project package's plumbing (settings, config, health, ...)
below every app, its URLs and entry points above them. Imports inside functions count as much
as those at the top of a file.
"""

import ast
from pathlib import Path

import pytest

from tests.conftest import PROJECT_DIR

# Each app's tier: a module may import its own app and any app of a lower tier, nothing else.
TIERS = {
    "sirekap_tracker": 0,
    "regions": 1,
    "accounts": 2,
    "uploads": 3,
    "dashboard": 4,
    "public": 4,
    "operations": 5,
    "simulator": 6,
    "benchmarks": 7,
}
# The project package's entry points sit above the apps they wire together (benchmarks may load
# them, as a client would).
ENTRY_POINTS = {"sirekap_tracker.urls", "sirekap_tracker.wsgi", "sirekap_tracker.asgi"}
ENTRY_TIER = TIERS["operations"] + 0.5


def project_modules() -> dict[str, Path]:
    found = {}
    for app in TIERS:
        for path in (PROJECT_DIR / app).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            parts = path.relative_to(PROJECT_DIR).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def imports_of(path: Path, module: str, known: set[str]) -> set[str]:
    """The project modules a file imports, anywhere in it (top level or inside a function)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            names = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            continue
        found |= {_known(name, known) for name in names} - {None}
    return found - {module}


def _known(name: str, known: set[str]) -> str | None:
    """The project module a dotted name is, or is in (a name imported from a module)."""
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def tier(module: str) -> float:
    if module in ENTRY_POINTS:
        return ENTRY_TIER
    return TIERS[module.split(".")[0]]


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: imports_of(path, name, set(modules)) for name, path in modules.items()}


def test_no_app_imports_an_app_above_it_or_beside_it(graph):
    wrong = sorted(
        f"{module} imports {imported}"
        for module, imported_all in graph.items()
        for imported in imported_all
        if module.split(".")[0] != imported.split(".")[0] and tier(imported) >= tier(module)
    )
    assert wrong == []


# The publication server stand-in's layers: what each module of simulator.publication may import
# of the others; its HTTP server is started by the management command alone.
PUBLICATION_LAYERS = {
    "server": {"catalog", "site", "documents", "kpu_files"},
    "catalog": {"site", "kpu_files"},
    "site": {"documents", "kpu_files"},
    "documents": set(),
    "kpu_files": set(),
}


def test_the_publication_stand_in_imports_one_way_down_its_layers(graph):
    layers = {name: name.removeprefix("simulator.publication.") for name in graph}
    modules = {name for name, layer in layers.items() if layer in PUBLICATION_LAYERS}
    wrong = sorted(
        f"{module} imports {imported}"
        for module in modules
        for imported in graph[module] & modules
        if layers[imported] not in PUBLICATION_LAYERS[layers[module]]
    )
    server_importers = {
        name for name, imported in graph.items() if "simulator.publication.server" in imported
    }

    assert len(modules) == len(PUBLICATION_LAYERS)
    assert wrong == []
    assert server_importers == {"simulator.management.commands.run_publication_server"}


def test_no_module_imports_itself_round_a_cycle(graph):
    assert [sorted(cycle) for cycle in cycles(graph)] == []


def cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected parts of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in graph.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            part = set()
            while True:
                member = stack.pop()
                part.add(member)
                if member == node:
                    break
            if len(part) > 1:
                found.append(part)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_check_sees_a_wrong_import_and_a_cycle():
    """The two checks above would fail on what they are for."""
    upward = {"regions.models": {"uploads.models"}, "uploads.models": set()}
    assert any(tier(b) >= tier(a) for a, targets in upward.items() for b in targets)
    assert cycles({"uploads.a": {"uploads.b"}, "uploads.b": {"uploads.a"}}) == [
        {"uploads.a", "uploads.b"}
    ]
