"""Session transcripts (JSONL) and resuming an agent from one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loopcraft.agent.session import SessionError, SessionHeader, SessionLog, list_sessions
from loopcraft.errors import NotFoundError
from loopcraft.models.types import CompletionRequest
from tests.integration.test_agent_support import (
    make_agent,
    scripted_client,
    scripted_model,
    tool_call,
    tool_outputs,
)


def header(**kw: object) -> SessionHeader:
    return SessionHeader(
        id="s1", workspace="/w", model="scripted/x", system_prompt="sys", tools=["read"], **kw
    )


def test_create_append_open_roundtrip(tmp_path: Path) -> None:
    path = tmp_path / "s" / "one.jsonl"
    log = SessionLog.create(path, header())
    log.append("message", message={"role": "user", "content": "hi"})
    log.append("status", status="completed", reason="")
    log.close()
    lines = path.read_text().splitlines()
    first = json.loads(lines[0])
    assert first["type"] == "header" and first["id"] == "s1" and first["tools"] == ["read"]
    assert first["system_prompt_hash"] and len(lines) == 3
    again = SessionLog.open(path)
    assert again.header.system_prompt == "sys"
    assert [e["type"] for e in again.entries] == ["message", "status"]


def test_create_refuses_to_overwrite_and_open_needs_a_session(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    SessionLog.create(path, header()).close()
    with pytest.raises(SessionError, match="already exists"):
        SessionLog.create(path, header())
    with pytest.raises(NotFoundError):
        SessionLog.open(tmp_path / "missing.jsonl")
    (tmp_path / "junk.jsonl").write_text('{"type": "message"}\n')
    with pytest.raises(SessionError, match="not a loopcraft session"):
        SessionLog.open(tmp_path / "junk.jsonl")


def test_torn_last_line_is_dropped_and_cut(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    log = SessionLog.create(path, header())
    log.append("message", message={"role": "user", "content": "kept"})
    log.close()
    with path.open("ab") as fh:
        fh.write(b'{"type": "message", "message": {"role": "assis')  # the process died mid-write
    reopened = SessionLog.open(path)
    assert len(reopened.entries) == 1
    reopened.append("status", status="running", reason="")
    reopened.close()
    entries = SessionLog.open(path).entries
    assert [e["type"] for e in entries] == ["message", "status"]


def test_guard_can_forbid_writes(tmp_path: Path) -> None:
    allowed = [True]

    def guard() -> None:
        if not allowed[0]:
            raise RuntimeError("lease lost")

    log = SessionLog.create(tmp_path / "g.jsonl", header(), guard=guard)
    log.append("status", status="running", reason="")
    allowed[0] = False
    with pytest.raises(RuntimeError, match="lease lost"):
        log.append("status", status="completed", reason="")
    assert len(log.read_entries()) == 1


def test_list_sessions_newest_first(tmp_path: Path) -> None:
    import os

    for index, name in enumerate(["old", "new"]):
        log = SessionLog.create(tmp_path / f"{name}.jsonl", SessionHeader(id=name, workspace="/w", model="m"))
        log.append("message", message={"role": "user", "content": f"task {name}\nmore"})
        log.append("status", status="completed", reason="")
        log.close()
        os.utime(tmp_path / f"{name}.jsonl", (1000 + index, 1000 + index))
    (tmp_path / "broken.jsonl").write_text("not json\n")
    found = list_sessions(tmp_path)
    assert [s.id for s in found] == ["new", "old"]
    assert found[0].title == "task new more" and found[0].status == "completed" and found[0].messages == 1
    assert list_sessions(tmp_path / "none") == []


class Crash(Exception):
    """Stands in for the process dying at a safe point."""


async def test_resume_does_not_recall_the_model_for_completed_turns(tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("content\n")
    model = scripted_model(
        [
            {"tool_calls": [tool_call("read", path="f.txt")]},
            {"tool_calls": [tool_call("ls", path=".")]},
            {"text": "all done"},
        ]
    )
    batches = [0]

    async def die_after_second_batch() -> None:
        batches[0] += 1
        if batches[0] == 4:  # turn 1, batch 1, turn 2, batch 2
            raise Crash

    agent = make_agent(tmp_path, model, safe_point=die_after_second_batch)
    with pytest.raises(Crash):
        await agent.run("go")
    agent.session.close()

    client = scripted_client()
    resumed = make_agent(tmp_path, model, session_path=agent.session.path, client=client)
    assert resumed.messages == agent.messages and resumed.usage == agent.usage and resumed.turns == 2
    result = await resumed.run()
    assert result.status == "completed" and result.text == "all done"
    assert len(client.requests) == 1 and client.requests[0].messages == agent.messages
    assert result.turns == 3 and result.tool_calls == 2  # counted across the crash
    again = await resumed.run()  # nothing left to do: no model call
    assert again.status == "completed" and len(client.requests) == 1


async def test_resume_finishes_unresolved_calls(tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("content\n")
    model = scripted_model(
        [
            {
                "tool_calls": [
                    tool_call("read", path="f.txt"),
                    tool_call("write", path="g.txt", content="x"),
                    tool_call("ls", path="."),
                ]
            },
            {"text": "finished"},
        ]
    )
    agent = make_agent(tmp_path, model)
    session = agent.session
    # simulate a crash: the model turn was journaled, read finished, write started, ls never ran
    session.append("status", status="running", reason="")
    session.append("message", message={"role": "user", "content": "go"}, source="prompt")
    result = await agent.client.complete(
        CompletionRequest(
            model=model, messages=[{"role": "system", "content": "s"}, {"role": "user", "content": "go"}]
        )
    )
    calls = result.tool_calls
    session.append("message", message=result.assistant_message(), model=model)
    session.append(
        "tool_call_start", call_id=calls[0].id, name="read", arguments=calls[0].arguments, read_only=True
    )
    session.append(
        "tool_result",
        call_id=calls[0].id,
        name="read",
        output="1\tcontent",
        is_error=False,
        metadata={},
        skipped=False,
    )
    session.append(
        "tool_call_start", call_id=calls[1].id, name="write", arguments=calls[1].arguments, read_only=False
    )
    session.close()

    client = scripted_client()
    resumed = make_agent(tmp_path, model, session_path=session.path, client=client)
    outcome = await resumed.run()
    assert outcome.status == "completed" and outcome.text == "finished"
    outputs = tool_outputs(resumed)
    assert outputs[0] == "1\tcontent"
    assert outputs[1].startswith("outcome unknown: the process stopped while this ran")
    assert "g.txt" not in outputs[2] and "f.txt" in outputs[2]  # ls ran now, before write ever did
    assert not (tmp_path / "g.txt").exists()  # the side effect was not blindly repeated
    assert len(client.requests) == 1  # only the final turn was asked of the model
