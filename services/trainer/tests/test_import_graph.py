"""The trainer package's import graph (docs/architecture.md): no module imports itself back through others, and
training/ depends on neither api/ nor jobs/. Every import of an alignment_trainer module counts, the deferred ones
inside functions too: a cycle through a deferred import only moves the failure to whoever calls that function."""

from __future__ import annotations

import ast
import graphlib
import pathlib

import pytest

SRC = pathlib.Path(__file__).resolve().parents[1] / "src"
PACKAGE = "alignment_trainer"


def _modules() -> dict[str, pathlib.Path]:
    """Module name -> file, for every module of the package except the generated contracts (_gen/)."""
    found = {}
    for path in (SRC / PACKAGE).rglob("*.py"):
        parts = path.relative_to(SRC).with_suffix("").parts
        if "_gen" in parts:
            continue
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _imports(source: str, modules) -> set[str]:
    """The package's modules (of ``modules``) that the source imports (``from pkg import mod`` names module mod)."""
    targets = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                targets.add(sub if sub in modules else node.module)
    return {t for t in targets if t in modules}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path.read_text(), modules) - {name} for name, path in modules.items()}


def test_the_package_has_the_three_layers_and_no_import_cycle():
    graph = _graph()
    for layer in ("api", "jobs", "training"):
        assert f"{PACKAGE}.{layer}" in graph
    graphlib.TopologicalSorter(graph).prepare()  # raises CycleError naming the cycle


def test_training_imports_neither_the_grpc_api_nor_the_job_lifecycle():
    graph = _graph()
    wrong = {(name, target) for name, targets in graph.items() if name.startswith(f"{PACKAGE}.training")
             for target in targets if target.startswith((f"{PACKAGE}.api", f"{PACKAGE}.jobs"))}
    assert not wrong


def test_the_check_finds_the_cycle_the_package_once_had():
    """cli -> server (DEFAULT_DRO_SOLVER_ADDRESS) -> jobs -> launcher -> cli (PROGRESS_FILE, RESULT_FILE), as source."""
    sources = {
        f"{PACKAGE}.cli": f"from {PACKAGE}.server import DEFAULT_DRO_SOLVER_ADDRESS",
        f"{PACKAGE}.server": f"from {PACKAGE}.jobs import JobManager",
        f"{PACKAGE}.jobs": f"def run():\n    from {PACKAGE} import launcher",
        f"{PACKAGE}.launcher": f"from {PACKAGE}.cli import PROGRESS_FILE, RESULT_FILE",
    }
    graph = {name: _imports(source, sources) for name, source in sources.items()}
    assert graph[f"{PACKAGE}.jobs"] == {f"{PACKAGE}.launcher"}
    with pytest.raises(graphlib.CycleError):
        graphlib.TopologicalSorter(graph).prepare()
