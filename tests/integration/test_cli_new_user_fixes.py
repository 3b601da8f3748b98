"""Small CLI defects from a new-user review, through real ``loopcraft`` subprocesses in temp repos:
``review-change`` reviews the changes since the base branch by default, a schema stage on the
offline demo model fails in one line, ``--gates ask`` at the end of stdin stops as needs_human,
hints use the short handle (and a prefix of it names the run), ``answer`` says what it answered,
``--input`` hints, one ``error:`` prefix, and ``@workflow(nested=True)``."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from loopcraft.engine.journal import Journal
from tests.integration.test_cli_basics import lc
from tests.integration.test_workflow_review_change import branch_repo

pytestmark = pytest.mark.timeout(180)

GATED = """
from loopcraft import Context, workflow
from pydantic import BaseModel


class Label(BaseModel):
    label: str


@workflow(name="ship")
async def ship(ctx: Context) -> str:
    ok = await ctx.ui.confirm("Ship it?")
    return "shipped" if ok else "kept"


@workflow(name="classify")
async def classify(ctx: Context) -> str:
    done = await ctx.task("classify", prompt="Label this change.", schema=Label)
    return done.structured["label"]


@workflow(name="broke")
async def broke(ctx: Context) -> str:
    ctx.exit("failed", "error: the disk is full")
    return ""
"""

NESTED = """
from loopcraft import Context, workflow


@workflow(name="inner", nested=True)
async def inner(ctx: Context) -> str:
    return "inner"
"""


def _repo(git_repo: Path) -> Path:
    (git_repo / ".loopcraft" / "workflows").mkdir(parents=True, exist_ok=True)
    (git_repo / ".loopcraft" / "workflows" / "fx.py").write_text(GATED)
    return git_repo


def _error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if "error:" in line]


# ----- 1. review-change defaults to the base branch ---------------------------------------------


def _review_script(repo: Path) -> None:
    approve = [{"json": {"approve": True, "findings": []}}]
    stages = {"scout": [{"text": "calc.py is new."}], "synthesis": [{"json": {"summary": "ok"}}]}
    stages["review-*"] = approve
    (repo / ".loopcraft" / "scripts").mkdir(parents=True, exist_ok=True)
    (repo / ".loopcraft" / "scripts" / "r.yaml").write_text(yaml.safe_dump({"stages": stages}))


def test_review_change_defaults_to_the_changes_since_the_base_branch(git_repo: Path) -> None:
    subprocess.run(["git", "-C", str(git_repo), "branch", "-m", "main", "master"], check=True)
    branch_repo(git_repo)  # on `feature`, one commit ahead of `master`
    (git_repo / "notes.txt").write_text("uncommitted, not part of master...HEAD\n")
    _review_script(git_repo)
    out = lc("run", "review-change", "--model", "scripted/r", "--json", cwd=git_repo)
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    folder = git_repo / ".loopcraft" / "runs" / info["id"] / "artifacts" / "review"
    change = (folder / "change.md").read_text()
    assert change.startswith("# Change: git diff master...HEAD") and "return a / b" in change
    assert "notes.txt" not in change
    assert (folder / "review.md").read_text().startswith("# Review of master...HEAD: approved")


def test_review_change_without_a_base_branch_names_the_input_to_give(tmp_path: Path) -> None:
    repo = tmp_path / "trunk"
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t"}
    env = {**os.environ, **env, "GIT_COMMITTER_EMAIL": "t@t"}
    subprocess.run(["git", "init", "-q", "-b", "trunk", str(repo)], check=True)
    (repo / "a.txt").write_text("a\n")
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(repo), "commit", "-qm", "a"], check=True, env=env)
    out = lc("run", "review-change", "--model", "scripted/demo", cwd=repo)
    assert out.returncode == 1, out.stderr
    (line,) = _error_lines(out.stderr)
    assert line.startswith("error: review-change: no base branch") and "--input target=" in line


# ----- 2. a schema stage on the offline demo model --------------------------------------------


def test_a_schema_stage_on_the_demo_model_fails_in_one_line_without_retry_noise(
    git_repo: Path, tmp_path: Path
) -> None:
    calls = tmp_path / "calls.jsonl"
    out = lc(
        "run",
        "classify",
        "--model",
        "scripted/demo",
        cwd=_repo(git_repo),
        env={"LOOPCRAFT_SCRIPTED_CALL_LOG": str(calls)},
    )
    assert out.returncode == 1, out.stderr
    (line,) = _error_lines(out.stderr)
    assert line.startswith("error: stage 'classify' needs structured output (Label)")
    assert "--model" in line and "corrections" not in line and "Invalid JSON" not in line
    (stage,) = [x for x in out.stdout.splitlines() if "✗ classify" in x]
    assert "needs structured output" in stage
    assert len(calls.read_text().splitlines()) <= 2  # not the answer and three corrections


# ----- 3. --gates ask with stdin at its end --------------------------------------------------


@pytest.mark.parametrize("stdin", ["devnull", "closed-pipe"])
def test_gates_ask_at_the_end_of_stdin_stops_as_needs_human(git_repo: Path, stdin: str) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "loopcraft", "run", "ship", "--gates", "ask"],
        cwd=_repo(git_repo),
        stdin=subprocess.DEVNULL if stdin == "devnull" else subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    if proc.stdin is not None:
        proc.stdin.close()
        proc.stdin = None  # closed: communicate() must not flush it
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 5, err
    assert "needs_human" in out and "no more input on stdin" in out
    assert "answer with: loopcraft answer" in out and "resume with:" in out
    assert "Traceback" not in err and "crashed" not in out + err


# ----- 4. short handles in hints, and their prefixes -------------------------------------------


def _stopped_ship(repo: Path) -> tuple[subprocess.CompletedProcess[str], str]:
    out = lc("run", "ship", "--gates", "stop", cwd=repo)
    assert out.returncode == 5, out.stderr
    run_id = out.stdout.split()[1]
    return out, run_id


def test_hints_use_the_short_handle_and_a_prefix_of_it_names_the_run(git_repo: Path) -> None:
    repo = _repo(git_repo)
    out, run_id = _stopped_ship(repo)
    short = run_id.rsplit("-", 1)[1]
    hints = [x for x in (out.stdout + out.stderr).splitlines() if "loopcraft answer" in x or "resume" in x]
    assert hints and all(run_id not in x for x in hints), hints
    assert f"resume with: answer it (`loopcraft prompts`), then `loopcraft resume {short}`" in out.stdout
    assert f"loopcraft answer {short} " in out.stderr
    shown = lc("show", short[:4], cwd=repo)
    assert shown.returncode == 0 and run_id in shown.stdout, shown.stderr
    prompts = lc("prompts", "--run", short[:3], "--json", cwd=repo)
    assert [p["run_id"] for p in json.loads(prompts.stdout)] == [run_id], prompts.stderr


def _fake_runs(db: Path, ids: list[str]) -> None:
    async def make() -> None:
        journal = await Journal.open(db)
        for run_id in ids:
            await journal.create_run(run_id, "ship", {})
        await journal.close()

    asyncio.run(make())


def test_an_ambiguous_short_prefix_lists_the_candidates_and_exits_2(git_repo: Path, tmp_path: Path) -> None:
    db = tmp_path / "journal.db"
    _fake_runs(db, ["20260101-101010-abc123", "20260101-101011-abc999", "20260101-101012-fed000"])
    env = {"LOOPCRAFT_DB": str(db)}
    out = lc("show", "abc", cwd=_repo(git_repo), env=env)
    assert out.returncode == 2, out.stderr
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith("error: run 'abc' is ambiguous") and "abc123" in line and "abc999" in line
    one = lc("show", "abc9", cwd=git_repo, env=env)  # unique: the run, not "unknown run"
    assert one.returncode == 0 and "20260101-101011-abc999" in one.stdout, one.stderr
    time_part = lc("show", "1010", cwd=git_repo, env=env)  # inside the ids' time, not a handle
    assert time_part.returncode == 4, time_part.stderr


# ----- 5. answer says what it answered; input hints; one error: prefix --------------------------


def test_answer_confirms_what_was_answered_and_what_next(git_repo: Path) -> None:
    repo = _repo(git_repo)
    _, run_id = _stopped_ship(repo)
    short = run_id.rsplit("-", 1)[1]
    kv = lc("answer", short, "answer=yes", cwd=repo)
    assert kv.returncode == 2
    (line,) = kv.stderr.strip().splitlines()
    assert "not key=value" in line and f"loopcraft answer {short} yes" in line
    done = lc("answer", short, "yes", cwd=repo)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        f"answered 'Ship it?' → yes · run {short}; resume with: loopcraft resume {short}"
    )


@pytest.mark.parametrize(
    ("given", "hint"),
    [("topic", "--input topic=VALUE"), ("src/app.py", "--input NAME=src/app.py")],
)
def test_an_input_without_key_equals_gets_a_hint_of_the_right_form(
    git_repo: Path, given: str, hint: str
) -> None:
    out = lc("run", "demo", "--input", given, cwd=git_repo)
    assert out.returncode == 2
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith(f"error: bad --input {given!r}") and hint in line


def test_every_error_line_has_one_error_prefix(git_repo: Path) -> None:
    repo = _repo(git_repo)
    failed = lc("run", "broke", cwd=repo)
    assert failed.returncode == 1
    assert _error_lines(failed.stderr) == ["error: the disk is full"]
    bad_model = lc("run", "ship", "--model", "nonsense", cwd=repo)
    assert bad_model.returncode == 2
    (line,) = bad_model.stderr.strip().splitlines()
    assert line.count("error:") == 1 and line.startswith("error: config: "), line


# ----- 6. @workflow(nested=True) -----------------------------------------------------------------


def test_nested_workflows_are_marked_and_running_one_alone_says_so(git_repo: Path) -> None:
    repo = _repo(git_repo)
    (repo / ".loopcraft" / "workflows" / "inner.py").write_text(NESTED)
    listed: dict[str, Any] = json.loads(lc("workflows", "--json", cwd=repo).stdout)
    nested = {w["name"]: w["nested"] for w in listed["workflows"]}
    assert nested["inner"] is True and nested["demo-review"] is True and nested["demo"] is False
    text = lc("workflows", cwd=repo).stdout
    assert "(nested)" in next(x for x in text.splitlines() if x.startswith("inner "))
    ran = lc("run", "inner", cwd=repo)
    assert ran.returncode == 0, ran.stderr
    notes = [x for x in ran.stderr.splitlines() if "nested workflow" in x]
    assert len(notes) == 1 and notes[0].startswith("note: inner is a nested workflow")
