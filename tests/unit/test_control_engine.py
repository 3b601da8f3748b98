"""Run control in one process on a real journal: pause, resume, interrupt, steer, follow-up, kill,
human gates and their bad input, with a paced fake task runner."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from loopcraft import Context, workflow
from loopcraft.engine.control import ControlError
from loopcraft.engine.gates import AnswerError
from loopcraft.engine.service import Engine
from loopcraft.errors import LoopcraftError, NotFoundError
from tests.control_fakes import SteppedRunner, open_control_engine, wait_for


@workflow(name="two-stages")
async def two_stages(ctx: Context) -> list[str]:
    first = await ctx.task("alpha", prompt="a")
    second = await ctx.task("beta", prompt="b")
    return [first.text, second.text]


@workflow(name="gate")
async def gate(ctx: Context) -> str:
    choice = await ctx.ui.select("Which way?", ["left", "right"])
    ok = await ctx.ui.confirm("Sure?")
    return f"{choice}:{ok}"


def _first_model_call(runner: SteppedRunner) -> bool:
    return len(runner.model_calls) >= 1


def _alpha_open(runner: SteppedRunner) -> bool:
    return "alpha" in runner.sessions


async def _start_two_stages(
    root: Path, runner: SteppedRunner, ready: Callable[[SteppedRunner], bool] = _first_model_call
) -> tuple[Engine, str]:
    """Start ``two-stages`` on a control engine over ``root`` and wait until ``ready(runner)`` holds."""
    engine = await open_control_engine(root, runner)
    engine.register(two_stages)
    run_id = await engine.start("two-stages", {})
    await wait_for(lambda: ready(runner))
    return engine, run_id


async def _stage_status(engine, run_id: str, name: str) -> str | None:  # type: ignore[no-untyped-def]
    for row in await engine.journal.load_steps(run_id):
        if row.name == name:
            return row.status
    return None


async def test_pause_stops_at_safe_point_and_resume_continues(git_repo: Path) -> None:
    runner = SteppedRunner(steps={"alpha": 6})
    engine, run_id = await _start_two_stages(git_repo, runner)
    await engine.pause(run_id)
    await wait_for(lambda: _stage_status(engine, run_id, "alpha"), timeout=2)
    await wait_for(lambda: _is(engine, run_id, "alpha", "paused"))
    assert (await engine.get_run(run_id)).status == "paused"
    calls = len(runner.model_calls)
    await asyncio.sleep(0.2)
    assert len(runner.model_calls) == calls  # nothing runs while paused
    await engine.resume(run_id)  # returns at once: the run is live in this process
    info = await engine.wait(run_id)
    assert info.status == "completed", info.error
    assert info.output == ["alpha done", "beta done"]
    await engine.close()


async def _is(engine, run_id: str, name: str, status: str) -> bool:  # type: ignore[no-untyped-def]
    return await _stage_status(engine, run_id, name) == status


async def test_interrupt_cancels_in_flight_call_and_resume_steers(git_repo: Path) -> None:
    runner = SteppedRunner(steps={"alpha": 4}, pace=0.5)
    engine, run_id = await _start_two_stages(git_repo, runner)
    await engine.interrupt(run_id, "alpha")
    await wait_for(lambda: runner.cancelled == ["alpha"], timeout=1.0)
    await wait_for(lambda: _is(engine, run_id, "alpha", "paused"))
    await engine.resume(run_id, message="focus on tests")
    info = await engine.wait(run_id)
    assert info.status == "completed", info.error
    assert info.output[0] == "alpha done +steer:focus on tests"
    await engine.close()


async def test_steer_and_follow_up_reach_the_stage_by_name(git_repo: Path) -> None:
    runner = SteppedRunner(steps={"alpha": 5})
    engine, run_id = await _start_two_stages(git_repo, runner, _alpha_open)
    await engine.steer(run_id, "alpha", "use pathlib")
    await engine.follow_up(run_id, "alpha", "then summarise")
    info = await engine.wait(run_id)
    assert info.output[0] == "alpha done +steer:use pathlib +follow:then summarise"
    await engine.close()


async def test_bad_control_input_changes_nothing(git_repo: Path) -> None:
    runner = SteppedRunner(steps={"alpha": 30})
    engine, run_id = await _start_two_stages(git_repo, runner, _alpha_open)
    with pytest.raises(NotFoundError, match="no stage 'gamma'; stages: alpha"):
        await engine.steer(run_id, "gamma", "hi")
    with pytest.raises(ControlError, match="empty"):
        await engine.steer(run_id, "alpha", "  ")
    await engine.kill(run_id)
    assert (await engine.get_run(run_id)).status == "killed"
    for action in (engine.pause, engine.interrupt):
        with pytest.raises(ControlError, match="not running"):
            await action(run_id)
    with pytest.raises(ControlError, match="not running"):
        await engine.steer(run_id, "alpha", "hi")
    with pytest.raises(ControlError, match="already killed"):
        await engine.kill(run_id)
    with pytest.raises(LoopcraftError, match="cannot be resumed"):
        await engine.resume(run_id)
    assert await engine.journal.pending_mail(run_id) == []
    await engine.close()


async def test_kill_cancels_in_flight_work_and_marks_steps(git_repo: Path) -> None:
    runner = SteppedRunner(steps={"alpha": 4}, pace=1.0)
    engine, run_id = await _start_two_stages(git_repo, runner)
    info = await engine.kill(run_id)
    assert info.status == "killed"
    assert await _stage_status(engine, run_id, "alpha") == "failed"
    assert "beta" not in runner.sessions
    await engine.close()


async def test_kill_of_a_stopped_run_marks_it_killed(git_repo: Path) -> None:
    engine = await open_control_engine(git_repo)
    engine.stop_at_gates = True
    engine.register(gate)
    info = await engine.run("gate", {})
    assert info.status == "needs_human"
    assert (await engine.kill(info.id)).status == "killed"
    with pytest.raises(ControlError, match="is killed"):
        await engine.answer(info.id, None, "left")
    await engine.close()


async def test_gate_answers_normalised_once_and_survive_a_down_owner(git_repo: Path) -> None:
    engine = await open_control_engine(git_repo)
    engine.stop_at_gates = True  # headless with no terminal
    engine.register(gate)
    info = await engine.run("gate", {})
    assert info.status == "needs_human" and info.exit_code == 5
    assert "loopcraft answer" in (info.error or "")
    [prompt] = await engine.prompts(info.id)
    with pytest.raises(AnswerError, match="not one of: left, right"):
        await engine.answer(info.id, prompt.id, "up")
    assert [p.id for p in await engine.prompts(info.id)] == [prompt.id]  # still pending
    with pytest.raises(NotFoundError, match="no prompt 'nope'"):
        await engine.answer(info.id, "nope", "left")
    assert await engine.answer(info.id, prompt.id, "2") == "right"
    with pytest.raises(ControlError, match="not pending"):
        await engine.answer(info.id, prompt.id, "left")
    engine.stop_at_gates = False
    resumed = asyncio.ensure_future(engine.resume(info.id))
    await wait_for(lambda: _pending_count(engine, info.id, 1))
    [confirm] = await engine.prompts(info.id)
    assert confirm.kind == "confirm"
    assert await engine.answer(info.id, None, "yes") is True
    final = await resumed
    assert final.status == "completed" and final.output == "right:True"
    await engine.close()


async def _pending_count(engine, run_id: str, n: int) -> bool:  # type: ignore[no-untyped-def]
    return len(await engine.prompts(run_id)) == n
