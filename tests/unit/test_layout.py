"""The package layout holds: imports only point down the layers, and no module imports itself back.

Every module of ``worker`` and ``tasks`` is parsed with ``ast`` (nothing is
imported), and each ``import`` of ours, at the top or inside a function, is
checked against the table of ``LAYERS``: the faces (api, cli) on top, the two
paths (ingest, read) in the middle, the contract at the bottom.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# The foundation every layer may use: the settings.
BASE = {"worker.settings"}
# package -> the packages (besides itself and BASE) its modules may import.
LAYERS = {
    "worker.contract": set(),
    # Every collection, its documents and indexes: the one place that speaks to the store.
    "worker.store": {"worker.contract"},
    # Metrics, task events and log lines: the ingest path and the API report through it.
    "worker.observe": {"worker.contract", "worker.store"},
    "worker.ingest": {"worker.contract", "worker.observe", "worker.store"},
    "worker.read": {"worker.contract", "worker.store"},
    # A Job's cancel: checked against what the caller may read; sent by the face.
    "worker.commands": {"worker.read", "worker.contract"},
    # The API sends a job's cancel through the producer SDK.
    "worker.api": {"worker.commands", "worker.read", "worker.contract", "worker.client", "worker.observe",
                   "worker.store"},
    # replay of a dead letter: the producer SDK.
    "worker.cli": {"worker.commands", "worker.read", "worker.store", "worker.contract", "worker.client"},
    "worker.client": {"worker.contract"},
    "worker.settings": set(),
}
ANYTHING = {"worker.dev", "worker.celery", "worker.__main__", "worker", "tasks"}


def modules() -> dict[str, Path]:
    found = {}
    for base in ("worker", "tasks"):
        for path in (ROOT / base).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def imports_of(path: Path, module: str) -> set[str]:
    """Every module of ours that ``path`` imports, resolved to the deepest one that exists."""
    known = modules()
    tree = ast.parse(path.read_text(), str(path))
    named = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            named |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            base = node.module
            if node.level:  # relative import
                package = module.split(".")[: -node.level or None]
                base = ".".join([*package, node.module])
            named.add(base)
            named |= {f"{base}.{alias.name}" for alias in node.names}
    return {name for name in named if name in known and name.split(".")[0] in ("worker", "tasks")}


def layer_of(module: str) -> str:
    for layer in sorted([*LAYERS, *ANYTHING], key=len, reverse=True):
        if module == layer or module.startswith(layer + "."):
            return layer
    raise AssertionError(f"{module} belongs to no layer: add its package to LAYERS")


def test_every_module_belongs_to_a_layer():
    for module in modules():
        layer_of(module)


@pytest.mark.parametrize("module", sorted(modules()))
def test_imports_point_down_the_layers(module):
    layer = layer_of(module)
    if layer in ANYTHING:
        return
    allowed = {layer, *LAYERS[layer], *BASE}
    for imported in imports_of(modules()[module], module):
        target = layer_of(imported)
        assert target in allowed, f"{module} imports {imported}: {layer} may import only {sorted(allowed)}"


def test_no_import_cycles():
    graph = {module: imports_of(path, module) - {module} for module, path in modules().items()}
    # Importing a submodule imports its package first: that edge is not a cycle of ours.
    for module, targets in graph.items():
        graph[module] = {t for t in targets if not module.startswith(t + ".")}
    state: dict[str, str] = {}

    def visit(module: str, trail: list[str]) -> None:
        state[module] = "open"
        for target in sorted(graph.get(module, ())):
            if state.get(target) == "open":
                cycle = trail[trail.index(target):] + [target] if target in trail else [module, target]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target, [*trail, target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
