"""The built-in ``verify`` workflow end to end on the scripted model in a real git repo: nine scored
verifiers (three per default criterion) reduced by ``mean_at_least(14, veto=True)``: a vetoed target
is rejected whatever the mean, a good one is accepted, a weak one is repaired and then accepted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from loopcraft.config import Config
from loopcraft.engine.service import Engine
from tests.integration.test_agent_support import scripted_model, tool_call


def verdict(score: float, *findings: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"json": {"approve": score >= 14, "score": score, "findings": list(findings), "summary": "checked"}}
    ]


@pytest.fixture
def repo(git_repo: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (git_repo / "answer.md").write_text("The answer is 41.\n")
    monkeypatch.chdir(git_repo)
    return git_repo


async def verifier_names(engine: Engine, run_id: str) -> list[str]:
    return sorted(s.name for s in await engine.journal.load_steps(run_id) if s.name.startswith("verify-"))


async def test_verify_rejects_a_vetoed_target_whatever_the_mean(repo: Path) -> None:
    veto = {"title": "the answer is wrong", "body": "6 x 7 is 42", "priority": 0}
    model = scripted_model(stages={"verify-1-evidence-2": verdict(20, veto), "verify-*": verdict(20)})
    engine = await Engine.open(repo, Config(model=model))
    info = await engine.run("verify", {"target": "answer.md", "task": "answer 6 x 7", "max_repairs": 0})
    assert info.status == "blocked", info.error
    assert "vetoed: 1 blocking finding(s)" in (info.error or "")
    names = await verifier_names(engine, info.id)
    assert len(names) == 9 and "verify-1-task-fit-3" in names and "verify-1-completeness-1" in names
    await engine.close()


async def test_verify_accepts_a_good_target(repo: Path) -> None:
    note = {"title": "could cite a source", "priority": 2}
    model = scripted_model(stages={"verify-1-task-fit-*": verdict(15, note), "verify-*": verdict(16)})
    engine = await Engine.open(repo, Config(model=model))
    info = await engine.run("verify", {"target": "answer.md"})
    assert info.status == "completed", info.error
    assert info.output["accepted"] is True and (info.output["rounds"], info.output["repairs"]) == (1, 0)
    assert info.output["mean"] == pytest.approx((3 * 15 + 6 * 16) / 9)
    await engine.close()


async def test_verify_repairs_then_accepts(repo: Path) -> None:
    blocking = {"title": "wrong number", "body": "it should be 42", "priority": 1, "file": "answer.md"}
    model = scripted_model(
        stages={
            "verify-1-*": verdict(10, blocking),
            "repair-1": [
                {"tool_calls": [tool_call("write", path="answer.md", content="The answer is 42.\n")]},
                {"text": "fixed"},
            ],
            "verify-2-*": verdict(18),
        }
    )
    engine = await Engine.open(repo, Config(model=model))
    info = await engine.run("verify", {"target": "answer.md", "task": "answer 6 x 7"})
    assert info.status == "completed", info.error
    assert (info.output["rounds"], info.output["repairs"], info.output["mean"]) == (2, 1, 18.0)
    assert (repo / "answer.md").read_text() == "The answer is 42.\n"
    repair = next(e for e in await engine.stage_transcript(info.id, "repair-1") if e.get("type") == "message")
    assert "[P1] wrong number: it should be 42" in str(repair["message"]["content"])
    await engine.close()


async def test_verify_needs_a_human_when_repairs_do_not_lift_the_mean(repo: Path) -> None:
    model = scripted_model(stages={"verify-*": verdict(9), "repair-*": [{"text": "tried"}]})
    engine = await Engine.open(repo, Config(model=model))
    info = await engine.run("verify", {"target": "answer.md", "verifiers": 1, "max_repairs": 2})
    assert info.status == "needs_human", info.error
    assert "not accepted after 2 repair(s): mean score 9.00 < 14" in (info.error or "")
    assert len(await verifier_names(engine, info.id)) == 9  # 3 rounds of 3 criteria x 1 verifier
    await engine.close()
