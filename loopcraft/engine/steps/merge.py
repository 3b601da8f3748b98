"""The ``merge`` step: a worktree stage's branch merged into the main work tree (never twice)."""

from __future__ import annotations

from loopcraft.engine import worktrees
from loopcraft.engine.journal import StepRow
from loopcraft.engine.steps.protocol import Runtime, Scope, run_step


async def run_merge(rt: Runtime, scope: Scope, pos: str, key: str, branch: str, strategy: str) -> str:
    """Merge a worktree stage's branch into the main work tree (journaled: replay never merges twice)."""

    async def body(row: StepRow) -> str:
        message = f"loopcraft: merge {branch} (run {rt.run_id})"
        return await worktrees.merge_stage_branch(rt.workspace, branch, strategy, message)

    result: str = await run_step(rt, scope, pos, key, "merge", branch, body)
    return result
