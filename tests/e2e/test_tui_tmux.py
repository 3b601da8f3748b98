"""End to end in a real terminal: start ``python -m loopcraft`` in tmux inside a temp git
repo, run the demo workflow, answer its approval gate from the keyboard, read the screen."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.app.tui_support import DEMO_STAGES

pytestmark = [
    pytest.mark.tmux,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]


# A private tmux server: a user's (or another test's) server would hand the app its own environment.
SOCKET = f"loopcraft-e2e-{os.getpid()}"


def _tmux(*args: str, check: bool = False) -> str:
    return subprocess.run(["tmux", "-L", SOCKET, *args], capture_output=True, text=True, check=check).stdout


def _wait_screen(session: str, check: Callable[[str], bool], timeout: float = 40.0) -> str:
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = _tmux("capture-pane", "-t", session, "-p")
        if check(screen):
            return screen
        time.sleep(0.25)
    print(screen)  # shown by pytest on failure
    raise AssertionError("the screen never matched (it is printed above)")


@pytest.fixture
def session(git_repo: Path, tmp_path: Path) -> Iterator[str]:
    name = f"loopcraft-e2e-{os.getpid()}"
    env = {"LOOPCRAFT_HOME": str(tmp_path / "home"), "LOOPCRAFT_NO_OLLAMA_PROBE": "1", "LOOPCRAFT_TRUST": "1"}
    exports = " ".join(f"{k}={v}" for k, v in env.items())
    command = f"cd {git_repo} && sleep 0.5 && env {exports} {sys.executable} -m loopcraft"
    _tmux("new-session", "-d", "-s", name, "-x", "160", "-y", "45", command, check=True)
    _tmux("resize-window", "-t", name, "-x", "160", "-y", "45")
    try:
        yield name
    finally:
        _tmux("kill-server")


def test_demo_workflow_runs_and_gate_is_answered_from_keyboard(session: str) -> None:
    # Typed at once, before the app's first frame (review-10 F3: such type-ahead was lost, its
    # Enter read as a new line): the command is kept, waits for the engine, and runs.
    _tmux("send-keys", "-t", session, "-l", "/workflow run demo")
    _tmux("send-keys", "-t", session, "Enter")
    waiting = "Prompts (1 pending)", "prompts 1", "· awaiting input"  # the graph root line
    screen = _wait_screen(session, lambda s: all(w in s for w in waiting))
    assert "not open yet" not in screen and "scripted/demo" in screen
    assert "Apply the demo plan for the repository?" in screen
    for stage in DEMO_STAGES:
        assert stage in screen
    assert "awaiting_input" in screen and "prompts 1" in screen
    _tmux("send-keys", "-t", session, "F4")
    time.sleep(0.8)  # past the prompt's grace period
    _tmux("send-keys", "-t", session, "y")
    screen = _wait_screen(session, lambda s: "implement" in s and "· completed" in s)
    assert "prompts 0" in screen and "Prompts (1 pending)" not in screen


def test_a_chat_line_typed_before_the_first_frame_is_answered(session: str) -> None:
    """A message typed at once waits for the configuration the first frame only previewed (it
    failed with an internal error: the config was not loaded yet)."""
    _tmux("send-keys", "-t", session, "-l", "hello there")
    _tmux("send-keys", "-t", session, "Enter")
    screen = _wait_screen(session, lambda s: "offline demo model" in s and "hello there" in s)
    assert "internal error" not in screen


def test_the_first_chat_line_typed_at_once_gets_the_workflow_tool(session: str) -> None:
    """The chat session made for a line typed before the engine opened had no ``workflow`` tool
    for its whole life (re-review): it now waits for the engine, so the demo request runs."""
    _tmux("send-keys", "-t", session, "-l", "run the demo workflow and tell me when it needs me")
    _tmux("send-keys", "-t", session, "Enter")
    _wait_screen(session, lambda s: "permission needed: workflow" in s)
    time.sleep(0.8)  # past the card's grace period
    _tmux("send-keys", "-t", session, "a")
    screen = _wait_screen(session, lambda s: "waiting for you at its approval gate" in s)
    assert "unknown tool" not in screen
