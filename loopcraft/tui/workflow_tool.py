"""The chat agent's ``workflow`` tool: list, run, status, answer, steer, pause, resume —
so a user can ask for a run in plain words. It calls the same operations as the
``/workflow`` commands, and the runs it starts appear in the panes like any other."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loopcraft.agent.tools.base import ToolContext, ToolResult
from loopcraft.errors import LoopcraftError

if TYPE_CHECKING:
    from loopcraft.tui.workflows import WorkflowController

ACTIONS = ("list", "run", "status", "answer", "steer", "pause", "resume")


class WorkflowTool:
    """A :class:`~loopcraft.agent.tools.base.Tool` bound to the app's workflow controller."""

    name = "workflow"
    description = (
        "Drive loopcraft workflows. action=list shows workflows and their inputs; action=run starts "
        "one (name, inputs) and returns its run id without waiting; action=status shows runs or one "
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
            return ToolResult(await self._do(action, args))
        except LoopcraftError as exc:
            return ToolResult(str(exc), is_error=True)

    async def _do(self, action: str, args: dict[str, Any]) -> str:
        wf = self.controller
        if action == "list":
            return wf.list_text()
        if action == "run":
            name = _need(args, "name", action)
            inputs = args.get("inputs") or {}
            if not isinstance(inputs, dict):
                raise LoopcraftError("inputs must be an object of workflow inputs")
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


def _need(args: dict[str, Any], key: str, action: str) -> str:
    value = args.get(key)
    if not value or not isinstance(value, str):
        raise LoopcraftError(f"action={action} needs '{key}'")
    return value
