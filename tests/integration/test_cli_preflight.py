"""Headless ``run`` checks its model (and a scripted model's script) before recording anything,
and says when it falls back to the offline demo model; through a real ``loopcraft`` subprocess."""

from __future__ import annotations

import json
from pathlib import Path

from tests.integration.test_cli_basics import lc


def _runs(repo: Path) -> list[dict[str, object]]:
    out = lc("runs", "--json", cwd=repo)
    assert out.returncode == 0, out.stderr
    listed: list[dict[str, object]] = json.loads(out.stdout)
    return listed


def test_unknown_scripted_model_fails_before_a_run_is_created(git_repo: Path) -> None:
    out = lc("run", "hello", "--model", "scripted/nosuch", cwd=git_repo)
    assert out.returncode == 2, out.stdout + out.stderr
    assert out.stdout == ""  # no "run … started", no progress
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "scripted/nosuch" in lines[0] and ".loopcraft/scripts/nosuch.yaml" in lines[0]
    assert _runs(git_repo) == []


def test_malformed_script_file_names_the_file_and_the_problem(git_repo: Path) -> None:
    scripts = git_repo / ".loopcraft" / "scripts"
    scripts.mkdir(parents=True)
    (scripts / "bad.yaml").write_text("stages:\n  greet: [\n")
    out = lc("run", "hello", "--model", "scripted/bad", "--json", cwd=git_repo)
    assert out.returncode == 2, out.stdout + out.stderr
    assert out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and str(scripts / "bad.yaml") in lines[0] and "not valid YAML" in lines[0]

    (scripts / "bad.yaml").write_text("stages:\n  greet:\n    - txet: typo\n")
    out = lc("run", "hello", "--model", "scripted/bad", cwd=git_repo)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "bad.yaml" in lines[0] and "unknown key" in lines[0]
    assert _runs(git_repo) == []


def test_configured_scripted_model_is_checked_too(git_repo: Path) -> None:
    (git_repo / ".loopcraft").mkdir()
    (git_repo / ".loopcraft" / "config.toml").write_text('model = "scripted/missing"\n')
    out = lc("run", "hello", cwd=git_repo)
    assert out.returncode == 2 and "scripted/missing" in out.stderr and out.stdout == ""
    assert _runs(git_repo) == []


def test_run_on_the_demo_model_says_so_on_stderr_only(git_repo: Path) -> None:
    out = lc("run", "hello", "--json", cwd=git_repo)
    assert out.returncode == 0, out.stderr
    notices = [line for line in out.stderr.splitlines() if "no real model configured" in line]
    assert len(notices) == 1 and "scripted demo model" in notices[0]
    assert json.loads(out.stdout)["status"] == "completed"  # stdout is pure JSON
    assert "no real model configured" not in out.stdout

    plain = lc("run", "hello", cwd=git_repo)
    assert plain.returncode == 0, plain.stderr
    assert "no real model configured" in plain.stderr and "no real model configured" not in plain.stdout


def test_no_notice_when_a_model_is_given(git_repo: Path) -> None:
    out = lc("run", "hello", "--model", "scripted/demo", cwd=git_repo)
    assert out.returncode == 0, out.stderr
    assert "no real model configured" not in out.stdout + out.stderr
