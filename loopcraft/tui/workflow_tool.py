"""The chat agent's ``workflow`` tool: list, run, status, answer, steer, pause, resume —
so a user can ask for a run in plain words. It calls the same operations as the
``/workflow`` commands, and the runs it starts appear in the panes like any other."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from loopcraft.agent.tools.base import ToolContext, ToolResult
from loopcraft.engine.journal import CLOSED_RUN_STATES
from loopcraft.errors import LoopcraftError

if TYPE_CHECKING:
    from loopcraft.tui.workflows import WorkflowController

ACTIONS = ("list", "run", "status", "answer", "steer", "pause", "resume")
WAIT_LIMIT_S = 900.0  # the longest a run with wait=true is waited for before the tool answers
RECHECK_S = 1.0  # how often the run is looked at again when no engine event woke the wait


class WorkflowTool:
    """A :class:`~loopcraft.agent.tools.base.Tool` bound to the app's workflow controller."""

    name = "workflow"
    description = (
        "Drive loopcraft workflows. action=list shows workflows and their inputs; action=run starts "
        "one (name, inputs) and returns its run id; with wait=true it returns only when the run "
        "needs a human answer or has ended (use it when the user asks to be told); action=status shows runs or one "
        "run (run_id); action=answer answers a pending human prompt (answer, optional prompt_id); "
        "action=steer sends a message to a run's stage (run_id, stage, message); action=pause and "
        "action=resume control a run (run_id; resume takes an optional message)."
    )
    parameters: dict[str, Any] = {
        "type": "object",
        "properties": {
            "action": {"type": "string", "enum": list(ACTIONS)},
            "name": {"type": "string", "description": "workflow name (run)"},
            "inputs": {"type": "object", "description": "workflow inputs (run)"},
            "wait": {"type": "boolean", "description": "run: wait until it needs a human or ends"},
            "run_id": {"type": "string"},
            "stage": {"type": "string", "description": "stage key or name (steer)"},
            "message": {"type": "string"},
            "answer": {"description": "the answer (answer)"},
            "prompt_id": {"type": "string"},
        },
        "required": ["action"],
        "additionalProperties": False,
    }
    read_only = False

    def __init__(self, controller: WorkflowController) -> None:
        self.controller = controller

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        action = args.get("action")
        if action not in ACTIONS:
            return ToolResult(f"unknown action {action!r}: use one of {', '.join(ACTIONS)}", is_error=True)
        try:
            return ToolResult(await self._do(action, args, ctx))
        except LoopcraftError as exc:
            return ToolResult(str(exc), is_error=True)

    async def _do(self, action: str, args: dict[str, Any], ctx: ToolContext) -> str:
        wf = self.controller
        if action == "list":
            return wf.list_text()
        if action == "run":
            name = _need(args, "name", action)
            inputs = args.get("inputs") or {}
            if not isinstance(inputs, dict):
                raise LoopcraftError("inputs must be an object of workflow inputs")
            if args.get("wait"):
                return await self._run_and_wait(name, inputs, ctx)
            run_id = await wf.run(name, inputs)
            return f"started workflow {name} as run {run_id}; it is running in the background"
        if action == "status":
            return await wf.status_text(args.get("run_id"))
        if action == "answer":
            if "answer" not in args:
                raise LoopcraftError("action=answer needs 'answer'")
            prompt, value = await wf.answer(args["answer"], args.get("prompt_id"))
            await wf.confirm_answer(prompt, value)
            return f"answered prompt {prompt.prompt_id} ({prompt.question}) with {value!r}"
        if action == "steer":
            run_id = _need(args, "run_id", action)
            await wf.steer(run_id, args.get("stage"), _need(args, "message", action))
            return f"steering message sent to run {run_id}"
        if action == "pause":
            return f"pausing run {await wf.pause(args.get('run_id'))}"
        return f"resuming run {await wf.resume(args.get('run_id'), args.get('message'))}"

    async def _run_and_wait(self, name: str, inputs: dict[str, Any], ctx: ToolContext) -> str:
        """Start ``name`` and wait until it has a pending prompt or ends (or the agent is
        interrupted); says which, with the question and how to answer it."""
        wf = self.controller
        changed = asyncio.Event()
        unsubscribe = wf.eng.bus.subscribe(lambda _event: changed.set())
        try:
            run_id = await wf.run(name, inputs)
            deadline = asyncio.get_running_loop().time() + WAIT_LIMIT_S
            while True:
                changed.clear()
                prompts = await wf.eng.prompts(run_id)
                if prompts:
                    return (
                        f"run {run_id} ({name}) is waiting for the user: {prompts[0].question!r} "
                        "(they answer it in the prompts pane: F4, then y or n; or /workflow answer VALUE)"
                    )
                run = await wf.eng.get_run(run_id)
                if run.status in CLOSED_RUN_STATES:
                    reason = f": {run.error}" if run.error else ""
                    return f"run {run_id} ({name}) ended {run.status}{reason}"
                if ctx.cancel.is_set() or asyncio.get_running_loop().time() > deadline:
                    return f"run {run_id} ({name}) is still {run.status}; stopped waiting for it"
                try:
                    await asyncio.wait_for(changed.wait(), RECHECK_S)
                except TimeoutError:
                    pass
        finally:
            unsubscribe()


def _need(args: dict[str, Any], key: str, action: str) -> str:
    value = args.get(key)
    if not value or not isinstance(value, str):
        raise LoopcraftError(f"action={action} needs '{key}'")
    return value
