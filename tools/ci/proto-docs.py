#!/usr/bin/env python3
"""Fails (exit 1) when an element of the .proto contracts carries no comment, listing each as file:line.

Every message, enum, service, rpc, oneof, field (map and extension fields included) and enum value of every .proto
under ROOT/proto but the vendored proto/third_party (ROOT defaults to this repository) needs a leading comment: `//` (or `/* */`) lines directly
above it, with no blank line between (protoc's leading comment, which the generated code and the descriptor set
carry). A field or an enum value may instead carry a trailing comment on the line its `;` ends. Option, reserved,
extensions, syntax, package and import statements need none. Standard library only; run from anywhere:

    python3 tools/ci/proto-docs.py [ROOT]

Prints one line per undocumented element and a summary line `N proto files, N elements (...), N undocumented`.
"""
from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
KINDS = ("message", "enum", "service", "rpc", "oneof", "field", "enum value")
TOKEN = re.compile(
    r'(?P<space>[ \t\r\f\v]+)|(?P<newline>\n)|(?P<line_comment>//[^\n]*)|(?P<block_comment>/\*.*?\*/)'
    r'|(?P<string>"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\')|(?P<word>[A-Za-z_.][A-Za-z0-9_.]*|[0-9][A-Za-z0-9_.+-]*)'
    r'|(?P<symbol>.)',
    re.S,
)


@dataclass
class Token:
    text: str
    line: int
    documented: bool  # comment-only lines end directly above this token's line


@dataclass
class Element:
    file: str
    line: int
    kind: str
    name: str
    documented: bool


def tokenize(text: str) -> tuple[list[Token], set[int]]:
    """The tokens (comments dropped), and the lines on which a comment ends after code (trailing comments)."""
    tokens: list[Token] = []
    comment_lines: set[int] = set()  # lines holding a comment and nothing else
    code_lines: set[int] = set()
    trailing: set[int] = set()
    raw: list[tuple[str, int]] = []
    line = 1
    for m in TOKEN.finditer(text):
        kind, value = m.lastgroup, m.group()
        if kind == "newline":
            line += 1
        elif kind in ("line_comment", "block_comment"):
            end = line + value.count("\n")
            if line in code_lines:
                trailing.add(line)
            else:
                comment_lines.update(range(line, end + 1))
            line = end
        elif kind != "space":
            raw.append((value, line))
            code_lines.add(line)
    comment_lines -= code_lines
    tokens = [Token(value, ln, ln - 1 in comment_lines) for value, ln in raw]
    return tokens, trailing


class Parser:
    def __init__(self, file: str, text: str):
        self.file = file
        self.tokens, self.trailing = tokenize(text)
        self.pos = 0
        self.elements: list[Element] = []

    def peek(self, ahead: int = 0) -> str:
        i = self.pos + ahead
        return self.tokens[i].text if i < len(self.tokens) else ""

    def take(self, expected: str | None = None) -> Token:
        if self.pos >= len(self.tokens):
            raise SyntaxError(f"{self.file}: unexpected end of file")
        token = self.tokens[self.pos]
        if expected is not None and token.text != expected:
            raise SyntaxError(f"{self.file}:{token.line}: expected {expected!r}, found {token.text!r}")
        self.pos += 1
        return token

    def skip_statement(self) -> Token:
        """Skips to the `;` that ends this statement (brackets and aggregate option values balanced); returns it."""
        depth = 0
        while True:
            token = self.take()
            if token.text in "{[(<" and len(token.text) == 1:
                depth += 1
            elif token.text in "}])>" and len(token.text) == 1:
                depth -= 1
            elif token.text == ";" and depth == 0:
                return token

    def add(self, kind: str, name: str, first: Token, last: Token | None = None) -> None:
        trailing = last is not None and kind in ("field", "enum value") and last.line in self.trailing
        self.elements.append(Element(self.file, first.line, kind, name, first.documented or trailing))

    def parse(self) -> list[Element]:
        package = ""
        while self.pos < len(self.tokens):
            word = self.peek()
            if word == "package":
                self.take()
                package = self.take().text + "."
                self.take(";")
            elif word in ("message", "enum", "service", "extend"):
                self.definition(package)
            elif word == ";":
                self.take()
            else:  # syntax, edition, import, option
                self.skip_statement()
        return self.elements

    def definition(self, scope: str) -> None:
        first = self.take()
        if first.text == "extend":
            self.take()  # the extended message
            self.body(scope, self.member)
            return
        name = scope + self.take().text
        self.add(first.text, name, first)
        member = {"message": self.member, "enum": self.enum_value, "service": self.rpc}[first.text]
        self.body(name + ".", member)

    def body(self, scope: str, member) -> None:
        self.take("{")
        while self.peek() != "}":
            if self.pos >= len(self.tokens):
                raise SyntaxError(f"{self.file}: unexpected end of file (a missing '}}')")
            if self.peek() == ";":
                self.take()
            elif self.peek() in ("option", "reserved", "extensions"):
                self.skip_statement()
            else:
                member(scope)
        self.take("}")

    def member(self, scope: str) -> None:
        """A statement of a message, oneof or extend body."""
        word = self.peek()
        if word in ("message", "enum", "extend") and self.peek(1) != "=" and self.peek(2) != "=":
            self.definition(scope)
        elif word == "oneof" and self.peek(2) == "{":
            first = self.take()
            name = scope + self.take().text
            self.add("oneof", name, first)
            self.body(scope, self.member)  # oneof members are fields of the message
        else:  # [label] type name = number [options];   map<K, V> name = number;
            first = self.tokens[self.pos]
            start = self.pos
            last = self.skip_statement()
            statement = [t.text for t in self.tokens[start:self.pos]]
            name = statement[statement.index("=") - 1] if "=" in statement else "?"
            self.add("field", scope + name, first, last)

    def enum_value(self, scope: str) -> None:
        first = self.tokens[self.pos]
        last = self.skip_statement()
        self.add("enum value", scope + first.text, first, last)

    def rpc(self, scope: str) -> None:
        first = self.take("rpc")
        self.add("rpc", scope + self.take().text, first)
        depth = 0
        while True:
            token = self.take()
            if token.text == "(":
                depth += 1
            elif token.text == ")":
                depth -= 1
            elif depth == 0 and token.text == ";":
                return
            elif depth == 0 and token.text == "{":
                self.pos -= 1
                self.body(scope, lambda _scope: self.skip_statement())
                if self.peek() == ";":
                    self.take()
                return


def proto_files(root: str) -> list[str]:
    files = []
    for folder, dirs, names in os.walk(os.path.join(root, "proto")):
        # proto/third_party holds vendored files (buf/validate/validate.proto), documented by their authors, not ours.
        dirs[:] = sorted(d for d in dirs if not (folder == os.path.join(root, "proto") and d == "third_party"))
        files += [os.path.relpath(os.path.join(folder, n), root) for n in sorted(names) if n.endswith(".proto")]
    return files


def main(argv: list[str]) -> int:
    root = os.path.abspath(argv[1]) if len(argv) > 1 else ROOT
    files = proto_files(root)
    elements: list[Element] = []
    for file in files:
        with open(os.path.join(root, file), encoding="utf8") as f:
            try:
                elements += Parser(file, f.read()).parse()
            except SyntaxError as error:  # this parser's, not Python's: a construct it does not know
                print(f"cannot parse {error}")
                return 1
    missing = [e for e in elements if not e.documented]
    for e in missing:
        print(f"{e.file}:{e.line}: {e.kind} {e.name} has no comment")
    counts = ", ".join(
        f"{sum(1 for e in elements if e.kind == kind)} {kind}s"
        for kind in KINDS
    )
    print(f"{len(files)} proto files, {len(elements)} elements ({counts}), {len(missing)} undocumented")
    return 1 if missing or not files else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
