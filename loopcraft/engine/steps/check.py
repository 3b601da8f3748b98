"""The ``check`` step: an external check (a shell command) run in a workspace, as a durable step.

Records the exit code, the duration and the output (its tail inline, the whole output as an
artifact). A command that runs past its timeout is killed (its whole process group) and is a
failed check, never a pass. Replay returns the recorded :class:`CheckResult` without running it.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from loopcraft.agent.containment import redact, secret_values
from loopcraft.agent.tools.bash import kill_group, shell_exited
from loopcraft.engine.artifacts import safe_key
from loopcraft.engine.journal import StepRow
from loopcraft.engine.steps.protocol import Runtime, Scope, run_step
from loopcraft.engine.verify import CheckResult

TAIL_CHARS = 4000
DRAIN_SECONDS = 2.0  # how long output still arriving after the shell exited is read


async def run_check(
    rt: Runtime, scope: Scope, pos: str, key: str, name: str, cmd: str, timeout: float, cwd: Path | None
) -> CheckResult:
    async def body(row: StepRow) -> CheckResult:
        row.attempts += 1
        started = time.monotonic()
        code, output, timed_out = await _run_shell(cmd, cwd or rt.workspace, timeout)
        output = redact(output, secret_values(rt.config.agent))  # the journal and reviewers read it
        duration = time.monotonic() - started
        path = rt.files.artifacts_dir / f"check-{safe_key(key)}.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(output, encoding="utf-8")
        await rt.journal.add_artifact(rt.run_id, key, path.name, str(path), path.stat().st_size)
        tail = output[-TAIL_CHARS:]
        if timed_out:
            tail += f"\n[loopcraft: check {name!r} timed out after {timeout:g}s and was killed]"
        return CheckResult(
            name=name,
            cmd=cmd,
            passed=code == 0 and not timed_out,
            code=None if timed_out else code,
            output=tail,
            artifact=str(path),
            duration=round(duration, 3),
            timed_out=timed_out,
        )

    result: CheckResult = await run_step(
        rt,
        scope,
        pos,
        key,
        "check",
        name,
        body,
        encode=lambda r: r.model_dump(mode="json"),
        decode=CheckResult.model_validate,
    )
    return result


async def _run_shell(cmd: str, cwd: Path, timeout: float) -> tuple[int, str, bool]:
    """(exit code, combined output, timed out) of ``cmd`` run by the shell in ``cwd``.

    Waits on the shell's exit, not on the end of its output: a background child that keeps the
    pipe open neither hangs the check nor outlives it (its whole process group is killed)."""
    proc = await asyncio.create_subprocess_shell(
        cmd,
        cwd=str(cwd),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )
    assert proc.stdout is not None
    reader = asyncio.create_task(proc.stdout.read())
    try:
        timed_out = not await shell_exited(proc, timeout)
    except BaseException:  # cancelled (kill, crash): never leave the check running
        kill_group(proc.pid)
        reader.cancel()
        raise
    kill_group(proc.pid)  # the shell is done (or out of time): nothing it started outlives it
    done, _ = await asyncio.wait({reader}, timeout=DRAIN_SECONDS)
    out = reader.result() if done else b""
    if not done:
        reader.cancel()
    await shell_exited(proc, DRAIN_SECONDS)
    code = proc.returncode if proc.returncode is not None else -1
    return code, out.decode("utf-8", "replace"), timed_out
