"""Agent-loop figures: a 1,000-turn scripted session (one tool call a turn, zero pace).

Reports the loop's own time per turn with the model call and the tool's own run excluded
(target < 2 ms), the transcript size, and peak traced memory of a traced run. The headline
runs the scripted model in-process (no litellm), because litellm schedules its logging
callbacks as background tasks on the same event loop, outside ``complete``; a shorter run
through the real LiteLLMClient shows that cost separately.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

TURNS = 1000


class _NoopTool:
    name = "noop"
    description = "does nothing"
    parameters: dict[str, Any] = {"type": "object", "properties": {"n": {"type": "integer"}}}
    read_only = True

    def __init__(self) -> None:
        self.seconds = 0.0

    async def run(self, args: dict[str, Any], ctx: Any) -> Any:
        from loopcraft.agent.tools.base import ToolResult

        started = time.perf_counter()
        result = ToolResult(f"noop {args.get('n')} ok")
        self.seconds += time.perf_counter() - started
        return result


class _TimedClient:
    """Wraps the real client and adds up the time spent inside ``complete``."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.seconds = 0.0
        self.calls = 0

    async def complete(self, request: Any, on_delta: Any = None) -> Any:
        started = time.perf_counter()
        try:
            return await self.inner.complete(request, on_delta)
        finally:
            self.seconds += time.perf_counter() - started
            self.calls += 1


class _DirectScriptClient:
    """Plays scripted turns in-process with the scripted model's own player (no litellm)."""

    async def complete(self, request: Any, on_delta: Any = None) -> Any:
        from loopcraft.models.scripted import stream_turn
        from loopcraft.models.types import CompletionResult, Delta, ToolCall, Usage

        text: list[str] = []
        calls: dict[int, list[str]] = {}
        usage = Usage()
        params = {"metadata": {"stage": request.stage}}
        async for chunk in stream_turn(request.model, request.messages, {}, params):
            if chunk["text"]:
                text.append(chunk["text"])
                if on_delta is not None:
                    await on_delta(Delta("text", chunk["text"]))
            if chunk["tool_use"]:
                use = chunk["tool_use"]
                call = calls.setdefault(use["index"], ["", "", ""])
                call[0] = use["id"] or call[0]
                call[1] = use["function"]["name"] or call[1]
                call[2] += use["function"]["arguments"]
            if chunk["usage"]:
                usage = Usage(chunk["usage"]["prompt_tokens"], chunk["usage"]["completion_tokens"])
        tool_calls = [ToolCall(*calls[i]) for i in sorted(calls)]
        return CompletionResult("".join(text), tool_calls, "stop", usage, request.model, 0.0)


def _register(turns: int) -> str:
    from loopcraft.models.scripted import Script, register_script

    work = [
        {"text": f"step {i}", "tool_calls": [{"name": "noop", "arguments": {"n": i}}]} for i in range(turns)
    ]
    register_script("bench-agent", Script.model_validate({"pace": 0, "default": [*work, {"text": "done"}]}))
    return "scripted/bench-agent"


async def _session(
    folder: Path, turns: int, durable: bool, litellm: bool = False
) -> tuple[float, _TimedClient, _NoopTool, Path]:
    from loopcraft.agent.budget import Limits
    from loopcraft.agent.loop import Agent, create_session
    from loopcraft.agent.permissions import PermissionPolicy
    from loopcraft.config import AgentConfig, Config
    from loopcraft.models.litellm_client import LiteLLMClient

    model = _register(turns)
    tool = _NoopTool()
    client = _TimedClient(LiteLLMClient(Config()) if litellm else _DirectScriptClient())
    path = folder / f"bench-{turns}-{durable}-{time.monotonic_ns()}.jsonl"
    config = AgentConfig()
    session = create_session(path, workspace=folder, model=model, tools=[tool], durable=durable)
    agent = Agent(
        client=client,
        session=session,
        workspace=folder,
        model=model,
        tools=[tool],
        policy=PermissionPolicy(config, None, mode="yolo"),
        config=config,
        limits=Limits(max_turns=turns + 10, max_tool_calls=turns + 10),
        context_window=10_000_000,
    )
    started = time.perf_counter()
    result = await agent.run("run the benchmark")
    total = time.perf_counter() - started
    session.close()
    if result.status != "completed" or client.calls != turns + 1:
        raise RuntimeError(f"bench session ended {result.status}: {result.reason} after {client.calls} calls")
    return total, client, tool, path


def _overhead(total: float, client: _TimedClient, tool: _NoopTool) -> float:
    return (total - client.seconds - tool.seconds) / client.calls


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        asyncio.run(_session(folder, 3, True))  # warm up
        for durable in (True, False):
            total, client, tool, path = asyncio.run(_session(folder, TURNS, durable))
            label = "durable: fsync" if durable else "no fsync"
            ms = _overhead(total, client, tool) * 1000
            print(f"agent loop overhead per turn, {TURNS} turns ({label}): {ms:.2f} ms (target < 2 ms)")
            if durable:
                print(
                    f"agent transcript size, {TURNS} turns: {path.stat().st_size / 1024:.0f} KiB "
                    f"({path.stat().st_size / TURNS:.0f} bytes/turn)"
                )
        tracemalloc.start()
        asyncio.run(_session(folder, TURNS, False))
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"agent peak traced memory, {TURNS}-turn session: {peak / 2**20:.1f} MiB")
        short = 100
        asyncio.run(_session(folder, 3, True, litellm=True))  # warm up litellm
        total, client, tool, _ = asyncio.run(_session(folder, short, True, litellm=True))
        print(
            f"agent per-turn time outside complete() via LiteLLMClient, {short} turns "
            f"(loop + litellm background logging): {_overhead(total, client, tool) * 1000:.2f} ms"
        )
        print(
            f"agent model time per turn via LiteLLMClient (scripted), {short} turns: "
            f"{client.seconds / client.calls * 1000:.2f} ms"
        )


if __name__ == "__main__":
    main()
