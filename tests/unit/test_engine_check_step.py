"""``ctx.check`` on a real journal and real shell commands: a passing and a failing check are
recorded with exit code, output and an artifact; a timeout (even with a background child holding
the output pipe) is a failed check, never a pass, and kills the command's group; a resumed run
replays the recorded result without running the command again; secret values never reach the
recorded output."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from loopcraft import CheckResult, Context, workflow
from loopcraft.engine.service import Engine
from tests.engine_fakes import open_engine

ENGINES: list[Engine] = []


@pytest.fixture(autouse=True)
async def _close() -> AsyncIterator[None]:
    yield
    while ENGINES:
        await ENGINES.pop().close()


async def _run(root: Path, wf: Any, inputs: dict[str, Any]) -> tuple[Engine, Any]:
    engine = await open_engine(root)
    ENGINES.append(engine)
    engine.register(wf)
    info = await asyncio.wait_for(engine.run(wf.name, inputs), 30)
    return engine, info


@workflow(name="one-check")
async def one_check(ctx: Context, cmd: str, timeout: float = 10.0) -> dict[str, Any]:
    result: CheckResult = await ctx.check("tests", cmd, timeout=timeout)
    return result.model_dump(mode="json")


async def test_a_passing_and_a_failing_check_are_recorded(git_repo: Path) -> None:
    _, ok = await _run(git_repo, one_check, {"cmd": "echo hello; exit 0"})
    assert ok.status == "completed", ok.error
    assert ok.output["passed"] is True and ok.output["code"] == 0
    assert "hello" in ok.output["output"]
    assert Path(ok.output["artifact"]).read_text() == "hello\n"

    engine, bad = await _run(git_repo, one_check, {"cmd": "echo broken >&2; exit 3"})
    assert bad.status == "completed", bad.error  # a failed check is a result, not a crash
    assert bad.output["passed"] is False and bad.output["code"] == 3
    assert "broken" in bad.output["output"]
    steps = await engine.journal.load_steps(bad.id)
    assert [(s.kind, s.name, s.status) for s in steps] == [("check", "tests", "completed")]


async def test_a_timeout_fails_even_with_a_child_holding_the_pipe(git_repo: Path, tmp_path: Path) -> None:
    marker = tmp_path / "survivor"
    cmd = f"(sleep 5; touch {marker}) & sleep 30"
    loop = asyncio.get_running_loop()
    started = loop.time()
    _, info = await _run(git_repo, one_check, {"cmd": cmd, "timeout": 0.5})
    assert loop.time() - started < 8
    assert info.output["passed"] is False and info.output["timed_out"] is True
    assert info.output["code"] is None
    assert "timed out after 0.5s" in info.output["output"]
    await asyncio.sleep(5.5)
    assert not marker.exists()  # the background child was killed with its group


async def test_a_shell_that_exits_while_a_child_holds_the_pipe_does_not_hang(git_repo: Path) -> None:
    _, info = await _run(git_repo, one_check, {"cmd": "echo done; sleep 30 & exit 0", "timeout": 20})
    assert info.output["passed"] is True
    assert "done" in info.output["output"]


COUNT: list[int] = []


@workflow(name="check-then-fail")
async def check_then_fail(ctx: Context, counter: str) -> str:
    first = await ctx.check("count", f"echo x >> {counter}")
    if not Path(counter + ".ok").exists():
        raise RuntimeError("crash after the check")
    return str(first.passed)


async def test_resume_replays_a_recorded_check(git_repo: Path, tmp_path: Path) -> None:
    counter = tmp_path / "counter"
    engine, info = await _run(git_repo, check_then_fail, {"counter": str(counter)})
    assert info.status == "failed"
    Path(str(counter) + ".ok").write_text("")
    await engine.resume(info.id)
    done = await asyncio.wait_for(engine.wait(info.id), 30)
    assert done.status == "completed", done.error
    assert counter.read_text() == "x\n"  # the command ran once, the resume replayed it


async def test_secret_values_are_redacted_from_check_output(
    git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-1234567890abcdef")
    _, info = await _run(git_repo, one_check, {"cmd": "echo key=$OPENAI_API_KEY"})
    assert "sk-test-1234567890abcdef" not in info.output["output"]
    assert "[redacted:OPENAI_API_KEY]" in info.output["output"]
    assert "sk-test-1234567890abcdef" not in Path(info.output["artifact"]).read_text()
    assert os.environ["OPENAI_API_KEY"]  # the check's own environment is not filtered
