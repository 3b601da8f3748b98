"""``loopcraft chat -p PROMPT``: the chat agent without the app. It runs the prompt to completion
(with the ``workflow`` tool on a headless engine, so it can start tracked runs) and prints the
answer, or with ``--json`` one JSON object (answer, session id, usage, cost, the runs it started).
Permission prompts follow the mode: asked on stderr when stdin is a terminal, refused without one."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopcraft.errors import LoopcraftError

if TYPE_CHECKING:
    from loopcraft.agent.permissions import Answer, PermissionRequest
    from loopcraft.config import Config

# The agent's end state as an exit code (the README's table: 0 ok, 1 failed, 3 blocked, 6 budget, 7 stopped).
CHAT_EXIT_CODES = {"completed": 0, "failed": 1, "blocked": 3, "budget_exceeded": 6, "interrupted": 7}


class TerminalApprover:
    """Asks each permission question on stderr and reads the answer from the terminal."""

    async def ask(self, request: PermissionRequest) -> Answer:
        loop = asyncio.get_running_loop()
        print(f"{request.reason}. Allow? [y]es once / [a]lways / [N]o: ", end="", file=sys.stderr, flush=True)
        line = await loop.run_in_executor(None, sys.stdin.readline)
        word = line.strip().lower()
        if word in ("y", "yes"):
            return "allow_once"
        if word in ("a", "always"):
            return "allow_always"
        return "reject"


def read_prompt(prompt: str | None) -> str | None:
    """``-p``'s text, else the prompt piped on stdin, else None (open the app)."""
    if prompt is not None:
        if not prompt.strip():
            raise LoopcraftError("the prompt is empty: give text with -p 'PROMPT'")
        return prompt
    if sys.stdin.isatty():
        return None
    text = sys.stdin.read()
    if not text.strip():
        raise LoopcraftError("no prompt: give one with -p 'PROMPT' or on stdin")
    return text


async def run_chat(
    root: Path,
    config: Config,
    prompt: str,
    *,
    model: str,
    permissions: str | None,
    session_id: str | None,
    resume_last: bool,
    as_json: bool,
) -> int:
    """Run ``prompt`` to completion; prints the answer (or the JSON object); returns the exit code."""
    from loopcraft.agent.permissions import PermissionPolicy
    from loopcraft.engine.service import Engine
    from loopcraft.engine.workflow_tool import WorkflowTool, session_remaining
    from loopcraft.jsonout import dumps
    from loopcraft.tui.chat_session import ChatSession

    async def no_ask(_request: Any) -> Any:
        return "reject"

    async def quiet(_event: Any) -> None:
        return None

    chat = ChatSession(root, config, model, on_event=quiet, ask=no_ask)
    approver = TerminalApprover() if sys.stdin.isatty() else None
    chat.policy = PermissionPolicy(config.agent, approver, mode=permissions or config.agent.permission_mode)  # type: ignore[arg-type]
    async with await Engine.open(root, config, client=chat._client_or_default()) as engine:
        engine.stop_at_gates = not sys.stdin.isatty()
        limits: dict[str, float | None] = {
            "tokens": config.agent.max_tokens,
            "dollars": config.agent.max_dollars,
        }

        def remaining() -> dict[str, float]:
            spent = chat.usage
            return session_remaining(limits, spent.total_tokens, spent.cost_usd)

        tool = WorkflowTool(engine, remaining=remaining, request=lambda: prompt)
        chat.add_tool(tool)
        if session_id or resume_last:
            chosen = session_id or _latest_session(chat)
            await chat.resume(chosen)
        chat.send(prompt)
        result = await chat.wait()
        if result is None:
            raise LoopcraftError("the agent did not run")
        runs = [await engine.get_run(rid) for rid in tool.started]
        sid = chat.session.header.id if chat.session is not None else None
        if as_json:
            data = {
                "answer": result.text,
                "status": result.status,
                "reason": result.reason or None,
                "session_id": sid,
                "model": result.model,
                "usage": result.usage.to_dict(),
                "cost": result.usage.cost_usd,
                "runs": [{"id": r.id, "workflow": r.workflow, "status": r.status} for r in runs],
            }
            print(dumps(data))
        else:
            print(result.text)
            if result.status != "completed":
                print(f"error: the agent stopped {result.status}: {result.reason}", file=sys.stderr)
        if chat.session is not None:
            chat.session.close()
    return CHAT_EXIT_CODES.get(result.status, 1)


def _latest_session(chat: Any) -> str:
    sessions = chat.list()
    if not sessions:
        from loopcraft.errors import NotFoundError

        raise NotFoundError("no chat session to continue; run `loopcraft chat -p PROMPT` first")
    return str(sessions[0].id)


async def promote_run(root: Path, config: Config, run_id: str, name: str, *, force: bool) -> Path:
    """``loopcraft promote``: the dynamic run's workflow file (see :mod:`loopcraft.engine.promote`)."""
    from loopcraft.engine.promote import check_name, promote
    from loopcraft.engine.service import Engine

    check_name(name)  # before the journal is opened: a bad name is exit 2 whatever the run
    async with await Engine.open(root, config) as engine:
        run = await engine.get_run(run_id)
        return promote(root, run, name, force=force)
