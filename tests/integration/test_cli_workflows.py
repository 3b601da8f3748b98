"""Headless workflow commands as a user runs them: run, runs, show, resume, workflows."""

from __future__ import annotations

import json
from pathlib import Path

from tests.integration.test_cli_basics import lc

WORKFLOW = """
from loopcraft import Context, workflow


@workflow(description="Two stages and a side effect")
async def pair(ctx: Context, topic: str, rounds: int = 1) -> str:
    first = await ctx.task("draft", prompt=f"Draft about {topic}")
    await ctx.tool("note", lambda: Path("note.txt").write_text(first.text) and "noted")
    second = await ctx.task("polish", prompt="Polish it", previous=[first.text])
    return f"{second.text} x{rounds}"


@workflow(description="Always fails")
async def broken(ctx: Context) -> str:
    raise RuntimeError("boom in the workflow")
"""

SCRIPT = """
default:
  - text: "default answer"
stages:
  "draft":
    - text: "a draft"
  "polish":
    - text: "polished"
"""


def _setup(repo: Path) -> None:
    (repo / ".loopcraft" / "workflows").mkdir(parents=True)
    (repo / ".loopcraft" / "scripts").mkdir(parents=True)
    (repo / ".loopcraft" / "workflows" / "pair.py").write_text("from pathlib import Path\n" + WORKFLOW)
    (repo / ".loopcraft" / "scripts" / "t.yaml").write_text(SCRIPT)


def test_run_then_runs_show_and_resume(git_repo: Path) -> None:
    _setup(git_repo)
    out = lc(
        "run", "pair", "--input", "topic=cats", "--input", "rounds=2", "--model", "scripted/t", cwd=git_repo
    )
    assert out.returncode == 0, out.stderr
    assert "✓ draft" in out.stdout and "✓ polish" in out.stdout
    assert "output: polished x2" in out.stdout
    assert (git_repo / "note.txt").read_text() == "a draft"
    run_id = out.stdout.split()[1]

    runs = lc("runs", "--json", cwd=git_repo)
    assert runs.returncode == 0, runs.stderr
    listed = json.loads(runs.stdout)
    assert [r["id"] for r in listed] == [run_id] and listed[0]["status"] == "completed"

    shown = lc("show", run_id, cwd=git_repo)
    assert shown.returncode == 0, shown.stderr
    assert "draft" in shown.stdout and "polish" in shown.stdout and "note" in shown.stdout

    transcript = lc("show", run_id, "--stage", "polish", cwd=git_repo)
    assert transcript.returncode == 0, transcript.stderr
    assert "polished" in transcript.stdout and "a draft" in transcript.stdout  # previous went into the prompt

    again = lc("resume", run_id, "--json", cwd=git_repo)  # a completed run: not in a state to resume
    assert again.returncode == 10, again.stderr
    assert "already completed; nothing to resume" in again.stderr and not again.stdout


def test_exit_codes_and_one_line_errors(git_repo: Path) -> None:
    _setup(git_repo)
    failed = lc("run", "broken", "--model", "scripted/t", "--json", cwd=git_repo)
    assert failed.returncode == 1
    assert "boom in the workflow" in json.loads(failed.stdout)["error"]

    unknown = lc("run", "nope", cwd=git_repo)
    assert unknown.returncode == 4
    assert (
        unknown.stderr.count("\n") == 1
        and "unknown workflow 'nope'" in unknown.stderr
        and "pair" in unknown.stderr
    )

    bad_input = lc("run", "pair", "--input", "rounds=many", "--input", "topic=x", cwd=git_repo)
    assert bad_input.returncode == 2 and bad_input.stderr.count("\n") == 1 and "rounds" in bad_input.stderr

    missing = lc("run", "pair", cwd=git_repo)
    assert missing.returncode == 2 and "topic" in missing.stderr

    malformed = lc("run", "pair", "--input", "topic", cwd=git_repo)
    assert malformed.returncode == 2 and "key=value" in malformed.stderr

    no_run = lc("show", "20990101-000000-abcdef", cwd=git_repo)
    assert no_run.returncode == 4 and no_run.stderr.startswith("error: ")


def test_workflows_lists_builtins_and_reports_broken_files(git_repo: Path) -> None:
    _setup(git_repo)
    (git_repo / ".loopcraft" / "workflows" / "bad.py").write_text("this is not python (\n")
    out = lc("workflows", "--json", cwd=git_repo)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    names = {w["name"] for w in data["workflows"]}
    assert {"pair", "broken", "hello", "demo"} <= names
    assert len(data["errors"]) == 1 and data["errors"][0]["file"].endswith("bad.py")
