"""Steer/follow-up mail is consumed only once the stage's transcript holds it, and a crash between
the two neither loses it nor delivers it twice (the crash point is reproduced deterministically)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from loopcraft.agent.session import SessionLog
from loopcraft.config import Config
from loopcraft.engine.agent_runner import AgentTaskRunner, AgentTaskSession, undelivered_mail
from loopcraft.engine.control import RunControl, post
from loopcraft.engine.journal import Journal
from loopcraft.engine.tasks import TaskRequest
from tests.integration.test_agent_support import RecordingClient, scripted_client, scripted_model

STEER = "use pathlib"


def _control(journal: Journal) -> RunControl:
    execution: Any = SimpleNamespace(journal=journal, run_id="r1", config=Config())
    return RunControl(execution)


def _request(tmp_path: Path, model: str) -> TaskRequest:
    return TaskRequest(
        run_id="r1",
        key="build",
        name="build",
        workspace=tmp_path,
        session_path=tmp_path / "stages" / "build.jsonl",
        model=model,
        fallback_models=[],
        tools=[],
    )


def _steers(path: Path) -> list[str]:
    entries = SessionLog.open(path).entries
    return [e["message"]["content"] for e in entries if e["type"] == "message" and e.get("source") == "steer"]


async def _settle(control: RunControl) -> None:
    await asyncio.gather(*control._acks)


async def test_mail_stays_pending_until_the_stage_transcript_holds_it(
    tmp_path: Path, journal: Journal
) -> None:
    await post(journal, "r1", "steer", stage_key="build", message=STEER)
    control = _control(journal)
    await control.start([])
    assert [m.kind for m in await journal.pending_mail("r1")] == ["steer"]  # no stage open yet
    await control.pump_once()
    assert control.pending["build"] == [("steer", STEER, 1)]  # taken once, not queued twice
    runner = AgentTaskRunner(Config(), client=scripted_client())
    session = await runner.open(_request(tmp_path, scripted_model([{"text": "ok"}])))
    control.attach("build", session)
    await _settle(control)
    assert await journal.pending_mail("r1") == []
    session.close()
    mail = [e for e in SessionLog.open(session.log.path).entries if e["type"] == "mail"]
    assert [(m["kind"], m["text"], m["mail_id"]) for m in mail] == [("steer", STEER, 1)]


async def test_a_crash_after_recording_before_consuming_delivers_once(
    tmp_path: Path, journal: Journal
) -> None:
    await post(journal, "r1", "steer", stage_key="build", message=STEER)
    model = scripted_model([{"text": "first"}, {"text": "second"}])
    runner = AgentTaskRunner(Config(), client=scripted_client())
    # process 1: the stage gets the mail (recorded in its transcript), then dies before consuming it
    first = _control(journal)
    await first.start([])
    session = await runner.open(_request(tmp_path, model))
    first.attach("build", session)
    for ack in first._acks:
        ack.cancel()  # the crash point: nothing ran after the transcript write
    await asyncio.gather(*first._acks, return_exceptions=True)
    session.close()
    assert [m.kind for m in await journal.pending_mail("r1")] == ["steer"]
    # process 2: the mail is still pending and the transcript already has it
    client = scripted_client()
    second = _control(journal)
    await second.start([])
    resumed = await AgentTaskRunner(Config(), client=client).open(_request(tmp_path, model))
    second.attach("build", resumed)
    await _settle(second)
    assert await journal.pending_mail("r1") == []
    outcome = await resumed.run("build it")
    resumed.close()
    assert outcome.status == "completed"
    assert _steers(resumed.log.path) == [STEER]
    sent = [m.get("content") for m in _last_request(client)["messages"]]
    assert sent.count(STEER) == 1


async def test_a_crash_after_consuming_before_the_model_saw_it_redelivers_from_the_transcript(
    tmp_path: Path,
) -> None:
    model = scripted_model([{"text": "ok"}])
    runner = AgentTaskRunner(Config(), client=scripted_client())
    session = await runner.open(_request(tmp_path, model))
    session.deliver("steer", STEER, 7)
    session.deliver("steer", STEER, 7)  # the same mail again: ignored
    session.close()  # the process dies before the agent turned the mail into a message
    entries = SessionLog.open(session.log.path).entries
    assert [e["mail_id"] for e in undelivered_mail(entries)] == [7]
    resumed = await runner.open(_request(tmp_path, model))
    resumed.deliver("steer", STEER, 7)  # still pending in the journal: not queued a second time
    await resumed.run("build it")
    resumed.close()
    assert _steers(session.log.path) == [STEER]
    again = await runner.open(_request(tmp_path, model))
    assert isinstance(again, AgentTaskSession) and not again.agent._steers  # nothing left to deliver
    again.close()


def _last_request(client: RecordingClient) -> dict[str, Any]:
    return {"messages": client.requests[-1].messages}
