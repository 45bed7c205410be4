#!/usr/bin/env python3
"""References to documents, checked against the repository (python3, standard library only).

  python3 tools/ci/doc-refs.py --check [ROOT]    exit 1 and list file:line for every reference that points nowhere
  python3 tools/ci/doc-refs.py --rewrite [ROOT]  rewrite the old citations of the design documents in place

A reference is a `*.md` name or path (`README.md`, `docker/README.md`, `../shared/BENCHMARK.md`) or any `docs/...`
path, in a tracked text file (`git ls-files`; every file under ROOT when ROOT is not a git work tree). It exists when:
- a `docs/...` path names a file under ROOT;
- a `*.md` path with a folder resolves from the citing file's folder or from ROOT, inside ROOT;
- a bare `*.md` name is a file in the citing file's folder or one of its parents up to ROOT;
- a markdown link target (`[text](target)`) resolves from the citing file's folder, as a renderer resolves it.
A section cited after a document (`docs/algorithm.md §4`, `§1-§5`, `§2, §5`, `§2.2(b)`) must be a numbered heading of
that document (`## 4. ...`, `### 2.2 ...`). Bare `§N` with no document, and papers (`SPA §4`), are not checked.

--rewrite moves the citations of the design documents that used to live outside the repo to docs/ (MAPPING; each
document in docs/ keeps the section numbers of the one it replaces); run --check afterwards. Files under docs/ are
left alone: they are written with the new paths, and a bare `dro.md` there is a relative link.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from dataclasses import dataclass

TEXT_SUFFIXES = (".ts", ".js", ".cjs", ".mjs", ".py", ".proto", ".md", ".sh", ".yaml", ".yml", ".json", ".toml",
                 ".txt", ".cfg", ".ini", "Dockerfile", ".dockerfile")
SKIPPED_DIRS = {".git", "node_modules", "dist", "build", "__pycache__", ".nx"}
# Files the tools write at run time (the demo's report), cited before they exist.
RUNTIME_OUTPUTS = {"report.md", "RESULTS.md"}  # written at run time by the demo and the campaign (any book directory)
# This checker and its test quote references that point nowhere on purpose.
SELF = {"tools/ci/doc-refs.py", "tools/ci/doc-refs.spec.ts"}

# Old citation -> document in docs/ (the design documents that used to sit beside the repo).
MAPPING = {
    "ALGORITHM.md": "docs/algorithm.md",
    "ARCHITECTURE.md": "docs/architecture.md",
    "BENCHMARK.md": "docs/benchmark.md",
    "dro.md": "docs/dro.md",
}

_PATH_CHARS = r"A-Za-z0-9_./\-"
MD_REF = re.compile(rf"(?<![{_PATH_CHARS}*])([{_PATH_CHARS}]*[A-Za-z0-9_-]\.md)(?![A-Za-z0-9_])")
DOCS_REF = re.compile(rf"(?<![{_PATH_CHARS}])(docs/[{_PATH_CHARS}]*[A-Za-z0-9_-])")
_SEC = r"§\s?(\d+(?:\.\d+)*)(?:\([a-z]\))?"
SECTIONS_AFTER = re.compile(rf"[`'\"]?\s*{_SEC}((?:\s*(?:,|-|–|—|\+|/|and|or)\s*{_SEC})*)")
SECTION_NUMBER = re.compile(r"§\s?(\d+(?:\.\d+)*)")
HEADING = re.compile(r"^#{1,6}\s+(\d+(?:\.\d+)*)\.?\s")
URL_BEFORE = re.compile(r"[a-z][a-z0-9+.-]*:\S*$")  # a URL (scheme:...) up to the reference
OLD_CITATION = re.compile(rf"(?<![{_PATH_CHARS}])(?:(?:\.\./)*shared/(?:research/)?)?"
                          r"(ALGORITHM\.md|ARCHITECTURE\.md|BENCHMARK\.md|dro\.md)(?![A-Za-z0-9_])")


@dataclass(frozen=True)
class Problem:
    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


def tracked_files(root: str) -> list[str]:
    """Text files to scan, relative to root, sorted."""
    if os.path.exists(os.path.join(root, ".git")):
        out = subprocess.run(["git", "-C", root, "ls-files", "-z"], check=True, capture_output=True).stdout
        files = [f for f in out.decode().split("\0") if f]
    else:
        files = []
        for folder, dirs, names in os.walk(root):
            dirs[:] = [d for d in dirs if d not in SKIPPED_DIRS]
            files += [os.path.relpath(os.path.join(folder, n), root) for n in names]
    return sorted(f.replace(os.sep, "/") for f in files
                  if f.endswith(TEXT_SUFFIXES) and f not in SELF and os.path.isfile(os.path.join(root, f)))


def _inside(root: str, path: str) -> bool:
    root = os.path.realpath(root)
    return os.path.realpath(path).startswith(root + os.sep)


def resolve(root: str, citing: str, ref: str, link: bool = False) -> str | None:
    """The repo-relative file a reference names (a markdown link target when `link`), or None if there is none."""
    folder = os.path.dirname(os.path.join(root, citing))
    if link:
        candidates = [os.path.join(folder, ref)]
    elif ref.startswith("docs/"):
        candidates = [os.path.join(root, ref)]
    elif "/" in ref:
        candidates = [os.path.join(folder, ref), os.path.join(root, ref)]
    else:
        candidates, here = [], folder
        while _inside(root, os.path.join(here, "x")):
            candidates.append(os.path.join(here, ref))
            if os.path.realpath(here) == os.path.realpath(root):
                break
            here = os.path.dirname(here)
    for candidate in candidates:
        if _inside(root, candidate) and os.path.isfile(candidate):
            return os.path.relpath(os.path.realpath(candidate), os.path.realpath(root)).replace(os.sep, "/")
    return None


def headings(root: str, doc: str, cache: dict[str, set[str]]) -> set[str]:
    """The section numbers of a markdown document: `## 4. Title` -> "4", `### 2.2 Title` -> "2.2"."""
    if doc not in cache:
        numbers = set()
        with open(os.path.join(root, doc), encoding="utf-8", errors="replace") as f:
            for line in f:
                m = HEADING.match(line)
                if m:
                    numbers.add(m.group(1))
        cache[doc] = numbers
    return cache[doc]


def check_line(root: str, citing: str, lineno: int, line: str, cache: dict[str, set[str]]) -> list[Problem]:
    problems = []
    spans = [(m.start(1), m.end(1), m.group(1)) for m in DOCS_REF.finditer(line)]
    spans += [(m.start(1), m.end(1), m.group(1)) for m in MD_REF.finditer(line)
              if not any(s <= m.start(1) < e for s, e, _ in spans)]
    for start, end, ref in sorted(spans):
        if URL_BEFORE.search(line[:start]) or ref in RUNTIME_OUTPUTS:
            continue
        target = resolve(root, citing, ref, link=line[:start].endswith("]("))
        if target is None:
            problems.append(Problem(citing, lineno, f"{ref}: no such file in the repository"))
            continue
        after = SECTIONS_AFTER.match(line, end)
        if not after or not target.endswith(".md"):
            continue
        known = headings(root, target, cache)
        for number in SECTION_NUMBER.findall(after.group(0)):
            if number.rstrip(".") not in known:
                problems.append(Problem(citing, lineno, f"{ref} §{number}: {target} has no section {number}"))
    return problems


def check(root: str) -> list[Problem]:
    problems: list[Problem] = []
    cache: dict[str, set[str]] = {}
    for citing in tracked_files(root):
        with open(os.path.join(root, citing), encoding="utf-8", errors="replace") as f:
            for lineno, line in enumerate(f, 1):
                if ".md" in line or "docs/" in line:
                    problems += check_line(root, citing, lineno, line, cache)
    return problems


def rewrite_text(text: str) -> tuple[str, int]:
    """The text with every old citation moved to docs/, and how many it moved."""
    count = 0

    def replace(m: re.Match[str]) -> str:
        nonlocal count
        count += 1
        return MAPPING[m.group(1)]

    return OLD_CITATION.sub(replace, text), count


def rewrite(root: str) -> int:
    total = 0
    for rel in tracked_files(root):
        if rel.startswith("docs/"):
            continue
        path = os.path.join(root, rel)
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            text = f.read()
        new, count = rewrite_text(text)
        if count:
            with open(path, "w", encoding="utf-8", errors="surrogateescape") as f:
                f.write(new)
            print(f"{rel}: {count}")
            total += count
    return total


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true", help="list references to files or sections that do not exist")
    mode.add_argument("--rewrite", action="store_true", help="move the old design-document citations to docs/")
    parser.add_argument("root", nargs="?", default=os.path.join(os.path.dirname(__file__), "..", ".."))
    args = parser.parse_args(argv)
    root = os.path.realpath(args.root)
    if args.rewrite:
        print(f"{rewrite(root)} citations rewritten")
        return 0
    problems = check(root)
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} references point nowhere", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
