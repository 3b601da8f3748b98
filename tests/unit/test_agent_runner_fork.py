"""Forking a stage session (context='fork'): atomic, and a copy a crash cut short is redone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from loopcraft.agent.loop import create_session
from loopcraft.agent.session import SessionError, SessionLog, fork_session
from loopcraft.config import Config
from loopcraft.engine.agent_runner import AgentTaskRunner, fork_markers, fork_stage_session
from loopcraft.engine.tasks import TaskRequest
from tests.integration.test_agent_support import scripted_client, scripted_model


def _source(path: Path, workspace: Path, model: str = "scripted/source") -> bytes:
    log = create_session(path, workspace=workspace, model=model, tools=[], stage="writer")
    log.append("message", message={"role": "user", "content": "write it"}, source="prompt")
    log.append("usage", turn=1, source="turn", usage={"input_tokens": 7}, total={"input_tokens": 7})
    log.append("message", message={"role": "assistant", "content": "written"}, model=model, turn=1)
    log.close()
    return path.read_bytes()


def _request(tmp_path: Path, source: Path, target: Path, model: str) -> TaskRequest:
    return TaskRequest(
        run_id="r1",
        key="review",
        name="review",
        workspace=tmp_path,
        session_path=target,
        model=model,
        fallback_models=[],
        tools=[],
        fork_from=source,
    )


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_bytes().splitlines()]


def test_fork_copies_the_source_and_appends_the_marker(tmp_path: Path) -> None:
    source, target = tmp_path / "a.jsonl", tmp_path / "stages" / "b.jsonl"
    original = _source(source, tmp_path)
    with source.open("ab") as fh:
        fh.write(b'{"type": "message", "mess')  # the source's own torn tail is not copied
    fork_stage_session(source, target)
    assert target.read_bytes().startswith(original)
    marker = _lines(target)[-1]
    assert marker["status"] == "forked" and marker["usage"]["input_tokens"] == 7
    assert len(_lines(target)) == len(original.splitlines()) + 1
    assert fork_markers(target) == fork_markers(source) + 1 == 1
    assert list(target.parent.iterdir()) == [target]  # no temporary file left behind


@pytest.mark.parametrize("cut", [0, 10, -30])
def test_a_partial_target_is_replaced_not_resumed(tmp_path: Path, cut: int) -> None:
    source, target = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    original = _source(source, tmp_path)
    target.write_bytes(original[: cut if cut >= 0 else len(original) + cut])  # an old copy cut short
    (tmp_path / ".b.jsonl.dead1234.tmp").write_bytes(original[:5])  # a fork killed before its rename
    fork_stage_session(source, target)
    assert target.read_bytes().startswith(original)
    assert [e.get("status") for e in _lines(target)[-1:]] == ["forked"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jsonl", "b.jsonl"]
    assert [e["type"] for e in SessionLog.open(target).entries] == ["message", "usage", "message", "status"]


def test_a_finished_fork_with_stage_work_is_kept(tmp_path: Path) -> None:
    source, target = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    _source(source, tmp_path)
    fork_stage_session(source, target)
    log = SessionLog.open(target)
    log.append("message", message={"role": "user", "content": "review it"}, source="prompt")
    log.close()
    before = target.read_bytes()
    fork_stage_session(source, target)
    assert target.read_bytes() == before


def test_a_fork_of_a_fork_counts_its_own_marker(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "c.jsonl"
    _source(a, tmp_path)
    fork_stage_session(a, b)
    c.write_bytes(b.read_bytes())  # a copy of b cut short just before c's own marker
    fork_stage_session(b, c)
    assert fork_markers(c) == 2


def test_a_guard_that_refuses_leaves_no_target(tmp_path: Path) -> None:
    source, target = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    _source(source, tmp_path)

    def lost() -> None:
        raise SessionError("lease lost")

    with pytest.raises(SessionError, match="lease lost"):
        fork_session(source, target, "status", lambda _: {"status": "forked"}, guard=lost)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jsonl"]


async def test_runner_forks_over_a_partial_target_and_a_resume_keeps_the_stage_model(tmp_path: Path) -> None:
    source, target = tmp_path / "a.jsonl", tmp_path / "stages" / "b.jsonl"
    original = _source(source, tmp_path, model="scripted/source")
    target.parent.mkdir()
    target.write_bytes(original[:-20])
    model = scripted_model([{"text": "(the source's turn)"}, {"text": "looks fine"}])
    runner = AgentTaskRunner(Config(), client=scripted_client())
    session = await runner.open(_request(tmp_path, source, target, model))
    assert not session.started
    outcome = await session.run("review it")
    session.close()
    assert outcome.text == "looks fine" and outcome.status == "completed"
    entries = SessionLog.open(target).entries
    assert next(e.get("status") for e in entries if e["type"] == "status") == "forked"
    assert [e["message"]["content"] for e in entries if e["type"] == "message"] == [
        "write it",
        "written",
        "review it",
        "looks fine",
    ]
    again = await runner.open(_request(tmp_path, source, target, model))
    assert again.started and again.agent.model == model  # not the source stage's model
    again.close()


async def test_a_resumed_fork_that_has_not_answered_is_not_pinned_to_the_source_model(tmp_path: Path) -> None:
    source, target = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    _source(source, tmp_path, model="scripted/source")
    runner = AgentTaskRunner(Config(), client=scripted_client())
    model = scripted_model([{"text": "ok"}])
    (await runner.open(_request(tmp_path, source, target, model))).close()
    again = await runner.open(_request(tmp_path, source, target, model))
    assert again.agent.model == model
    again.close()
