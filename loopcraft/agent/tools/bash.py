"""The ``bash`` tool: one shell command in the workspace, in its own process group, bounded in time
and output; the whole group is killed on timeout or cancel. Destructive commands need an approval
token in the context (the runtime enforces it, not the prompt)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from dataclasses import dataclass, field
from typing import Any

from loopcraft.agent.containment import shell_env
from loopcraft.agent.permissions import is_destructive
from loopcraft.agent.sandbox import sandboxed_argv
from loopcraft.agent.tools.base import ToolContext, ToolResult
from loopcraft.agent.tools.common import BuiltinTool, opt_float, req_str, schema

KILL_GRACE = 0.3  # seconds between SIGTERM and SIGKILL of the group
DRAIN_WAIT = 1.0  # seconds to collect output after the shell exits (background children may hold it)
POLL = 0.05  # seconds between checks of exit, cancel and deadline
_CHUNK = 65536


@dataclass
class HeadTail:
    """Keeps the first and last ``limit`` bytes of a stream, counting what is dropped between."""

    limit: int
    head: bytearray = field(default_factory=bytearray)
    tail: bytearray = field(default_factory=bytearray)
    total: int = 0

    def add(self, data: bytes) -> None:
        self.total += len(data)
        room = self.limit - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if data:
            self.tail += data
            if len(self.tail) > 2 * self.limit:
                del self.tail[: len(self.tail) - self.limit]


def cut_middle(text: str, limit: int) -> tuple[str, bool]:
    """``text`` cut to its head and tail with a note in the middle when longer than ``limit``."""
    if len(text) <= limit:
        return text, False
    half = limit // 2
    dropped = len(text) - 2 * half
    note = (
        f"\n\n[… {dropped} characters cut from the middle of the output; rerun with narrower output, "
        "e.g. piping through `head`, `tail` or `grep` …]\n\n"
    )
    return text[:half] + note + text[-half:], True


async def _read_into(stream: asyncio.StreamReader, sink: HeadTail) -> None:
    while chunk := await stream.read(_CHUNK):
        sink.add(chunk)


def kill_group(pgid: int, sig: int = signal.SIGKILL) -> None:
    """Signal every process of a group; a group already gone is fine."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


async def shell_exited(proc: asyncio.subprocess.Process, within: float) -> bool:
    """Whether the shell exits within ``within`` seconds. Polls the return code: ``proc.wait()``
    also waits for the output pipe, which a background child may hold open. The first polls come
    fast (from 1 ms, doubling up to ``POLL``) so a quick command is not charged a whole poll."""
    deadline = time.monotonic() + within
    delay = 0.001
    while proc.returncode is None:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        await asyncio.sleep(min(delay, left))
        delay = min(delay * 2, POLL)
    return proc.returncode is not None


async def _terminate(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM the whole group, then SIGKILL it after a short grace."""
    kill_group(proc.pid, signal.SIGTERM)
    await shell_exited(proc, KILL_GRACE)
    kill_group(proc.pid, signal.SIGKILL)
    await shell_exited(proc, KILL_GRACE)


async def _drained(reader: asyncio.Task[None]) -> bool:
    done, _ = await asyncio.wait({reader}, timeout=DRAIN_WAIT)
    return bool(done)


class BashTool(BuiltinTool):
    name = "bash"
    description = (
        "Run a shell command (bash) in the workspace and return its combined stdout/stderr and exit code. "
        "Give `timeout` in seconds for long commands. No interactive input is possible. "
        "Destructive commands (rm -rf, git push --force, git reset --hard, …) need the user's approval."
    )
    parameters = schema(
        {
            "command": {"type": "string", "description": "The command line to run"},
            "timeout": {"type": "number", "description": "Seconds before the command is killed"},
        },
        ["command"],
    )
    read_only = False

    async def execute(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        command = req_str(args, "command")
        limit = ctx.config.bash_timeout
        timeout = min(opt_float(args, "timeout", limit) or limit, limit)
        if is_destructive(command, ctx.config.destructive_commands) and not (
            ctx.approval and ctx.approval.allows(self.name, command)
        ):
            return ToolResult(
                f"refused: `{command}` is destructive and needs a human's approval, which this call does "
                "not carry; ask the user, or find a non-destructive way",
                is_error=True,
                metadata={"refused": True},
            )
        return await run_command(command, ctx, timeout)


async def run_command(command: str, ctx: ToolContext, timeout: float) -> ToolResult:
    """Run ``command`` under bash in its own process group, inside the OS sandbox where one works,
    with a filtered environment; see :class:`BashTool`."""
    argv, notice = sandboxed_argv(["bash", "-c", command], ctx.workspace, ctx.config)
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=ctx.workspace,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
        env=shell_env(ctx.config),
    )
    assert proc.stdout is not None
    sink = HeadTail(ctx.config.max_tool_output)
    reader = asyncio.create_task(_read_into(proc.stdout, sink))
    cancel = asyncio.create_task(ctx.cancel.wait())
    stopped: str | None = None
    deadline = time.monotonic() + timeout
    try:
        while proc.returncode is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                stopped = "timed_out"
                break
            done, _ = await asyncio.wait({cancel}, timeout=min(POLL, remaining))
            if done:
                stopped = "cancelled"
                break
        if stopped:
            await _terminate(proc)
        orphans = not await _drained(reader)
        if orphans:  # background children still hold the output open
            kill_group(proc.pid)
            await _drained(reader)
    except BaseException:
        kill_group(proc.pid)
        raise
    finally:
        for task in (reader, cancel):
            task.cancel()
    result = _result(command, sink, proc.returncode, stopped, timeout, ctx.config.max_tool_output)
    if notice:
        result.output = f"{notice}\n{result.output}"
    if orphans:
        result.output += (
            "\n[background processes still holding the output were stopped; redirect their output "
            "(e.g. `cmd > log 2>&1 &`) to keep them running]"
        )
    return result


def _result(
    command: str, sink: HeadTail, code: int | None, stopped: str | None, timeout: float, limit: int
) -> ToolResult:
    text = sink.head.decode("utf-8", errors="replace")
    if sink.tail:
        skipped = sink.total - len(sink.head) - len(sink.tail)
        marker = f"\n[… {skipped} bytes …]\n" if skipped > 0 else ""
        text += marker + sink.tail.decode("utf-8", errors="replace")
    text, truncated = cut_middle(text.rstrip("\n"), limit)
    exit_code = -1 if code is None else code
    if stopped == "timed_out":
        status = f"[timed out after {timeout:g}s; the command and its child processes were killed]"
    elif stopped == "cancelled":
        status = "[cancelled by the user; the command and its child processes were killed]"
    else:
        status = f"[exit code: {exit_code}]"
    output = f"{text}\n{status}" if text else f"(no output)\n{status}"
    meta = {
        "exit_code": exit_code,
        "timed_out": stopped == "timed_out",
        "cancelled": stopped == "cancelled",
        "truncated": truncated or sink.total > len(sink.head) + len(sink.tail),
        "command": command,
    }
    return ToolResult(output, is_error=stopped is not None or exit_code != 0, metadata=meta)
