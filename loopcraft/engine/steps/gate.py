"""The ``prompt`` step (a human gate): persist the question, wait durably for its answer."""

from __future__ import annotations

import asyncio
from typing import Any

from loopcraft.engine.events import PromptAnswered, PromptPending, RunStatus, StageStatus
from loopcraft.engine.gates import normalize_answer
from loopcraft.engine.journal import StepRow
from loopcraft.engine.names import short_id
from loopcraft.engine.steps.protocol import Runtime, Scope, WorkflowExit, run_step


async def run_prompt(
    rt: Runtime,
    scope: Scope,
    pos: str,
    key: str,
    kind: str,
    question: str,
    options: list[Any] | None,
    default: Any,
) -> Any:
    async def body(row: StepRow) -> Any:
        prompt = await rt.journal.create_prompt(rt.run_id, key, kind, question, options, default)
        while prompt.status != "answered":
            if rt.stop_at_gates:
                await rt.journal.set_step_status(rt.run_id, pos, "awaiting_input")
                rt.emit(PromptPending(rt.run_id, prompt.id, key, kind, question, options))
                raise WorkflowExit(
                    "needs_human",
                    f"waiting for an answer to {question!r}: `loopcraft answer {short_id(rt.run_id)} "
                    f"{prompt.id} VALUE`, then `loopcraft resume {short_id(rt.run_id)}`",
                )
            if prompt.id not in rt.pending_prompts:
                rt.pending_prompts.add(prompt.id)
                await rt.journal.set_step_status(rt.run_id, pos, "awaiting_input")
                await rt.journal.update_run(rt.run_id, status="awaiting_input")
                rt.emit(StageStatus(rt.run_id, key, "awaiting_input"))
                rt.emit(RunStatus(rt.run_id, "awaiting_input", rt.workflow.name, None))
                rt.emit(PromptPending(rt.run_id, prompt.id, key, kind, question, options))
            rt.answer_signal.clear()
            try:
                await asyncio.wait_for(rt.answer_signal.wait(), rt.config.engine.poll_seconds)
            except TimeoutError:
                pass
            fresh = await rt.journal.get_prompt(prompt.id)
            assert fresh is not None
            prompt = fresh
        rt.pending_prompts.discard(prompt.id)
        answer = normalize_answer(kind, prompt.answer, options)
        rt.emit(PromptAnswered(rt.run_id, prompt.id, key, answer))
        if not rt.pending_prompts:
            await rt.set_status("running")
        return answer

    return await run_step(rt, scope, pos, key, "prompt", kind, body)
