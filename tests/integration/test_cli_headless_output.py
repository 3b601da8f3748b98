"""Headless output a script can trust (issue 10 item 7): one summary line, every ``error:`` line
on stderr, ``resume with`` only when it can help, one-line unknown options, a broken workflow
file is bad input (2), an environment config error names its variable. Real subprocesses in a
temp git repo with the scripted model."""

from __future__ import annotations

import json
from pathlib import Path

from tests.integration.test_cli_basics import lc

FLOWS = """
from loopcraft import Context, workflow


@workflow(description="one stage")
async def one(ctx: Context) -> str:
    return (await ctx.task("write", prompt="go")).text


@workflow(description="ends blocked")
async def stuck(ctx: Context) -> str:
    await ctx.task("write", prompt="go")
    ctx.exit("blocked", "reviewers did not approve")
    return "never"


@workflow(description="fails")
async def boom(ctx: Context) -> str:
    await ctx.task("write", prompt="go")
    raise RuntimeError("kaboom in the workflow")
"""

SCRIPT = """
stages:
  "write":
    - text: "written"
      usage: {input: 100, output: 10}
"""


def _repo(git_repo: Path) -> Path:
    (git_repo / ".loopcraft" / "workflows").mkdir(parents=True, exist_ok=True)
    (git_repo / ".loopcraft" / "scripts").mkdir(parents=True, exist_ok=True)
    (git_repo / ".loopcraft" / "workflows" / "flows.py").write_text(FLOWS)
    (git_repo / ".loopcraft" / "scripts" / "s.yaml").write_text(SCRIPT)
    return git_repo


def test_a_completed_run_ends_with_one_summary_line(git_repo: Path) -> None:
    out = lc("run", "one", "--model", "scripted/s", cwd=_repo(git_repo))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    run_lines = [line for line in lines if line.startswith("run ")]
    assert len(run_lines) == 2, lines  # "started" and the summary, not "run X completed" besides
    assert " completed in " in lines[-2] and "110 tokens" in lines[-2], lines
    assert lines[-1] == "output: written"
    assert "resume with" not in out.stdout


def test_a_failed_run_puts_its_error_on_stderr_once(git_repo: Path) -> None:
    out = lc("run", "boom", "--model", "scripted/s", cwd=_repo(git_repo))
    assert out.returncode == 1
    assert "error:" not in out.stdout
    assert out.stdout.count("kaboom") == 0, out.stdout
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "kaboom" in errors[0], out.stderr
    assert "resume with" not in out.stdout + out.stderr


def test_blocked_is_not_told_to_resume(git_repo: Path) -> None:
    out = lc("run", "stuck", "--model", "scripted/s", cwd=_repo(git_repo))
    assert out.returncode == 3, out.stderr
    assert "resume with" not in out.stdout + out.stderr
    assert "reviewers did not approve" in out.stderr


def test_unknown_option_is_one_line_naming_it(git_repo: Path) -> None:
    out = lc("run", "one", "--bogus", cwd=_repo(git_repo))
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert "--bogus" in lines[0] and "see loopcraft run --help" in lines[0]
    assert lines[0].startswith("error: ")


def test_a_workflow_file_that_fails_to_import_is_bad_input(git_repo: Path) -> None:
    (git_repo / ".loopcraft" / "workflows").mkdir(parents=True)
    (git_repo / ".loopcraft" / "workflows" / "broken.py").write_text("import no_such_module_x\n")
    out = lc("run", "broken", cwd=git_repo)
    assert out.returncode == 2, out.stderr
    assert "broken.py" in out.stderr and "no_such_module_x" in out.stderr
    missing = lc("run", "nope", cwd=git_repo)
    assert missing.returncode == 4


def test_env_config_error_names_the_variable(git_repo: Path) -> None:
    out = lc("run", "one", cwd=git_repo, env={"LOOPCRAFT_AGENT__MAX_TURNS": "lots"})
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "LOOPCRAFT_AGENT__MAX_TURNS" in lines[0], out.stderr


def test_json_run_keeps_stdout_parseable(git_repo: Path) -> None:
    out = lc("run", "boom", "--model", "scripted/s", "--json", cwd=_repo(git_repo))
    assert out.returncode == 1
    assert json.loads(out.stdout)["status"] == "failed"
