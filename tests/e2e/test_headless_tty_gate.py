"""Headless ``loopcraft run`` / ``resume`` in a real terminal (a pty): with ``--gates auto`` (the
default) each human gate is asked in the terminal, an invalid answer is refused with the reason and
asked again, and the answers reach the workflow; ``--gates stop`` stops at the gate even with a
terminal, and resuming that run in a terminal asks there."""

from __future__ import annotations

import os
import pty
import select
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

WORKFLOW = """
from loopcraft import Context, workflow


@workflow(name="ship")
async def ship(ctx: Context) -> str:
    ok = await ctx.ui.confirm("Ship it?")
    colour = await ctx.ui.select("Which colour?", ["red", "green", "blue"])
    name = await ctx.ui.input("Release name?")
    return f"{ok}|{colour}|{name}"
"""


class Terminal:
    """A command on the slave side of a pty; the test reads the screen text and types lines."""

    def __init__(self, argv: list[str], cwd: Path, env: dict[str, str]) -> None:
        master, slave = pty.openpty()
        self.proc = subprocess.Popen(
            argv, cwd=cwd, env=env, stdin=slave, stdout=slave, stderr=slave, start_new_session=True
        )
        os.close(slave)
        self.master = master
        self.text = ""
        self.pos = 0

    def _read(self, wait: float) -> bool:
        """Read what is there; False at the end of the output (the command exited)."""
        ready, _, _ = select.select([self.master], [], [], wait)
        if not ready:
            return True
        try:
            data = os.read(self.master, 65536)
        except OSError:  # EIO: every writer has closed the slave
            return False
        self.text += data.decode(errors="replace").replace("\r\n", "\n")
        return bool(data)

    def expect(self, needle: str, timeout: float = 30.0) -> str:
        """Wait for ``needle`` after what was already matched; returns the text up to its end."""
        deadline = time.monotonic() + timeout
        while needle not in self.text[self.pos :]:
            if time.monotonic() > deadline or not self._read(0.1):
                raise AssertionError(f"{needle!r} never appeared; the terminal shows:\n{self.text}")
        end = self.text.index(needle, self.pos) + len(needle)
        seen, self.pos = self.text[self.pos : end], end
        return seen

    def type(self, line: str) -> None:
        os.write(self.master, (line + "\n").encode())

    def finish(self, timeout: float = 30.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._read(0.1):
            if self.proc.poll() is not None and not select.select([self.master], [], [], 0)[0]:
                break
        return self.proc.wait(timeout=max(1.0, deadline - time.monotonic()))

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)


@pytest.fixture
def repo(git_repo: Path) -> Path:
    (git_repo / ".loopcraft" / "workflows").mkdir(parents=True)
    (git_repo / ".loopcraft" / "workflows" / "ship.py").write_text(WORKFLOW)
    return git_repo


Open = Callable[..., Terminal]


@pytest.fixture
def terminal(repo: Path, tmp_path: Path) -> Iterator[Open]:
    """``terminal("run", "ship")``: ``loopcraft run ship`` in a new pty (closed after the test)."""
    opened: list[Terminal] = []
    env = {**os.environ, "LOOPCRAFT_DB": str(tmp_path / "journal.db"), "TERM": "xterm"}

    def open_terminal(*args: str) -> Terminal:
        opened.append(Terminal([sys.executable, "-m", "loopcraft", *args], repo, env))
        return opened[-1]

    yield open_terminal
    for term in opened:
        term.close()


def _prompts(tmp_path: Path) -> list[tuple[str, str, str | None]]:
    conn = sqlite3.connect(tmp_path / "journal.db")
    try:
        return conn.execute("SELECT kind, status, answer FROM prompts ORDER BY created").fetchall()
    finally:
        conn.close()


def _answer_the_gates(term: Terminal) -> None:
    term.expect("? Ship it? [y/n]\n> ")
    term.type("maybe")
    term.expect("answer 'maybe' is not yes or no")
    term.expect("? Ship it? [y/n]\n> ")  # asked again
    term.type("y")
    term.expect("? Which colour?\n    1. red\n    2. green\n    3. blue\n> ")
    term.type("2")
    term.expect("? Release name?\n> ")
    term.type("v1.2 final")


def test_run_in_a_terminal_asks_each_gate_there(terminal: Open, tmp_path: Path) -> None:
    term = terminal("run", "ship")  # --gates auto: a terminal asks
    _answer_the_gates(term)
    term.expect("output: True|green|v1.2 final")
    assert term.finish() == 0, term.text
    assert "(ship) completed" in term.text
    assert _prompts(tmp_path) == [
        ("confirm", "answered", "true"),
        ("select", "answered", '"green"'),
        ("input", "answered", '"v1.2 final"'),
    ]


def test_gates_stop_in_a_terminal_then_resume_there(terminal: Open, tmp_path: Path) -> None:
    term = terminal("run", "ship", "--gates", "stop")
    term.expect("needs_human")
    assert term.finish() == 5, term.text
    assert "[y/n]" not in term.text  # nothing was asked
    run_id = term.text.split("run ", 1)[1].split()[0]
    assert _prompts(tmp_path) == [("confirm", "pending", None)]

    resumed = terminal("resume", run_id)
    _answer_the_gates(resumed)
    resumed.expect("output: True|green|v1.2 final")
    assert resumed.finish() == 0, resumed.text
    assert [status for _, status, _ in _prompts(tmp_path)] == ["answered"] * 3


def test_an_answered_gate_line_has_no_negative_elapsed_time(terminal: Open) -> None:
    term = terminal("run", "ship")
    _answer_the_gates(term)
    term.expect("output: True|green|v1.2 final")
    assert term.finish() == 0, term.text
    assert "✓ confirm  completed" in term.text
    assert " -0.0s" not in term.text
