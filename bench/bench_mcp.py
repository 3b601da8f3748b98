"""MCP start-up cost: opening a stage session with two MCP servers configured but unused costs
nothing extra (servers start lazily, at the session's first run); for contrast, what starting
both and listing their tools costs."""

from __future__ import annotations

import asyncio
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from loopcraft.config import Config, McpConfig, McpServerConfig
from loopcraft.engine.agent_runner import AgentTaskRunner
from loopcraft.engine.tasks import TaskRequest

RUNS = 15


def _servers() -> McpConfig:
    exe = shutil.which("mcp-server-time") or str(Path(sys.executable).parent / "mcp-server-time")
    server = McpServerConfig(command=exe, args=["--local-timezone", "UTC"])
    return McpConfig(servers={"time_a": server, "time_b": server})


async def _open_ms(root: Path, config: Config, index: int) -> float:
    runner = AgentTaskRunner(config)
    request = TaskRequest(
        run_id="bench",
        key=f"s{index}",
        name="work",
        workspace=root,
        session_path=root / f"s{index}-{id(config)}.jsonl",
        model="scripted/demo",
        fallback_models=[],
    )
    started = time.perf_counter()
    session = await runner.open(request)
    elapsed = (time.perf_counter() - started) * 1000
    session.close()
    return elapsed


async def _measure(root: Path) -> None:
    plain, with_mcp = Config(model="scripted/demo"), Config(model="scripted/demo", mcp=_servers())
    await _open_ms(root, plain, -1)  # warm imports
    await _open_ms(root, with_mcp, -1)
    base = [await _open_ms(root, plain, i) for i in range(RUNS)]
    mcp = [await _open_ms(root, with_mcp, i) for i in range(RUNS)]
    added = statistics.median(mcp) - statistics.median(base)
    print(
        f"stage session open, 2 MCP servers configured but unused: {added:+.1f} ms "
        f"(median of {RUNS}: {statistics.median(mcp):.1f} vs {statistics.median(base):.1f} ms; target: none)"
    )
    from loopcraft.agent.mcp import McpSession

    starts = []
    for _ in range(3):
        session = McpSession.from_config(with_mcp.mcp.servers, with_mcp.agent, root)
        started = time.perf_counter()
        defs, problems = await session.list_tools()
        starts.append((time.perf_counter() - started) * 1000)
        await session.aclose()
        assert len(defs) == 4 and not problems, problems
    print(
        f"for contrast, starting both and listing their tools: {statistics.median(starts):.0f} ms median of 3"
    )


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        subprocess.run(["git", "init", "-q", str(root)], check=True)
        asyncio.run(_measure(root))


if __name__ == "__main__":
    main()
