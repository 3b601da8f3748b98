"""A stage agent whose run was taken over by another process runs no more mutating tools."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from loopcraft.agent.events import ToolCallEnd
from loopcraft.agent.session import SessionLog
from loopcraft.config import Config
from loopcraft.engine.agent_runner import AgentTaskRunner
from loopcraft.engine.journal import Journal
from loopcraft.engine.leases import Lease, LeaseLost, new_owner_id
from loopcraft.engine.tasks import TaskRequest
from tests.integration.test_agent_support import scripted_client, scripted_model, tool_call

OTHER = "otherhost:4242:beef00"


async def _lease(journal: Journal) -> Lease:
    lease = Lease(journal, "r1", new_owner_id(), 300.0)
    await lease.claim()
    return lease


def _request(tmp_path: Path, model: str, lease: Lease, on_event: Any = None) -> TaskRequest:
    workspace = tmp_path / "ws"
    workspace.mkdir(exist_ok=True)
    return TaskRequest(
        run_id="r1",
        key="build",
        name="build",
        workspace=workspace,
        session_path=tmp_path / "stages" / "build.jsonl",
        model=model,
        fallback_models=[],
        tools=["write", "read", "ls"],
        on_event=on_event,
        guard=lease.check,
        lease_check=lease.verify,
    )


def _writes(*names: str) -> str:
    turns: list[dict[str, Any]] = [
        {"tool_calls": [tool_call("write", path=name, content=name)]} for name in names
    ]
    return scripted_model([*turns, {"text": "done"}])


async def test_a_taken_over_run_does_not_execute_the_next_write(tmp_path: Path, journal: Journal) -> None:
    lease = await _lease(journal)

    async def take_over(event: Any) -> None:  # another process claims the run after the first write
        if isinstance(event, ToolCallEnd) and event.name == "write":
            now = time.time()
            assert await journal.claim_run(
                "r1", OTHER, now=now, expires=now + 60, status="running", take_from=lease.owner
            )

    runner = AgentTaskRunner(Config(), client=scripted_client())
    session = await runner.open(_request(tmp_path, _writes("first.txt", "second.txt"), lease, take_over))
    assert not lease.lost and time.time() < lease.expires  # nothing local says the run is gone yet
    with pytest.raises(LeaseLost, match="lost its lease"):
        await session.run("write two files")
    session.close()
    workspace = tmp_path / "ws"
    assert (workspace / "first.txt").read_text() == "first.txt"
    assert not (workspace / "second.txt").exists()
    assert lease.lost
    entries = SessionLog.open(tmp_path / "stages" / "build.jsonl").entries
    results = [e for e in entries if e["type"] == "tool_result"]
    assert [r["name"] for r in results] == ["write"]  # the loser recorded nothing for the second call


async def test_an_owned_run_writes_and_read_only_tools_do_not_ask_the_journal(
    tmp_path: Path, journal: Journal
) -> None:
    lease = await _lease(journal)
    model = scripted_model(
        [
            {"tool_calls": [tool_call("ls", path=".")]},
            {"tool_calls": [tool_call("write", path="a.txt", content="a")]},
            {"text": "done"},
        ]
    )
    asked: list[str] = []
    verify = lease.verify

    async def counting_verify() -> None:
        asked.append("verify")
        await verify()

    lease.verify = counting_verify  # type: ignore[method-assign]
    runner = AgentTaskRunner(Config(), client=scripted_client())
    session = await runner.open(_request(tmp_path, model, lease))
    outcome = await session.run("write a")
    session.close()
    assert outcome.status == "completed"
    assert (tmp_path / "ws" / "a.txt").read_text() == "a"
    assert asked == ["verify"]  # once, for the write; ls is read-only


async def test_verify_marks_the_lease_lost_when_the_journal_names_another_owner(journal: Journal) -> None:
    lease = await _lease(journal)
    await lease.verify()
    assert not lease.lost
    await journal.update_run("r1", owner=OTHER)
    with pytest.raises(LeaseLost):
        await lease.verify()
    assert lease.lost
    with pytest.raises(LeaseLost):
        lease.check()
