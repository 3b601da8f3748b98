"""Issue 19: ``--sandbox required`` on the headless commands that run agents refuses to start
(one line, exit 9) when no OS sandbox works; through a real ``loopcraft`` subprocess."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.integration.test_cli_basics import lc
from tests.integration.test_cli_preflight import _runs


@pytest.fixture
def no_bwrap_path(tmp_path: Path) -> str:
    """A PATH holding git but no ``bwrap``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    git = shutil.which("git")
    assert git is not None
    (bin_dir / "git").symlink_to(git)
    return str(bin_dir)


def _refused(out: subprocess.CompletedProcess[str], what: str) -> None:
    assert out.returncode == 9, out.stdout + out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "sandbox is required" in lines[0] and what in lines[0], lines


@pytest.mark.parametrize("command", [["run", "hello", "--model", "scripted/demo"], ["resume", "nosuchrun"]])
def test_sandbox_required_flag_refuses_without_bwrap(
    git_repo: Path, no_bwrap_path: str, command: list[str]
) -> None:
    out = lc(*command, "--sandbox", "required", cwd=git_repo, env={"PATH": no_bwrap_path})
    _refused(out, "bubblewrap")
    assert _runs(git_repo) == []


def test_sandbox_required_from_env_and_config_refuses_too(git_repo: Path, no_bwrap_path: str) -> None:
    env = {"PATH": no_bwrap_path, "LOOPCRAFT_AGENT__SANDBOX_REQUIRED": "true"}
    _refused(lc("run", "hello", "--model", "scripted/demo", cwd=git_repo, env=env), "bubblewrap")
    (git_repo / ".loopcraft").mkdir(exist_ok=True)
    (git_repo / ".loopcraft" / "config.toml").write_text("[agent]\nsandbox_required = true\n")
    _refused(
        lc("run", "hello", "--model", "scripted/demo", cwd=git_repo, env={"PATH": no_bwrap_path}),
        "bubblewrap",
    )
    # the flag wins over config: required with the sandbox switched off is a contradiction, refused
    _refused(
        lc("run", "hello", "--sandbox", "off", cwd=git_repo, env={"PATH": no_bwrap_path}),
        "agent.sandbox is off",
    )


def test_a_bad_sandbox_value_is_exit_2(git_repo: Path) -> None:
    out = lc("run", "hello", "--sandbox", "maybe", cwd=git_repo)
    assert out.returncode == 2 and "'maybe' is not one of 'required', 'workspace-write'" in out.stderr


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")
def test_sandbox_required_runs_where_bwrap_works(git_repo: Path) -> None:
    out = lc(
        "run",
        "hello",
        "--model",
        "scripted/demo",
        "--sandbox",
        "required",
        cwd=git_repo,
        env=dict(os.environ),
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert len(_runs(git_repo)) == 1
