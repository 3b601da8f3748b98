"""The bash tool on real subprocesses: output, exit codes, timeouts and cancel kill the whole group,
head/tail cut, destructive commands need an approval token."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from loopcraft.agent.permissions import ApprovalToken, PermissionPolicy, PermissionRequest
from loopcraft.agent.tools.base import ToolContext
from loopcraft.agent.tools.bash import BashTool, HeadTail, cut_middle
from loopcraft.config import AgentConfig


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); check its state.
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


async def _wait_gone(pid: int, within: float = 3.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        await asyncio.sleep(0.05)
    return False


@pytest.fixture
def ctx(tmp_path: Path) -> ToolContext:
    return ToolContext(workspace=tmp_path)


async def test_runs_in_workspace_with_exit_code(ctx: ToolContext, tmp_path: Path) -> None:
    (tmp_path / "marker.txt").write_text("here")
    result = await BashTool().run({"command": "pwd; cat marker.txt; echo oops >&2; exit 3"}, ctx)
    assert str(tmp_path.resolve()) in result.output
    assert "here" in result.output and "oops" in result.output
    assert result.output.endswith("[exit code: 3]")
    assert result.metadata["exit_code"] == 3
    assert result.is_error


async def test_success_is_not_error(ctx: ToolContext) -> None:
    result = await BashTool().run({"command": "true"}, ctx)
    assert not result.is_error
    assert result.output == "(no output)\n[exit code: 0]"


async def test_timeout_kills_whole_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    ctx = ToolContext(workspace=tmp_path, config=AgentConfig(bash_timeout=30))
    command = f"sleep 60 & echo $! > {pidfile}; wait"
    result = await BashTool().run({"command": command, "timeout": 0.5}, ctx)
    assert result.metadata["timed_out"] is True and result.is_error
    assert "timed out after 0.5s" in result.output
    child = int(pidfile.read_text())
    assert await _wait_gone(child), "the child sleep survived the timeout"


async def test_timeout_capped_by_config(tmp_path: Path) -> None:
    ctx = ToolContext(workspace=tmp_path, config=AgentConfig(bash_timeout=0.5))
    result = await BashTool().run({"command": "sleep 30", "timeout": 1000}, ctx)
    assert result.metadata["timed_out"] is True
    assert "timed out after 0.5s" in result.output


async def test_cancel_kills_within_a_second(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    ctx = ToolContext(workspace=tmp_path, config=AgentConfig(bash_timeout=60))
    task = asyncio.create_task(BashTool().run({"command": f"sleep 60 & echo $! > {pidfile}; wait"}, ctx))
    for _ in range(100):
        if pidfile.exists() and pidfile.read_text().strip():
            break
        await asyncio.sleep(0.05)
    started = time.monotonic()
    ctx.cancel.set()
    result = await asyncio.wait_for(task, 5)
    assert time.monotonic() - started < 1.0
    assert result.metadata["cancelled"] is True
    assert "cancelled" in result.output
    assert await _wait_gone(int(pidfile.read_text()))


async def test_task_cancellation_kills_group_and_propagates(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    ctx = ToolContext(workspace=tmp_path)
    task = asyncio.create_task(BashTool().run({"command": f"sleep 60 & echo $! > {pidfile}; wait"}, ctx))
    for _ in range(100):
        if pidfile.exists() and pidfile.read_text().strip():
            break
        await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await _wait_gone(int(pidfile.read_text()))


async def test_background_child_holding_output_does_not_hang(tmp_path: Path) -> None:
    ctx = ToolContext(workspace=tmp_path)
    result = await asyncio.wait_for(BashTool().run({"command": "echo hi; sleep 60 &"}, ctx), 10)
    assert "hi" in result.output and result.metadata["exit_code"] == 0
    assert "background processes still holding the output were stopped" in result.output
    detached = await asyncio.wait_for(
        BashTool().run({"command": "sleep 60 >/dev/null 2>&1 & echo $!"}, ctx), 10
    )
    pid = int(detached.output.splitlines()[0])
    try:
        assert _alive(pid), "a background process with redirected output is left running"
    finally:
        os.kill(pid, 9)


async def test_long_output_cut_to_head_and_tail(tmp_path: Path) -> None:
    ctx = ToolContext(workspace=tmp_path, config=AgentConfig(max_tool_output=1000))
    result = await BashTool().run({"command": "seq 1 100000"}, ctx)
    out = result.output
    assert out.startswith("1\n2\n3\n")
    assert "100000\n[exit code: 0]" in out
    assert "cut from the middle" in out
    assert "50000\n" not in out
    assert len(out) < 1400
    assert result.metadata["truncated"] is True


def test_head_tail_buffer_bounded() -> None:
    sink = HeadTail(limit=10)
    for i in range(1000):
        sink.add(f"{i:05d}\n".encode())
    assert bytes(sink.head) == b"00000\n0000"
    assert bytes(sink.tail).endswith(b"00999\n")
    assert len(sink.tail) <= 20 and sink.total == 6000


def test_cut_middle_short_text_untouched() -> None:
    assert cut_middle("abc", 10) == ("abc", False)


async def test_bad_arguments(ctx: ToolContext) -> None:
    assert "`command` is required" in (await BashTool().run({}, ctx)).output
    assert "positive number" in (await BashTool().run({"command": "true", "timeout": -1}, ctx)).output


class _Human:
    def __init__(self, answer: str) -> None:
        self.answer = answer
        self.asked: list[PermissionRequest] = []

    async def ask(self, request: PermissionRequest):
        self.asked.append(request)
        return self.answer


async def test_destructive_refused_without_token(tmp_path: Path) -> None:
    (tmp_path / "build").mkdir()
    (tmp_path / "build" / "x.o").write_text("x")
    ctx = ToolContext(workspace=tmp_path)
    result = await BashTool().run({"command": "rm -rf build"}, ctx)
    assert result.is_error and "destructive" in result.output
    assert (tmp_path / "build" / "x.o").exists()


async def test_destructive_headless_policy_refuses_and_tool_refuses(tmp_path: Path) -> None:
    (tmp_path / "build").mkdir()
    policy = PermissionPolicy(AgentConfig(), approver=None, mode="yolo")
    auth = await policy.authorize(BashTool(), {"command": "rm -rf build"})
    assert not auth.allowed and auth.token is None
    assert auth.reason == (
        "refused: `rm -rf build` is destructive and needs a human's approval; "
        "no human is available in this headless run"
    )
    assert (tmp_path / "build").exists()


async def test_destructive_runs_with_human_token(tmp_path: Path) -> None:
    (tmp_path / "build").mkdir()
    (tmp_path / "build" / "x.o").write_text("x")
    human = _Human("allow_once")
    policy = PermissionPolicy(AgentConfig(), approver=human, mode="yolo")
    auth = await policy.authorize(BashTool(), {"command": "rm -rf build"})
    assert auth.allowed and auth.token is not None
    assert human.asked and human.asked[0].destructive
    ctx = ToolContext(workspace=tmp_path, approval=auth.token)
    result = await BashTool().run({"command": "rm -rf build"}, ctx)
    assert not result.is_error, result.output
    assert not (tmp_path / "build").exists()
    # The token is bound to that exact command.
    (tmp_path / "other").mkdir()
    other = await BashTool().run({"command": "rm -rf other"}, ctx)
    assert other.is_error and (tmp_path / "other").exists()


def test_token_cannot_be_forged() -> None:
    with pytest.raises(ValueError, match="human"):
        ApprovalToken("bash", "rm -rf /", "0" * 64)
