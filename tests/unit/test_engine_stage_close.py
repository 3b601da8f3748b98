"""Closing a long-lived stage detaches its session from the run's control (no steering reaches a closed
session) and from the execution's live sessions."""

from __future__ import annotations

from pathlib import Path

from loopcraft import Context, workflow
from loopcraft.config import Config
from loopcraft.engine.service import Engine
from tests.integration.test_agent_support import scripted_model

SEEN: dict[str, bool] = {}


@workflow(name="close-stage")
async def close_stage(ctx: Context) -> str:
    stage = ctx.stage("helper")
    result = await stage.prompt("hello")
    execution = ctx._exec
    SEEN["attached"] = stage.key in execution.control.sessions
    stage.close()
    SEEN["control"] = stage.key in execution.control.sessions
    SEEN["live"] = stage.key in execution.live
    return result.text


async def test_closing_a_stage_detaches_its_session(git_repo: Path) -> None:
    engine = await Engine.open(git_repo, Config(model=scripted_model([{"text": "hi"}])))
    engine.register(close_stage)
    info = await engine.run("close-stage", {})
    assert info.status == "completed", info.error
    assert SEEN == {"attached": True, "control": False, "live": False}
    await engine.close()
