#!/usr/bin/env python3
"""Fails (exit 1) when the TypeScript sources have an import cycle, listing each cycle's files.

The graph: every .ts file under libs/, services/, tools/ and deploy/ (generated code excluded), with an edge for
each `import ... from` / `export ... from` of a relative path or of a tsconfig.base.json path alias (type-only
imports included: a cycle of types is still a cycle in the design). The trainer's Python package has its own check
(services/trainer/tests/test_import_graph.py). Standard library only; run from anywhere:

    python3 tools/ci/ts-import-cycles.py
"""
from __future__ import annotations

import json
import os
import re
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
SOURCE_DIRS = ("libs", "services", "tools", "deploy")
SKIPPED_DIRS = {"node_modules", "gen", "dist", "_gen", "__pycache__"}
IMPORT = re.compile(r"""^(?:import|export)\s[^;]*?from\s+['"]([^'"]+)['"]""", re.M | re.S)


def source_files(root: str) -> list[str]:
    files = []
    for base in SOURCE_DIRS:
        for folder, dirs, names in os.walk(os.path.join(root, base)):
            dirs[:] = [d for d in dirs if d not in SKIPPED_DIRS]
            files += [os.path.relpath(os.path.join(folder, n), root) for n in names if n.endswith(".ts") and not n.endswith(".d.ts")]
    return sorted(files)


def import_graph(root: str) -> dict[str, set[str]]:
    with open(os.path.join(root, "tsconfig.base.json"), encoding="utf8") as f:
        paths = json.load(f)["compilerOptions"].get("paths", {})
    aliases = {name: re.sub(r"\.ts$", "", os.path.normpath(targets[0])) for name, targets in paths.items()}
    files = source_files(root)
    known = set(files)

    def resolve(source: str, spec: str) -> str | None:
        if spec.startswith("."):
            base = os.path.normpath(os.path.join(os.path.dirname(source), spec))
        elif spec in aliases:
            base = aliases[spec]
        else:
            return None  # a package from node_modules
        for candidate in (base + ".ts", os.path.join(base, "index.ts"), base):
            if candidate in known:
                return candidate
        return None

    graph: dict[str, set[str]] = {}
    for source in files:
        with open(os.path.join(root, source), encoding="utf8") as f:
            text = f.read()
        graph[source] = {t for t in (resolve(source, m.group(1)) for m in IMPORT.finditer(text)) if t}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one file, or a file importing itself (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            advanced = False
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in graph[node]:
                    found.append(sorted(component))
    return found


def main(argv: list[str]) -> int:
    root = os.path.abspath(argv[1]) if len(argv) > 1 else ROOT
    graph = import_graph(root)
    found = cycles(graph)
    for component in found:
        print("import cycle: " + " <-> ".join(component))
    print(f"{len(graph)} TypeScript files, {len(found)} import cycles")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
