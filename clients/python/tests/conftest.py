"""The real stack for the client's tests: `npm run stack` (tools/stack/stack.ts: coordinator, generator, judge, DRO
solver and trainer on loopback, and the micro run's inputs) started once per session on free ports with a temporary
DATA_DIR and bearer tokens (AUTH_TOKENS_FILE), as tools/stack/harness.ts starts it for the CLI's suite; stopped
with SIGTERM to its process group at the end.

Cost (2 cores): ~30-60 s for the stack to build the micro inputs and listen, ~15-30 s per micro run.
"""

from __future__ import annotations

import collections
import contextlib
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

REPO = pathlib.Path(__file__).resolve().parents[3]
TSX = REPO / "node_modules/.bin/tsx"
STACK_START_TIMEOUT_S = 300.0
TOKENS = {"alice": "alice-token-0123456789", "bob": "bob-token-0123456789"}  # at least 16 characters


@dataclass
class Started:
    """A process started by `started`: the match of its ready line, and its output so far (for failures)."""

    match: re.Match[str]
    output: collections.deque[str]


@contextlib.contextmanager
def started(command: list[str], env: dict[str, str], ready: str, timeout_s: float) -> Iterator[Started]:
    """Runs `command` in its own process group until its output matches `ready`; SIGTERM to the group at the end
    (SIGKILL after 30 s). Its output is drained all along, so it never blocks on a full pipe."""
    proc = subprocess.Popen(
        command, cwd=REPO, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    output: collections.deque[str] = collections.deque(maxlen=400)
    found: list[re.Match[str]] = []
    event = threading.Event()

    def drain() -> None:
        for line in proc.stdout:
            output.append(line.rstrip())
            if not found and (m := re.search(ready, line)):
                found.append(m)
                event.set()
        event.set()

    drainer = threading.Thread(target=drain, daemon=True)
    drainer.start()
    try:
        if not event.wait(timeout_s) or not found:
            pytest.fail(f"{command[-1]} did not get ready; its output:\n" + "\n".join(output))
        yield Started(found[0], output)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        drainer.join(timeout=5)
        proc.stdout.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Stack:
    coordinator: str
    data_dir: pathlib.Path
    output: collections.deque[str]


@contextlib.contextmanager
def start_stack(data_dir: pathlib.Path, extra_env: dict[str, str] | None = None) -> Iterator[Stack]:
    """`npm run stack` on free ports with `data_dir` as DATA_DIR and the TOKENS as bearer tokens, plus `extra_env`
    (STACK_TLS_DIR, STACK_SKIP_MICRO ...); stopped at the end."""
    if not TSX.exists():
        pytest.fail(f"{TSX} is missing: run `npm ci` at the repo root (the stack runs under tsx)")
    tokens = data_dir / "tokens.txt"
    tokens.write_text("".join(f"{token} {name}\n" for name, token in TOKENS.items()))
    ports = {name: str(free_port()) for name in ("COORDINATOR", "GENERATOR", "JUDGE", "DRO_SOLVER", "TRAINER")}
    env = {"DATA_DIR": str(data_dir), "AUTH_TOKENS_FILE": str(tokens), "NX_DAEMON": "false", "NX_TUI": "false", "LOG_LEVEL": "warn"}
    env.update({f"{name}_PORT": port for name, port in ports.items()})
    env.update(extra_env or {})
    # The stack runs in its own session: a SIGTERM to pytest (a CI timeout) must still stop it, so it interrupts
    # the tests as Ctrl-C does, and the fixtures' teardown runs.
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        with started([str(TSX), "tools/stack/stack.ts"], env, r"\] ready:", STACK_START_TIMEOUT_S) as proc:
            yield Stack(f"127.0.0.1:{ports['COORDINATOR']}", data_dir, proc.output)
    finally:
        signal.signal(signal.SIGTERM, previous)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with start_stack(tmp_path_factory.mktemp("stack")) as running:
        yield running


@contextlib.contextmanager
def python_judge(scorer: pathlib.Path, rule: str) -> Iterator[str]:
    """examples/python-judge/server.py serving `scorer` under `rule` on a free port; yields its host:port."""
    env = {"PYTHONPATH": str(REPO / "clients/python/src")}
    command = [sys.executable, str(REPO / "examples/python-judge/server.py"), "--scorer", f"{scorer}:score", "--rule", rule, "--port", "0"]
    with started(command, env, r"listening on (\S+:\d+)", 60.0) as proc:
        yield proc.match[1]
