"""With the real agent on the scripted model: a run budget exhausted during a parallel fan-out
settles every unfinished stage as ``budget_exceeded`` with the usage its agent had spent (so the
run's total is what was spent), progress events say so by stage name, and a raised budget resumes
the run to completion."""

from __future__ import annotations

from pathlib import Path

from loopcraft import Context, workflow
from loopcraft.config import Config
from loopcraft.engine.events import EngineEvent, StageAdded, StageStatus
from loopcraft.engine.graph import GROUP_KINDS
from loopcraft.engine.runtime import spent_total
from loopcraft.engine.service import Engine
from loopcraft.models.types import Usage
from tests.integration.test_agent_support import scripted_model, tool_call

BRANCHES = 4
TURN = {"input": 250, "output": 50}  # 300 tokens a model turn


@workflow(name="fan")
async def fan(ctx: Context) -> list[str]:
    results = await ctx.parallel(*[ctx.spec(f"br-{i}", prompt="work") for i in range(BRANCHES)])
    return [r.text for r in results]


def _model() -> str:
    work = [{"tool_calls": [tool_call("ls", path=f"dir-{n}")], "usage": TURN} for n in range(6)]
    return scripted_model([*work, {"text": "done", "usage": TURN}])


async def test_budget_in_fan_out_settles_stages_and_usage_then_resumes(git_repo: Path) -> None:
    engine = await Engine.open(git_repo, Config(model=_model()))
    engine.register(fan)
    events: list[EngineEvent] = []
    engine.bus.subscribe(events.append)
    info = await engine.run("fan", {}, budget={"tokens": 2500})
    assert info.status == "budget_exceeded" and info.exit_code == 6, info.error

    steps = await engine.journal.load_steps(info.id)
    tasks = [r for r in steps if r.kind == "task"]
    assert len(tasks) == BRANCHES
    assert {r.status for r in steps} == {"budget_exceeded"}  # the parallel group too: nothing left open
    for row in tasks:
        assert Usage.from_dict(row.usage).total_tokens > 0, row.key  # what each stopped agent spent
        assert "budget_exceeded" in (row.error or {}).get("message", "")
    spent = spent_total(steps).total_tokens
    assert info.usage.total_tokens == spent >= 2500
    graph = await engine.graph(info.id)
    assert sum(n.tokens for n in graph.walk() if n.kind not in GROUP_KINDS) == spent  # groups sum them

    names = {e.key: e.name for e in events if isinstance(e, StageAdded)}
    stopped = {names[e.key] for e in events if isinstance(e, StageStatus) and e.status == "budget_exceeded"}
    assert stopped == {f"br-{i}" for i in range(BRANCHES)}
    assert not [e for e in events if isinstance(e, StageStatus) and e.status == "paused"]

    resumed = await engine.resume(info.id, budget={"tokens": 100_000})
    assert resumed.status == "completed", resumed.error
    assert len(resumed.output) == BRANCHES
    after = await engine.journal.load_steps(info.id)
    assert {r.status for r in after} == {"completed"} and all(r.error is None for r in after)
    assert resumed.usage.total_tokens == spent_total(after).total_tokens > spent
    await engine.close()
