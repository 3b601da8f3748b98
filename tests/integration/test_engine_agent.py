"""Engine + real agent + scripted model through litellm: stages, structured output, and a fallback
model chosen before a crash chosen again after it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from loopcraft import Context, workflow
from loopcraft.config import Config
from loopcraft.engine.service import Engine
from loopcraft.models.scripted import read_call_log, reset_fault_counters
from tests.engine_helpers import crashed_run


def write_script(repo: Path, name: str, script: dict[str, Any]) -> None:
    folder = repo / ".loopcraft" / "scripts"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.yaml").write_text(yaml.safe_dump(script))


@pytest.fixture
def repo(git_repo: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.chdir(git_repo)
    monkeypatch.setenv("LOOPCRAFT_SCRIPTED_CALL_LOG", str(tmp_path / "calls.jsonl"))
    reset_fault_counters()
    return git_repo


class Verdict(BaseModel):
    verdict: str
    issues: list[str]


@workflow(name="review")
async def review(ctx: Context) -> dict:
    scout = await ctx.task("scout", prompt="Map the repo", output="scout.md")
    verdict = await ctx.task("judge", prompt="Judge", schema=Verdict, reads=["scout.md"])
    assert isinstance(verdict.structured, Verdict)
    return {"scout": scout.text, "verdict": verdict.structured.verdict, "model": verdict.model}


async def test_real_agent_stages_and_structured_output(repo: Path, tmp_path: Path) -> None:
    write_script(
        repo,
        "t",
        {
            "stages": {
                "scout": [
                    {"tool_calls": [{"name": "read", "arguments": {"path": "README.md"}}]},
                    {"text": "The repo has a README."},
                ],
                "judge": [{"json": {"verdict": "approve", "issues": []}}],
            }
        },
    )
    config = Config(model="scripted/t")
    engine = await Engine.open(repo, config)
    engine.register(review)
    info = await engine.run("review", {})
    assert info.status == "completed", info.error
    assert info.output == {"scout": "The repo has a README.", "verdict": "approve", "model": "scripted/t"}
    transcript = await engine.stage_transcript(info.id, "scout")
    assert any(e.get("type") == "tool_result" and "sample" in e.get("output", "") for e in transcript)
    calls = read_call_log(tmp_path / "calls.jsonl")
    assert [(c["stage"], c["turn"]) for c in calls] == [("scout", 0), ("scout", 1), ("judge", 0)]
    assert info.usage.input_tokens > 0
    await engine.close()


async def test_invalid_structured_output_three_times_fails_run(repo: Path, tmp_path: Path) -> None:
    bad = {"json": {"verdict": "approve", "issues": []}, "invalid_json": True}
    write_script(repo, "t", {"stages": {"scout": [{"text": "ok"}], "judge": [bad, bad, bad, bad]}})
    engine = await Engine.open(repo, Config(model="scripted/t"))
    engine.register(review)
    info = await engine.run("review", {})
    assert info.status == "failed" and info.exit_code == 1
    assert "after 3 corrections" in (info.error or "")
    judge_calls = [c for c in read_call_log(tmp_path / "calls.jsonl") if c["stage"] == "judge"]
    assert len(judge_calls) == 4  # the answer plus three corrective re-prompts on the same session
    await engine.close()


@workflow(name="fallback")
async def fallback(ctx: Context) -> str:
    r = await ctx.task("work", prompt="work", model="scripted/primary", fallback_models=["scripted/backup"])
    return r.text


async def test_fallback_chosen_before_crash_is_chosen_after(repo: Path, tmp_path: Path) -> None:
    write_script(
        repo,
        "primary",
        {
            "stages": {
                "work": [
                    {"faults": [{"kind": "auth"}], "tool_calls": [{"name": "ls", "arguments": {}}]},
                    {"text": "answered by primary"},
                ]
            }
        },
    )
    write_script(
        repo,
        "backup",
        {
            "stages": {
                "work": [{"tool_calls": [{"name": "ls", "arguments": {}}]}, {"text": "answered by backup"}]
            }
        },
    )
    config = Config()
    engine, run_id = await crashed_run(repo, config, fallback, crash_on_call=2)
    await engine.journal.close()

    reset_fault_counters()  # a new process: primary would answer turn 1 if asked
    engine = await Engine.open(repo, config)
    engine.register(fallback)
    info = await engine.resume(run_id)
    assert info.status == "completed", info.error
    assert info.output == "answered by backup"
    calls = [(c["model"], c["turn"], c.get("fault")) for c in read_call_log(tmp_path / "calls.jsonl")]
    assert [c for c in calls if c[1] == 1] == [("scripted/backup", 1, None)]
    assert len([c for c in calls if c[1] == 0 and c[2] is None]) == 1  # turn 0 never re-called
    await engine.close()


@workflow(name="efforts")
async def efforts(ctx: Context) -> list[str | None]:
    plain = await ctx.task("plain", prompt="work")
    high = await ctx.task("high", prompt="work", effort="HIGH")
    own = await ctx.task("own", prompt="work", model="scripted/t:low", effort="high")
    return [plain.model, high.model, own.model]


async def test_a_stage_effort_applies_when_the_model_string_gives_none(repo: Path) -> None:
    write_script(repo, "t", {"default": [{"text": "ok"}]})
    engine = await Engine.open(repo, Config(model="scripted/t"))
    engine.register(efforts)
    info = await engine.run("efforts", {})
    assert info.status == "completed", info.error
    assert info.output == ["scripted/t", "scripted/t:high", "scripted/t:low"]
    await engine.close()


@workflow(name="one-stage")
async def one_stage(ctx: Context) -> str:
    return (await ctx.task("work", prompt="work")).text


@pytest.mark.parametrize("stub", [b"", b'{"type": "header", "id": "s'])
async def test_a_session_file_torn_at_creation_starts_the_stage_over(repo: Path, stub: bytes) -> None:
    """A kill while a stage's transcript was being created leaves an empty file or a torn header:
    resume starts that stage over instead of reading the stub as damage."""
    write_script(repo, "t", {"stages": {"work": [{"text": "done"}]}})
    config = Config(model="scripted/t")
    engine, run_id = await crashed_run(repo, config, one_stage, crash_on_call=1)
    await engine.journal.close()
    [session] = [p for p in repo.glob(".loopcraft/**/*.jsonl") if run_id in str(p)]
    session.write_bytes(stub)  # what the kill left behind

    reset_fault_counters()
    engine = await Engine.open(repo, config)
    engine.register(one_stage)
    info = await engine.resume(run_id)
    assert info.status == "completed", info.error
    assert info.output == "done"
    transcript = await engine.stage_transcript(run_id, "work")
    assert transcript[0]["type"] == "header"
    await engine.close()
