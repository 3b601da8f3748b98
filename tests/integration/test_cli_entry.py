"""``loopcraft`` with no command opens the app without typer; every other command line goes
to the typer app, with the same one-line errors and exit codes either way."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from loopcraft.cli import CommandLine, classify


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], CommandLine(True)),
        (["--model", "scripted/demo"], CommandLine(True, "scripted/demo")),
        (["-m", "openai/gpt-5:high"], CommandLine(True, "openai/gpt-5:high")),
        (["--model=scripted/demo"], CommandLine(True, "scripted/demo")),
        (["--model"], CommandLine(False)),  # typer reports the missing value
        (["-m", "--help"], CommandLine(False)),
        (["--model=-x"], CommandLine(False)),
        (["--help"], CommandLine(False)),
        (["--version"], CommandLine(False)),
        (["doctor"], CommandLine(False)),
        (["--model", "scripted/demo", "doctor"], CommandLine(False)),
        (["run", "hello"], CommandLine(False)),
    ],
)
def test_classify(argv: list[str], expected: CommandLine) -> None:
    assert classify(argv) == expected


PROBE = """
import sys
sys.argv = ["loopcraft", *sys.argv[1:]]
from loopcraft import cli
try:
    cli.main()
finally:
    print("typer imported:", "typer" in sys.modules, file=sys.stderr)
"""


def _probe(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_app_path_reports_a_bad_model_without_importing_typer(git_repo: Path) -> None:
    out = _probe(git_repo, "--model", "nosuch/x")
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert lines[0].startswith("error: ") and "unknown provider" in lines[0]
    assert lines[1:] == ["typer imported: False"]


def test_app_path_reports_a_bad_config_file(git_repo: Path) -> None:
    (git_repo / ".loopcraft").mkdir()
    (git_repo / ".loopcraft" / "config.toml").write_text("theme = 3\n")
    out = _probe(git_repo)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 2 and "config.toml" in lines[0] and "theme" in lines[0]


def test_commands_still_go_through_typer(git_repo: Path) -> None:
    out = _probe(git_repo, "--version")
    assert out.returncode == 0
    assert out.stdout.startswith("loopcraft ")
    assert out.stderr.strip().endswith("typer imported: True")
