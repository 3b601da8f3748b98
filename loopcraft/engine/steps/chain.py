"""The ``chain`` step: tasks one after another, each given the previous one's output."""

from __future__ import annotations

from loopcraft.engine.journal import StepRow
from loopcraft.engine.results import StageResult
from loopcraft.engine.steps.protocol import Runtime, Scope, run_structural
from loopcraft.engine.steps.task import run_task
from loopcraft.engine.tasks import TaskSpec


async def run_chain(
    rt: Runtime, scope: Scope, pos: str, key: str, specs: list[TaskSpec]
) -> list[StageResult]:
    async def body(row: StepRow) -> list[StageResult]:
        inner = Scope(key, scope.depth, 0, scope.frontier)
        results: list[StageResult] = []
        for spec in specs:
            if results:
                spec = spec.with_previous(results[-1].text)
            cpos, ckey = inner.reserve("task", spec.name)
            results.append(await run_task(rt, inner, cpos, ckey, spec))
        scope.frontier = inner.frontier
        return results

    result: list[StageResult] = await run_structural(rt, scope, pos, key, "chain", body)
    return result
