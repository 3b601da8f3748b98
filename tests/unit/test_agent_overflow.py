"""Context overflow: the agent compacts and asks the same model again before the fallback chain
moves on; a plain client call (no agent) still moves straight on. Calls are counted in the
scripted model's call log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from loopcraft.agent.tools.fs import LsTool, ReadTool
from loopcraft.config import AgentConfig, Config
from loopcraft.models.errors import ContextOverflowError
from loopcraft.models.litellm_client import LiteLLMClient
from loopcraft.models.scripted import read_call_log
from loopcraft.models.types import CompletionRequest
from tests.integration.test_agent_support import EventLog, make_agent, scripted_model, tool_call

OVERFLOW = {"kind": "context_overflow", "message": "prompt is too long: 210000 tokens > 200000 maximum"}
DROP_READ = {"json": {"drop": [[4, 301]]}}  # the 300 lines of big.txt but the first and last


def _primary(log: Path, faults: int, compaction: list[dict[str, Any]] | None = None) -> str:
    """Two tool turns (read big.txt, ls), then an answer whose first ``faults`` tries overflow."""
    work = [
        {"tool_calls": [tool_call("read", path="big.txt")]},
        {"tool_calls": [tool_call("ls", path=".")]},
        {"faults": [OVERFLOW] * faults, "text": "answer from the primary"},
    ]
    stages = {"compaction:*": compaction or [DROP_READ], "summary:*": [{"text": "no"}], "*": work}
    return scripted_model(stages=stages, call_log=str(log))


def _fallback(log: Path, turn: int = 2) -> str:
    """Answers ``turn`` (the number of assistant messages it is sent) as the fallback."""
    return scripted_model(
        [{"text": "filler"}] * turn + [{"text": "answer from the fallback"}], call_log=str(log)
    )


def _agent(tmp_path: Path, model: str, fallbacks: list[str], events: EventLog) -> Any:
    (tmp_path / "big.txt").write_text("".join(f"line {n:04}\n" for n in range(1, 301)))
    return make_agent(
        tmp_path,
        model,
        fallback_models=fallbacks,
        tools=[ReadTool(), LsTool()],
        config=AgentConfig(keep_recent_turns=1),
        context_window=1_000_000,  # never compacts on the threshold: only the overflow triggers it
        on_event=events,
    )


def _calls(log: Path) -> list[tuple[str, str, int, str | None]]:
    return [(c["model"], c["stage"], c["turn"], c["fault"]) for c in read_call_log(log)]


def _answer_entry(agent: Any) -> dict[str, Any]:
    messages = [e for e in agent.session.read_entries() if e["type"] == "message"]
    return messages[-1]


async def test_overflow_once_compacts_and_the_same_model_answers(tmp_path: Path) -> None:
    log = tmp_path.parent / f"{tmp_path.name}-calls.jsonl"
    primary, fallback = _primary(log, faults=1), _fallback(log)
    events = EventLog()
    agent = _agent(tmp_path, primary, [fallback], events)
    result = await agent.run("read big.txt")
    assert result.status == "completed", result.reason
    assert result.text == "answer from the primary" and result.model == primary
    assert _calls(log) == [
        (primary, "chat", 0, None),
        (primary, "chat", 1, None),
        (primary, "chat", 2, "context_overflow"),
        (primary, "compaction:chat", 0, None),
        (primary, "chat", 2, None),
    ]  # no fallback call
    compactions = [e for e in events if e.kind == "compaction"]
    assert [(e.reason, e.method) for e in compactions] == [("overflow", "verbatim")]
    assert "(298 lines filtered)" in agent.messages[3]["content"]
    entry = next(e for e in agent.session.read_entries() if e["type"] == "compaction")
    assert entry["reason"] == "overflow"
    failed = _answer_entry(agent)["failed_attempts"]
    assert [(a["model"], a["error_class"]) for a in failed] == [(primary, "context_overflow")]


async def test_overflow_again_after_compaction_falls_back(tmp_path: Path) -> None:
    log = tmp_path.parent / f"{tmp_path.name}-calls.jsonl"
    primary, fallback = _primary(log, faults=2), _fallback(log)
    events = EventLog()
    agent = _agent(tmp_path, primary, [fallback], events)
    result = await agent.run("read big.txt")
    assert result.status == "completed", result.reason
    assert result.text == "answer from the fallback" and result.model == fallback
    assert _calls(log)[2:] == [
        (primary, "chat", 2, "context_overflow"),
        (primary, "compaction:chat", 0, None),
        (primary, "chat", 2, "context_overflow"),
        (fallback, "chat", 2, None),
    ]
    assert [e.reason for e in events if e.kind == "compaction"] == ["overflow"]
    failed = _answer_entry(agent)["failed_attempts"]
    assert [(a["model"], a["error_class"]) for a in failed] == [(primary, "context_overflow")] * 2


async def test_overflow_without_a_fallback_stops_naming_context_overflow(tmp_path: Path) -> None:
    log = tmp_path.parent / f"{tmp_path.name}-calls.jsonl"
    primary = _primary(log, faults=2)
    events = EventLog()
    agent = _agent(tmp_path, primary, [], events)
    result = await agent.run("read big.txt")
    assert result.status == "failed"
    assert result.reason.startswith("context overflow") and "compaction" in result.reason
    assert [c[3] for c in _calls(log) if c[1] == "chat" and c[2] == 2] == ["context_overflow"] * 2
    assert [e.reason for e in events if e.kind == "compaction"] == ["overflow"]
    status = [e for e in agent.session.read_entries() if e["type"] == "status"][-1]
    assert status["status"] == "failed" and "context overflow" in status["reason"]


async def test_when_compaction_fails_the_chain_moves_on_without_asking_again(tmp_path: Path) -> None:
    log = tmp_path.parent / f"{tmp_path.name}-calls.jsonl"
    primary = _primary(log, faults=5, compaction=[{"text": "not json"}])
    fallback = _fallback(log)
    events = EventLog()
    agent = _agent(tmp_path, primary, [fallback], events)
    result = await agent.run("read big.txt")
    assert result.status == "completed", result.reason
    assert result.model == fallback
    assert _calls(log)[2:] == [
        (primary, "chat", 2, "context_overflow"),
        (primary, "compaction:chat", 0, None),
        (primary, "summary:chat", 0, None),
        (fallback, "chat", 2, None),
    ]  # the primary is not asked again with the history compaction could not shrink
    assert not [e for e in events if e.kind == "compaction"]
    assert [e.limit for e in events if e.kind == "budget_warning"] == ["compaction"]


async def test_nothing_to_compact_and_no_fallback_stops_at_once(tmp_path: Path) -> None:
    log = tmp_path.parent / f"{tmp_path.name}-calls.jsonl"
    model = scripted_model([{"faults": [OVERFLOW] * 3, "text": "never"}], call_log=str(log))
    agent = _agent(tmp_path, model, [], EventLog())
    result = await agent.run("hello")
    assert result.status == "failed"
    assert result.reason.startswith(f"context overflow on {model}")
    assert "nothing old enough to compact" in result.reason and "no fallback" in result.reason
    assert _calls(log) == [(model, "chat", 0, "context_overflow")]


async def test_a_plain_client_call_still_moves_on_at_overflow(tmp_path: Path) -> None:
    log = tmp_path / "calls.jsonl"
    primary = scripted_model([{"faults": [OVERFLOW], "text": "primary"}], call_log=str(log))
    fallback = scripted_model([{"text": "fallback"}], call_log=str(log))
    client = LiteLLMClient(Config())
    messages = [{"role": "user", "content": "hi"}]
    result = await client.complete(CompletionRequest(primary, messages, fallback_models=[fallback]))
    assert result.text == "fallback" and result.model == fallback
    assert [(a.model, a.ok, a.error_class) for a in result.attempts] == [
        (primary, False, "context_overflow"),
        (fallback, True, None),
    ]
    assert _calls(log) == [(primary, "chat", 0, "context_overflow"), (fallback, "chat", 0, None)]


async def test_overflow_raise_stops_the_chain_with_every_attempt(tmp_path: Path) -> None:
    log = tmp_path / "calls.jsonl"
    primary = scripted_model([{"faults": [OVERFLOW], "text": "primary"}], call_log=str(log))
    fallback = scripted_model([{"text": "fallback"}], call_log=str(log))
    request = CompletionRequest(
        primary, [{"role": "user", "content": "hi"}], fallback_models=[fallback], overflow="raise"
    )
    with pytest.raises(ContextOverflowError) as err:
        await LiteLLMClient(Config()).complete(request)
    assert err.value.model == primary and err.value.error_class == "context_overflow"
    assert [(a.model, a.error_class) for a in err.value.attempts] == [(primary, "context_overflow")]
    assert str(err.value).startswith(f"context overflow on {primary}")
    assert _calls(log) == [(primary, "chat", 0, "context_overflow")]
