"""Headless start: a command that will call a model starts litellm's import at once in a
background thread, before typer and the config are imported; other commands never do; the
process exits with the command's code and its output flushed, without the interpreter's
teardown (loopcraft/cli.py ``entry``). Checked in fresh interpreters."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from loopcraft.cli import needs_model
from tests.cli_process import run_python

ROOT = Path(__file__).resolve().parents[2]

PROBE = r"""
import json, sys, threading, time
from importlib.abc import MetaPathFinder

seen = {}


class Watch(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name in ("litellm", "typer", "loopcraft.config") and name not in seen:
            seen[name] = {"at": time.perf_counter(), "thread": threading.current_thread().name}
        return None


sys.meta_path.insert(0, Watch())
sys.argv = ["loopcraft", *sys.argv[1:]]
from loopcraft import cli

try:
    cli.main()
except SystemExit:
    pass
print(json.dumps(seen))
"""


def _probe(cwd: Path, *args: str) -> dict[str, dict[str, object]]:
    done = run_python(PROBE, *args, cwd=cwd)
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("argv", "tty", "expected"),
    [
        (["run", "hello"], True, True),
        (["-v", "run", "hello"], True, True),
        (["--model", "scripted/demo", "resume", "r1"], True, True),
        (["--log-level", "debug", "serve"], True, True),
        (["fork", "r1", "--from", "s"], True, True),
        (["eval", "w", "--cases", "c.jsonl"], True, True),
        (["chat", "-p", "hi"], True, True),
        (["chat", "--prompt=hi"], True, True),
        (["chat"], False, True),  # a prompt on stdin
        (["chat"], True, False),  # opens the app: it imports litellm after its first frame
        (["run", "--help"], True, False),
        (["runs"], True, False),
        (["show", "r1"], True, False),
        (["--model", "run"], True, False),  # "run" is the model here, not a command
        ([], True, False),
    ],
)
def test_needs_model(argv: list[str], tty: bool, expected: bool) -> None:
    assert needs_model(argv, stdin_is_tty=tty) is expected


def test_run_starts_importing_litellm_in_a_thread_before_the_config(git_repo: Path) -> None:
    seen = _probe(git_repo, "run", "no-such-workflow")
    assert seen["litellm"]["thread"] == "loopcraft-litellm-import", seen
    assert seen["litellm"]["at"] < seen["typer"]["at"] < seen["loopcraft.config"]["at"], seen  # type: ignore[operator]


def test_a_command_without_a_model_never_imports_litellm(git_repo: Path) -> None:
    seen = _probe(git_repo, "runs")
    assert "loopcraft.config" in seen
    assert "litellm" not in seen


def test_the_console_entry_keeps_the_exit_code_and_the_output(git_repo: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = [sys.executable, "-m", "loopcraft"]
    failed = subprocess.run(
        [*run, "run", "no-such-workflow"], cwd=git_repo, env=env, capture_output=True, text=True, timeout=120
    )
    assert failed.returncode == 4, failed.stderr  # not found
    assert failed.stderr.strip().splitlines()[-1].startswith("error: unknown workflow 'no-such-workflow'")
    listed = subprocess.run(
        [*run, "runs", "--json"], cwd=git_repo, env=env, capture_output=True, text=True, timeout=60
    )
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == []
