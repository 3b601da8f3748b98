"""The ``workflow`` step: another workflow run as a nested stage of this run, under its own budget."""

from __future__ import annotations

from typing import Any

from loopcraft.engine.budgets import enter_budget, leave_budget, merge_budget, nested_budget
from loopcraft.engine.definition import Workflow
from loopcraft.engine.journal import StepRow
from loopcraft.engine.steps.protocol import Runtime, Scope, run_step, spent_total
from loopcraft.engine.tasks import StageFailure
from loopcraft.errors import LoopcraftError


async def run_nested(
    rt: Runtime,
    scope: Scope,
    pos: str,
    key: str,
    other: Workflow | str,
    inputs: dict[str, Any],
    budget: dict[str, Any] | None = None,
    *,
    label: str | None = None,
) -> Any:
    if isinstance(other, str):
        if rt.catalog is None:
            raise LoopcraftError(f"ctx.workflow({other!r}): no workflow catalog to look the name up in")
        wf = rt.catalog.get(other)
    else:
        wf = other

    async def body(row: StepRow) -> Any:
        depth = scope.depth + 1
        if depth > rt.config.engine.max_depth:
            raise StageFailure(
                f"nested workflow {wf.name!r} would exceed the maximum depth "
                f"({rt.config.engine.max_depth}; engine.max_depth)"
            )
        checked = wf.validate_inputs(inputs)
        inner = scope.child(key, depth=depth)
        limits = merge_budget(wf.extras.get("budget"), budget)
        child = nested_budget(rt.current_budget(), limits, f"workflow {wf.name!r}", rt.raised_budget)
        token = enter_budget(child) if child is not None else None
        try:
            value = await wf.fn(rt.context(inner, checked), **wf.call_kwargs(checked))
        finally:
            if token is not None:
                leave_budget(token)
        inside = [r for r in rt.recorded.values() if r.key.startswith(key + "/")]
        row.usage = spent_total(inside).to_dict()  # its own stages only, not concurrent siblings'
        return wf.validate_output(value)

    return await run_step(
        rt,
        scope,
        pos,
        key,
        "workflow",
        label or wf.name,
        body,
        decode=lambda d: wf.output_adapter.validate_python(d),
    )
