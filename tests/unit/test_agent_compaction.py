"""Verbatim compaction: numbering, range parsing, mechanical rebuild, and the agent
compacting mid-session (auto and on demand), with the summary fallback and give-up."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loopcraft.agent.compaction import (
    CompactionFormatError,
    apply_drop,
    number_history,
    parse_drop,
    recent_start,
)
from loopcraft.agent.tools.fs import LsTool, ReadTool
from loopcraft.config import AgentConfig
from tests.integration.test_agent_support import (
    EventLog,
    make_agent,
    scripted_client,
    scripted_model,
    tool_call,
)

HISTORY = [
    {"role": "user", "content": "fix it"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "read", "arguments": '{"path": "a.py"}'}}
        ],
    },
    {"role": "tool", "tool_call_id": "c1", "content": "l1\nl2\nl3\nl4\nl5"},
    {"role": "assistant", "content": "thinking\nmore"},
    {"role": "user", "content": "go on"},
    {"role": "assistant", "content": "recent"},
]


def test_number_history_numbers_content_and_arguments() -> None:
    text, segments, total = number_history(HISTORY[:3])
    assert total == 7  # 1 prompt line, 1 argument line, 5 result lines
    assert "     1| fix it" in text and '     2| {"path": "a.py"}' in text and "     7| l5" in text
    assert "=== message 2: tool result (c1) ===" in text
    assert [(s.message, s.call, s.first) for s in segments] == [(0, None, 1), (1, 0, 2), (2, None, 3)]


def test_apply_drop_keeps_text_verbatim_with_markers() -> None:
    _, segments, total = number_history(HISTORY[:3])
    rebuilt, dropped = apply_drop(HISTORY[:3], segments, total, [(4, 6)])
    assert dropped == 3
    assert rebuilt[2]["content"] == "l1\n(3 lines filtered)\nl5"
    assert rebuilt[0] == HISTORY[0] and rebuilt[1] == HISTORY[1]
    assert HISTORY[2]["content"] == "l1\nl2\nl3\nl4\nl5"  # the input is not mutated
    rebuilt, _ = apply_drop(HISTORY[:3], segments, total, [(2, 2)])
    args = json.loads(rebuilt[1]["tool_calls"][0]["function"]["arguments"])
    assert args == {"filtered_arguments": "(1 lines filtered)"}  # still valid JSON, call kept
    assert rebuilt[2]["tool_call_id"] == "c1"


@pytest.mark.parametrize(
    "answer",
    [
        "nope",
        '{"drop": [[0, 2]]}',
        '{"drop": [[3, 2]]}',
        '{"drop": [[1, 99]]}',
        '{"drop": "1-2"}',
        "[[1, 2]]",
        '{"drop": [[1.5, 2]]}',
    ],
)
def test_parse_drop_rejects_bad_answers(answer: str) -> None:
    with pytest.raises(CompactionFormatError):
        parse_drop(answer, 7)


def test_parse_drop_accepts_fenced_json() -> None:
    assert parse_drop('```json\n{"drop": [[1, 2], [5, 7]]}\n```', 7) == [(1, 2), (5, 7)]


def test_recent_start_keeps_whole_turns() -> None:
    assert recent_start(HISTORY, 1) == 5
    assert recent_start(HISTORY, 2) == 3
    assert recent_start(HISTORY, 3) == 0  # nothing older than the kept turns


def _big_file(tmp_path: Path) -> None:
    (tmp_path / "big.txt").write_text("".join(f"line {n:04}\n" for n in range(1, 301)))


def _script(compaction: list[dict], summary: list[dict] | None = None, extra_turns: int = 1) -> str:
    work = [{"tool_calls": [tool_call("read", path="big.txt")]}]
    work += [{"tool_calls": [tool_call("ls", path=".", n=i)]} for i in range(extra_turns)]
    work += [{"text": "done after compaction"}]
    return scripted_model(
        stages={"compaction:*": compaction, "summary:*": summary or [{"text": "no"}], "*": work}
    )


def _agent(tmp_path: Path, model: str, events: EventLog, window: int = 1000, client=None):
    return make_agent(
        tmp_path,
        model,
        tools=[ReadTool(), LsTool()],
        client=client or scripted_client(),
        config=AgentConfig(keep_recent_turns=1),
        context_window=window,
        on_event=events,
    )


async def test_auto_compaction_keeps_recent_turns_and_goes_on(tmp_path: Path) -> None:
    _big_file(tmp_path)
    # older history: prompt (line 1), read's arguments (line 2), read's 300 result lines (3..302)
    model = _script([{"json": {"drop": [[4, 301]]}}])
    events = EventLog()
    client = scripted_client()
    agent = _agent(tmp_path, model, events, client=client)
    result = await agent.run("read big.txt")
    assert result.status == "completed" and result.text == "done after compaction"
    compactions = [e for e in events if e.kind == "compaction"]
    assert len(compactions) == 1 and compactions[0].method == "verbatim"
    assert compactions[0].dropped_lines == 298 and compactions[0].tokens_after < compactions[0].tokens_before
    big = agent.messages[3]["content"]
    assert big.splitlines() == ["     1\tline 0001", "(298 lines filtered)", "   300\tline 0300"]
    # the recent turn (ls call and its result) is untouched, and the model saw the compacted history
    assert agent.messages[4]["tool_calls"][0]["function"]["name"] == "ls"
    final_request = client.requests[-1]
    assert final_request.stage == "chat" and final_request.messages == agent.messages[:-1]
    assert len(client.calls_for("compaction:chat")) == 1
    # resume rebuilds the same compacted history from the JSONL
    rebuilt = make_agent(tmp_path, model, session_path=agent.session.path, tools=[ReadTool(), LsTool()])
    assert rebuilt.messages == agent.messages
    entry = next(e for e in agent.session.read_entries() if e["type"] == "compaction")
    assert entry["method"] == "verbatim" and entry["prefix_len"] == 3


async def test_summary_fallback_when_verbatim_answer_is_bad(tmp_path: Path) -> None:
    _big_file(tmp_path)
    summary = {"goal": "read big.txt", "done": ["read the file"], "next": ["answer"]}
    model = _script([{"text": "I would drop the middle"}], [{"json": summary}])
    events = EventLog()
    agent = _agent(tmp_path, model, events)
    result = await agent.run("read big.txt")
    assert result.status == "completed"
    assert [e.method for e in events if e.kind == "compaction"] == ["summary"]
    first = agent.messages[1]
    assert (
        first["role"] == "user"
        and "Goal: read big.txt" in first["content"]
        and "- answer" in first["content"]
    )
    # the read turn is gone (summarised); the kept recent turn still pairs its call and result.
    # (The scripted model counts assistant messages to pick its turn, so after one was summarised
    # away it plays the ls turn once more before answering.)
    assert [m["role"] for m in agent.messages[2:4]] == ["assistant", "tool"]
    assert agent.messages[3]["tool_call_id"] == agent.messages[2]["tool_calls"][0]["id"]
    assert not any("line 0150" in str(m.get("content")) for m in agent.messages)


async def test_gives_up_after_three_failures(tmp_path: Path) -> None:
    _big_file(tmp_path)
    model = _script([{"text": "bad"}], [{"text": "also bad"}], extra_turns=6)
    events = EventLog()
    client = scripted_client()
    agent = _agent(tmp_path, model, events, client=client)
    result = await agent.run("read big.txt")
    assert result.status == "completed"
    assert len(client.calls_for("compaction:chat")) == 3 and len(client.calls_for("summary:chat")) == 3
    failures = [e for e in events if e.kind == "budget_warning" and e.limit == "compaction"]
    assert len(failures) == 3 and "verbatim" in failures[0].message


async def test_compact_on_demand(tmp_path: Path) -> None:
    _big_file(tmp_path)
    model = _script([{"json": {"drop": [[3, 300]]}}])
    events = EventLog()
    agent = _agent(tmp_path, model, events, window=1_000_000)  # never automatic
    await agent.run("read big.txt")
    assert not [e for e in events if e.kind == "compaction"]
    before = agent.estimated_tokens()
    assert await agent.compact() is True
    assert agent.estimated_tokens() < before
    assert "(298 lines filtered)" in agent.messages[3]["content"]
