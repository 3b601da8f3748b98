"""Loop benchmarks: the engine's overhead per ``goal`` turn on the scripted model — a worker (a
write and a receipt), the commit, the diff, a check (``true``) and three reviewers, in a real git
repository — with the model's own time taken out (target < 50 ms per turn)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("LOOPCRAFT_TRUST", "1")

from bench.bench_agent import _DirectScriptClient
from loopcraft.config import Config
from loopcraft.engine.agent_runner import AgentTaskRunner
from loopcraft.engine.service import Engine

TURNS = 8


class _TimedClient(_DirectScriptClient):
    """The in-process scripted model, timing its own calls (the part that is not the engine's)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.calls = 0

    async def complete(self, request: Any, on_delta: Any = None) -> Any:
        t0 = time.perf_counter()
        try:
            return await super().complete(request, on_delta)
        finally:
            self.seconds += time.perf_counter() - t0
            self.calls += 1


def _script(turns: int) -> None:
    from loopcraft.models.scripted import Script, register_script

    worker: list[dict[str, Any]] = []
    stages: dict[str, Any] = {"worker": worker}
    for turn in range(1, turns + 1):
        write = {"name": "write", "arguments": {"path": "feature.txt", "content": f"v{turn}\n"}}
        worker += [{"tool_calls": [write]}, {"json": {"changed": ["feature.txt"], "remaining": []}}]
        finding = {"title": f"problem {turn}", "priority": 1}  # a new blocker each turn: never "blocked"
        stages[f"t{turn}-reviewer-*"] = [{"json": {"approve": False, "findings": [finding]}}]
    register_script("bench-goal", Script.model_validate({"stages": stages}))


def _repo(path: Path) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b"}
    env |= {"GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@b"}
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True, env=env)
    (path / "README.md").write_text("# bench\n")
    subprocess.run(["git", "-C", str(path), "add", "-A"], check=True, env=env)
    subprocess.run(["git", "-C", str(path), "commit", "-qm", "init"], check=True, env=env)


async def goal_turns(root: Path, turns: int) -> dict[str, float]:
    _repo(root)
    _script(turns)
    config = Config(model="scripted/bench-goal")
    client = _TimedClient()
    engine = await Engine.open(root, config, runner=AgentTaskRunner(config, client=client))
    inputs = {"objective": "bench", "check": "true", "max_turns": turns, "merge": "no"}
    t0 = time.perf_counter()
    info = await engine.run("goal", inputs)
    wall = time.perf_counter() - t0
    await engine.close()
    assert info.status == "needs_human", info.error
    return {
        "wall_s": wall,
        "model_s": client.seconds,
        "calls": client.calls,
        "per_turn_ms": (wall - client.seconds) / turns * 1000,
    }


def _run(turns: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        cwd = os.getcwd()
        os.chdir(tmp)
        try:
            return asyncio.run(goal_turns(Path(tmp) / "repo", turns))
        finally:
            os.chdir(cwd)


def main() -> None:
    _run(1)  # warm-up: imports and first-use caches are not a turn's cost
    result = _run(TURNS)
    print(f"goal_turns: {TURNS}, model calls: {result['calls']:.0f}, wall {result['wall_s']:.2f} s")
    print(
        f"goal_engine_overhead_per_turn_ms (everything but the model, target < 50): {result['per_turn_ms']:.1f}"
    )


if __name__ == "__main__":
    main()
