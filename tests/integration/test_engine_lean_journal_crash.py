"""The lean journal under SIGKILL (issue 17): a real ``loopcraft run`` of 300 quick ``ctx.tool``
steps, a fan-out and two scripted stages is killed at several points while steps finish every few
milliseconds (start rows queued, finishes committing) and resumed each time. No step recorded as
completed before a kill runs again, and what readers derive from the journal is whole: the graph
(every node completed, with its times and parent chain), ``loopcraft show --json``, the app's
graph model after a reload, and the stages' agent events; no lifecycle event is stored twice."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from loopcraft.config import Config
from loopcraft.engine.service import Engine
from loopcraft.tui.panes.graph import model_from_graph
from tests.cli_process import install_workflow, spawn_loopcraft
from tests.engine_helpers import completed_tools, file_lines, journal_rows, kill, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

STEPS, BRANCHES = 300, 12
WORKFLOW = f"""
import time
from pathlib import Path
from loopcraft import Context, workflow


def effect(ctx: Context, value: int):
    def run() -> int:
        with open(Path(ctx.workspace) / "effects.log", "a") as fh:
            fh.write(ctx.idempotency_key + "\\n")
        time.sleep(0.004)
        return value
    return run


@workflow(description="lean journal crash test")
async def lean(ctx: Context) -> int:
    await ctx.task("plan", prompt="plan")
    total = 0
    for i in range({STEPS}):
        total += await ctx.tool(f"t{{i}}", effect(ctx, 1))
    done = await ctx.parallel(*[ctx.tool(f"p{{i}}", effect(ctx, 1)) for i in range({BRANCHES})],
                              concurrency=4)
    await ctx.task("report", prompt="report")
    return total + sum(done)
"""
SCRIPT = {
    "pace": 0.01,
    "chunk_size": 8,
    "stages": {"plan": [{"text": "planned"}], "report": [{"text": "done"}]},
}


def _effects(repo: Path) -> list[str]:
    return file_lines(repo, "effects.log")


def test_sigkill_mid_run_repeats_no_completed_step_and_loses_nothing_a_reader_needs(
    git_repo: Path, tmp_path: Path
) -> None:
    repo = git_repo
    env = install_workflow(repo, WORKFLOW, "lean", SCRIPT, tmp_path / "calls.jsonl")
    snapshots: list[tuple[int, set[str]]] = []
    proc = spawn_loopcraft(repo, env, "run", "lean", "--model", "scripted/lean", "--json")
    run_id = None
    for target in (40, 120, 200, 290, STEPS + 6):
        assert wait_until(proc, lambda: len(_effects(repo)), target, timeout=60, pause=0.002), (
            proc.communicate()
        )
        kill(proc)
        snapshots.append((len(_effects(repo)), completed_tools(repo)))
        run_id = run_id or journal_rows(repo, "SELECT id FROM runs")[0][0]
        proc = spawn_loopcraft(repo, env, "resume", run_id, "--json")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-2000:]
    assert json.loads(out)["output"] == STEPS + BRANCHES
    assert len(snapshots) == 5 and all(done for _, done in snapshots)

    effects = _effects(repo)
    for before, done in snapshots:
        again = set(effects[before:]) & done
        assert not again, f"steps completed before a kill ran again: {sorted(again)[:5]}"
    assert len(set(effects)) == STEPS + BRANCHES
    assert completed_tools(repo) == set(effects)

    stored = {t for (t,) in journal_rows(repo, "SELECT DISTINCT type FROM events")}
    assert "stage_event" in stored  # the agents' events, which no step row holds
    assert not stored & {"run_status", "stage_added", "stage_status", "usage"}

    shown = subprocess.run(
        [sys.executable, "-m", "loopcraft", "show", run_id, "--json"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
    )
    assert shown.returncode == 0, shown.stderr
    nodes = json.loads(shown.stdout)["graph"]["nodes"]
    assert json.loads(shown.stdout)["run"]["status"] == "completed"
    _check_nodes(nodes)

    graph, model = asyncio.run(_reload(repo, run_id))
    tools = [n for n in graph.walk() if n.kind == "tool" and n.name.startswith("t")]
    assert [n.name for n in tools] == [f"t{i}" for i in range(STEPS)]
    assert all(n.started and n.finished and n.finished >= n.started for n in tools)
    assert all(tools[i].parents == [tools[i - 1].key] for i in range(1, STEPS))  # the chain is whole
    assert len(model.nodes) == len(list(graph.walk()))
    assert {node.status for node in model.nodes.values()} == {"completed"}


def _check_nodes(nodes: list[dict[str, Any]]) -> None:
    def walk(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [n for item in items for n in (item, *walk(item.get("children") or []))]

    every = walk(nodes)
    names = {n["name"] for n in every}
    assert {"plan", "report", *(f"t{i}" for i in range(STEPS)), *(f"p{i}" for i in range(BRANCHES))} <= names
    assert {n["status"] for n in every} == {"completed"}


async def _reload(repo: Path, run_id: str) -> tuple[Any, Any]:
    """What the app shows after a reload: the engine's graph of the run, as the graph pane's model."""
    engine = await Engine.open(repo, Config(model="scripted/lean"))
    try:
        graph = await engine.graph(run_id)
    finally:
        await engine.close()
    return graph, model_from_graph(run_id, graph)
