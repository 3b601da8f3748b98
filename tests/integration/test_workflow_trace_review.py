"""The built-in ``trace-review`` on the scripted model in a real git repo: three seeded failed runs
of a workflow defined in a file of the repo; the reviewer's findings are checked against the
transcript files (one citing a run that never was and one citing a line past the end are dropped);
the proposal is an edit of the workflow on a branch, and the live file changes only when the gate
approves (approved: merged; rejected: the branch stays, nothing merged)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from loopcraft.config import Config
from loopcraft.engine.discovery import load_file
from loopcraft.engine.service import Engine
from tests.integration.test_agent_support import scripted_model, tool_call

pytestmark = pytest.mark.timeout(180)

FLAKY = """from loopcraft import Context, workflow


@workflow(name="flaky", description="writes a summary; fails when it forgets the DONE marker")
async def flaky(ctx: Context, topic: str = "x") -> str:
    result = await ctx.task("writer", prompt=f"Summarize {topic}. End with DONE.")
    if "DONE" not in result.text:
        ctx.exit("failed", "the writer forgot the DONE marker")
    return result.text
"""
WF = ".loopcraft/workflows/flaky.py"  # a protected path: the proposal stage is granted it
OLD = "End with DONE."
NEW = "End your answer with the word DONE on a line of its own."


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout


async def seeded(repo: Path) -> tuple[Engine, list[str]]:
    """The repo with .loopcraft/workflows/flaky.py committed and three failed runs of it."""
    (repo / WF).parent.mkdir(parents=True)
    (repo / WF).write_text(FLAKY)
    git(repo, "add", "-f", WF)
    git(repo, "commit", "-qm", "add flaky")
    writer = scripted_model(stages={"writer": [{"text": "Here is a summary without the marker."}]})
    engine = await Engine.open(repo, Config(model=writer))
    engine.register(*load_file(repo / WF, "repo"))
    runs = []
    for topic in ("a", "b", "c"):
        info = await engine.run("flaky", {"topic": topic})
        assert info.status == "failed" and "DONE marker" in (info.error or "")
        runs.append(info.id)
    return engine, runs


async def answer_line(engine: Engine, run_id: str) -> int:
    """The transcript line (1-based) of the writer's answer."""
    entries = await engine.stage_transcript(run_id, "writer")
    return 1 + next(
        i
        for i, e in enumerate(entries)
        if e.get("type") == "message" and e["message"].get("role") == "assistant"
    )


def review_model(runs: list[str], line: int) -> str:
    def cite(run: str, at: int = line) -> dict[str, Any]:
        return {"run": run, "stage": "writer", "line": at, "quote": "without the marker"}

    findings = [
        {
            "title": "the writer forgets the DONE marker",
            "description": "every failed run ends without DONE",
            "target": "prompt",
            "proposal": f"say {NEW!r} instead of {OLD!r}",
            "evidence": [cite(r) for r in runs],
        },
        {"title": "invented run", "proposal": "x", "evidence": [cite("run-that-never-was")]},
        {"title": "line past the end", "proposal": "x", "evidence": [cite(runs[0], 999)]},
        {"title": "wrong quote", "proposal": "x", "evidence": [{**cite(runs[1]), "quote": "tests pass"}]},
    ]
    edit = tool_call("edit", path=WF, old_string=OLD, new_string=NEW)
    return scripted_model(
        stages={
            "find-failures": [{"json": {"findings": findings, "summary": "one failure mode"}}],
            "propose": [{"tool_calls": [edit]}, {"text": f"{WF}: a clearer DONE instruction"}],
        }
    )


async def review_until_the_gate(engine: Engine, runs: list[str]) -> str:
    model = review_model(runs, await answer_line(engine, runs[0]))
    engine.stop_at_gates = True
    info = await engine.run("trace-review", {"workflow": "flaky", "model": model})
    assert info.status == "needs_human", info.error
    return info.id


async def test_trace_review_cites_real_runs_and_merges_only_when_approved(git_repo: Path) -> None:
    engine, runs = await seeded(git_repo)
    try:
        review_id = await review_until_the_gate(engine, runs)
        live = git_repo / WF
        assert live.read_text() == FLAKY  # nothing changed before the gate's answer
        [prompt] = await engine.prompts(review_id)
        assert WF in prompt.question and "Merge it" in prompt.question
        await engine.answer(review_id, None, "yes")
        engine.stop_at_gates = False
        done = await engine.resume(review_id)
        assert done.status == "completed", done.error
        out = done.output
        assert sorted(out["reviewed"]) == sorted(runs)
        [finding] = out["findings"]
        assert finding["title"] == "the writer forgets the DONE marker"
        assert {e["run"] for e in finding["evidence"]} == set(runs)
        dropped = {d["title"]: d["reason"] for d in out["dropped"]}
        assert "run-that-never-was" in dropped["invented run"]
        assert "has no line 999" in dropped["line past the end"]
        assert "does not say 'tests pass'" in dropped["wrong quote"]
        assert out["approved"] is True and out["merged"] and out["changed"] == [WF]
        assert NEW in live.read_text()  # merged into the live workflow
        assert NEW in Path(out["diff"]).read_text()
        scores = {s.name: s.output for s in await engine.journal.load_steps(review_id) if s.kind == "score"}
        assert scores == {"findings": 1, "dropped": 3, "approved": 1}
        folder = Path(out["diff"]).parent
        assert f"run {runs[0]}, stage `writer`, line" in (folder / "findings.md").read_text()
        ledger = json.loads((folder.parent.parent / "ledger.json").read_text())
        assert "trace-review:findings" in json.dumps(ledger) and ledger["state"]["result"]["approved"] is True
    finally:
        await engine.close()


async def test_a_rejected_proposal_stays_on_its_branch(git_repo: Path) -> None:
    engine, runs = await seeded(git_repo)
    try:
        head = git(git_repo, "rev-parse", "HEAD")
        review_id = await review_until_the_gate(engine, runs)
        await engine.answer(review_id, None, "no")
        engine.stop_at_gates = False
        done = await engine.resume(review_id)
        assert done.status == "completed", done.error
        out = done.output
        assert out["approved"] is False and out["merged"] is None
        assert f"stays on branch {out['branch']}" in out["reason"]
        assert (git_repo / WF).read_text() == FLAKY  # the live workflow is untouched
        assert NEW in git(git_repo, "show", f"{out['branch']}:{WF}")  # the proposal is kept
        assert git(git_repo, "rev-parse", "HEAD") == head and not git(
            git_repo, "status", "--porcelain", "-uno"
        )
    finally:
        await engine.close()


async def test_nothing_to_review_completes_without_a_model_call(git_repo: Path) -> None:
    engine = await Engine.open(git_repo, Config(model=scripted_model(turns=[])))
    try:
        info = await engine.run("trace-review", {"workflow": "never-ran"})
        assert info.status == "completed", info.error
        assert info.output["reason"] == "no finished failed or costly run of never-ran to review"
        assert not [s for s in await engine.journal.load_steps(info.id) if s.kind == "task"]
    finally:
        await engine.close()
