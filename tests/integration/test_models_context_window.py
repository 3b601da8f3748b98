"""Context windows as litellm knows them, and the ``[models.X] context_window`` override reaching
the agent's compaction (through the scripted model on the real litellm path)."""

from __future__ import annotations

from pathlib import Path

from loopcraft.agent.loop import Agent
from loopcraft.agent.tools.fs import ReadTool
from loopcraft.config import AgentConfig, Config, ModelOptions
from loopcraft.models.info import DEFAULT_CONTEXT_WINDOW, context_window
from loopcraft.models.litellm_client import LiteLLMClient
from tests.integration.test_agent_support import (
    EventLog,
    make_agent,
    scripted_client,
    scripted_model,
    tool_call,
)


def _session(tmp_path: Path, configured: int | None) -> tuple[EventLog, Agent]:
    # ~105k characters of tool output: ~26k estimated tokens, over 80% of 32k, far under 80% of 128k
    (tmp_path / "big.txt").write_text("".join(f"line {n:05} of the long file here.\n" for n in range(3000)))
    model = scripted_model(
        stages={
            "compaction:*": [{"json": {"drop": [[4, 3001]]}}],
            "*": [
                {"tool_calls": [tool_call("read", path="big.txt", limit=3000)]},
                {"tool_calls": [tool_call("read", path="big.txt", limit=1)]},
                {"text": "done"},
            ],
        }
    )
    models = {model: ModelOptions(context_window=configured)} if configured else {}
    events = EventLog()
    agent = make_agent(
        tmp_path,
        model,
        tools=[ReadTool()],
        client=scripted_client(Config(models=models)),
        config=AgentConfig(keep_recent_turns=1, max_tool_output=200_000),
        on_event=events,
    )
    return events, agent


async def test_a_configured_32k_window_makes_the_session_compact(tmp_path: Path) -> None:
    events, agent = _session(tmp_path, 32_000)
    result = await agent.run("read big.txt")
    assert result.status == "completed"
    assert [e.kind for e in events].count("compaction") == 1


async def test_without_the_override_the_same_session_does_not_compact(tmp_path: Path) -> None:
    events, agent = _session(tmp_path, None)
    result = await agent.run("read big.txt")
    assert result.status == "completed" and "compaction" not in events.kinds()


def test_windows_come_from_litellm_model_info_and_the_config_wins() -> None:
    assert context_window("anthropic/claude-sonnet-4-5") == 200_000
    assert context_window("openai/gpt-5.5") > 900_000
    assert context_window("gemini/gemini-2.5-pro") > 1_000_000
    assert context_window("ollama/no-such-model:latest") == DEFAULT_CONTEXT_WINDOW
    assert context_window("openai/gpt-5.5", 32_000) == 32_000
    client = LiteLLMClient(Config(models={"openai/gpt-5.5": ModelOptions(context_window=32_000)}))
    assert client.context_window("openai/gpt-5.5:high") == 32_000
    assert client.context_window("anthropic/claude-sonnet-4-5") == 200_000
