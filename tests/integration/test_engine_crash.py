"""Crash-resume with real processes: a 30+ stage workflow (chain, parallel, nested, ctx.tool side
effects) on the paced scripted model is killed with SIGKILL at 20+ points (after model calls,
mid-stream, after and during side effects, after journaled steps) and resumed each time with
``loopcraft resume``. It must complete with the expected output, never repeat a model call whose
answer was already in a stage transcript, and never repeat a side effect whose step was recorded."""

from __future__ import annotations

import json
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from loopcraft.models.scripted import read_call_log
from tests.cli_process import install_workflow, spawn_loopcraft
from tests.engine_helpers import completed_tools, file_lines, journal_rows, kill, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]

ROUNDS = 4
WORKFLOW = """
import time
from pathlib import Path
from loopcraft import Context, workflow


def effect(ctx: Context, name: str):
    def run() -> str:
        key = ctx.idempotency_key
        with open(Path(ctx.workspace) / "tool_starts.log", "a") as fh:
            fh.write(key + "\\n")
        time.sleep(0.25)
        with open(Path(ctx.workspace) / "effects.log", "a") as fh:
            fh.write(key + "\\n")
            fh.flush()
        return name + "-done"
    return run


@workflow(description="nested part")
async def sub(ctx: Context, tag: str) -> str:
    a = await ctx.task(f"sub-a-{tag}", prompt="sub a")
    e = await ctx.tool(f"sub-effect-{tag}", effect(ctx, f"sub-effect-{tag}"))
    b = await ctx.task(f"sub-b-{tag}", prompt="sub b", previous=[a.text])
    return f"{a.text}|{e}|{b.text}"


@workflow(description="crash test workflow")
async def crashy(ctx: Context, rounds: int = 4) -> list:
    out = []
    for r in range(rounds):
        plan = await ctx.task(f"plan-{r}", prompt="plan")
        eff = await ctx.tool(f"effect-{r}", effect(ctx, f"effect-{r}"))
        reviews = await ctx.parallel(*[ctx.spec(f"review-{r}-{i}", prompt="review") for i in range(3)],
                                     concurrency=2)
        chained = await ctx.chain([ctx.spec(f"chain-{r}-{i}", prompt="step") for i in range(2)])
        nested = await ctx.workflow(sub, tag=str(r))
        out.append([plan.text, eff, [x.text for x in reviews], [c.text for c in chained], nested])
    return out
"""


def answer(stage: str) -> str:
    return f"stage {stage} finished its work."


def expected_output() -> list[Any]:
    out = []
    for r in range(ROUNDS):
        nested = f"{answer(f'sub-a-{r}')}|sub-effect-{r}-done|{answer(f'sub-b-{r}')}"
        out.append(
            [
                answer(f"plan-{r}"),
                f"effect-{r}-done",
                [answer(f"review-{r}-{i}") for i in range(3)],
                [answer(f"chain-{r}-{i}") for i in range(2)],
                nested,
            ]
        )
    return out


def script() -> dict[str, Any]:
    stages: dict[str, Any] = {}
    for r in range(ROUNDS):
        stages[f"plan-{r}"] = [
            {"tool_calls": [{"name": "ls", "arguments": {}}]},
            {"text": answer(f"plan-{r}")},
        ]
        for name in [
            *(f"review-{r}-{i}" for i in range(3)),
            *(f"chain-{r}-{i}" for i in range(2)),
            f"sub-a-{r}",
            f"sub-b-{r}",
        ]:
            stages[name] = [{"text": answer(name)}]
    return {"pace": 0.02, "chunk_size": 6, "stages": stages}


class Probe:
    """Reads progress from the files the runs write (call log, effects, journal, transcripts)."""

    def __init__(self, repo: Path, calls: Path) -> None:
        self.repo, self.calls = repo, calls

    def lines(self, name: str) -> list[str]:
        return file_lines(self.repo, name)

    def call_entries(self) -> list[dict[str, Any]]:
        return read_call_log(self.calls) if self.calls.exists() else []

    def db(self, sql: str) -> list[Any]:
        return journal_rows(self.repo, sql)

    def completed_steps(self) -> int:
        rows = self.db("SELECT COUNT(*) FROM steps WHERE status = 'completed'")
        return rows[0][0] if rows else 0

    def completed_tools(self) -> set[str]:
        return completed_tools(self.repo)

    def recorded_turns(self) -> set[tuple[str, int]]:
        """(stage, turn) pairs whose answer is in a stage transcript."""
        found: set[tuple[str, int]] = set()
        for path in (self.repo / ".loopcraft" / "runs").glob("*/stages/*.jsonl"):
            lines = path.read_text().splitlines()
            if not lines:
                continue
            try:
                stage = json.loads(lines[0])["stage"]
            except (ValueError, KeyError):
                continue
            turn = 0
            for line in lines[1:]:
                try:
                    entry = json.loads(line)
                except ValueError:
                    break
                if entry.get("type") == "message" and entry["message"].get("role") == "assistant":
                    found.add((stage, turn))
                    turn += 1
        return found


def test_sigkill_at_many_points_then_resume(git_repo: Path, tmp_path: Path) -> None:
    repo = git_repo
    calls = tmp_path / "calls.jsonl"
    env = install_workflow(repo, WORKFLOW, "crashy", script(), calls)
    probe = Probe(repo, calls)

    kinds = ["after_call", "mid_stream", "after_effect", "mid_tool", "after_step"]
    kills: list[str] = []
    snapshots: list[tuple[int, set[tuple[str, int]], int, set[str]]] = []
    run_id: str | None = None
    final: subprocess.CompletedProcess[str] | None = None
    proc = spawn_loopcraft(repo, env, "run", "crashy", "--model", "scripted/crashy", "--json")
    for attempt in range(40):
        kind = kinds[attempt % len(kinds)]
        measures = {
            "after_call": lambda: len(probe.call_entries()),
            "mid_stream": lambda: len(probe.call_entries()),
            "after_effect": lambda: len(probe.lines("effects.log")),
            "mid_tool": lambda: len(probe.lines("tool_starts.log")),
            "after_step": probe.completed_steps,
        }
        measure = measures[kind]
        alive = wait_until(proc, measure, measure() + 1, timeout=20, pause=0.01)
        if alive and kind == "mid_stream":
            time.sleep(0.05)
        if alive and proc.poll() is None and len(kills) < 22:
            kill(proc)
            kills.append(kind)
            snapshots.append(
                (
                    len(probe.call_entries()),
                    probe.recorded_turns(),
                    len(probe.lines("effects.log")),
                    probe.completed_tools(),
                )
            )
        else:
            out, err = proc.communicate(timeout=120)
            final = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
            if proc.returncode == 0:
                break
            if proc.returncode == 10 and "already completed" in err and run_id is not None:
                # the last kill came after the run's end was recorded: resume refuses, show has it
                shown = spawn_loopcraft(repo, env, "show", run_id, "--json").communicate(timeout=60)[0]
                final = subprocess.CompletedProcess(proc.args, 0, json.dumps(json.loads(shown)["run"]), err)
                break
            raise AssertionError(f"run ended with {proc.returncode}: {err[-2000:]}")
        if run_id is None:
            rows = probe.db("SELECT id FROM runs")
            assert rows, "the run was not recorded before the first kill"
            run_id = rows[0][0]
        proc = spawn_loopcraft(repo, env, "resume", run_id, "--json")
    assert final is not None and final.returncode == 0, final
    assert len(kills) >= 20, kills
    assert all(kills.count(k) >= 3 for k in kinds), Counter(kills)

    result = json.loads(final.stdout)
    assert result["status"] == "completed"
    assert result["output"] == expected_output()

    entries = probe.call_entries()
    for n_before, recorded, _, _ in snapshots:
        repeated = {(e["stage"], e["turn"]) for e in entries[n_before:]} & recorded
        assert not repeated, f"model calls repeated after their answer was recorded: {repeated}"
    per_turn = Counter((e["stage"], e["turn"]) for e in entries)
    assert set(per_turn) == {(s, t) for s, turns in script()["stages"].items() for t in range(len(turns))}

    effects = probe.lines("effects.log")
    for _, _, n_before, done in snapshots:
        again = set(effects[n_before:]) & done
        assert not again, f"side effects repeated after their step was recorded: {again}"
    assert len(set(effects)) == ROUNDS * 2
    assert probe.completed_tools() == set(effects)
