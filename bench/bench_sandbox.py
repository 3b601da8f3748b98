"""Sandbox figure: the added latency of a ``bash`` call inside bubblewrap (``agent.sandbox =
"workspace-write"``) over the same call unsandboxed (target < 30 ms), median of repeated
``true`` calls through the real BashTool and containment layer."""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

CALLS = 40


async def _median_ms(workspace: Path, sandbox: str) -> float:
    from loopcraft.agent.containment import run_contained
    from loopcraft.agent.tools.base import ToolContext
    from loopcraft.agent.tools.bash import BashTool
    from loopcraft.config import AgentConfig

    ctx = ToolContext(workspace, AgentConfig(sandbox=sandbox))  # type: ignore[arg-type]
    tool = BashTool()
    times = []
    for _ in range(CALLS):
        started = time.perf_counter()
        result = await run_contained(tool, {"command": "true"}, ctx)
        times.append(time.perf_counter() - started)
        assert not result.is_error, result.output
    return statistics.median(times) * 1000


def _spawn_ms(workspace: Path, sandbox: str) -> float:
    """The process start-to-exit alone (the tool's 50 ms exit poll hides a few ms above)."""
    import subprocess

    from loopcraft.agent.sandbox import sandboxed_argv
    from loopcraft.config import AgentConfig

    argv, _ = sandboxed_argv(["bash", "-c", "true"], workspace, AgentConfig(sandbox=sandbox))  # type: ignore[arg-type]
    times = []
    for _ in range(CALLS):
        started = time.perf_counter()
        subprocess.run(argv, cwd=workspace, check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main() -> None:
    from loopcraft.agent.sandbox import bwrap_path

    if bwrap_path() is None:
        print("   sandbox: bubblewrap not available here; nothing to measure")
        return
    with tempfile.TemporaryDirectory() as tmp:
        workspace = Path(tmp)
        (workspace / ".git").mkdir()
        plain = asyncio.run(_median_ms(workspace, "off"))
        boxed = asyncio.run(_median_ms(workspace, "workspace-write"))
        raw_plain = _spawn_ms(workspace, "off")
        raw_boxed = _spawn_ms(workspace, "workspace-write")
    print(f"   bash `true` unsandboxed: {plain:.1f} ms median of {CALLS}")
    print(f"   bash `true` in bwrap:    {boxed:.1f} ms median of {CALLS}")
    print(f"   added by the sandbox:    {boxed - plain:.1f} ms per tool call (target < 30 ms)")
    print(
        f"   process alone: {raw_plain:.1f} ms plain, {raw_boxed:.1f} ms in bwrap: +{raw_boxed - raw_plain:.1f} ms"
    )


if __name__ == "__main__":
    main()
