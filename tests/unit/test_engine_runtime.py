"""The engine's step protocol on a real SQLite journal with a fake task runner: primitives,
replay, non-determinism, recorded errors, graph, outputs, human gates."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from loopcraft import Context, workflow
from loopcraft.engine.control import RunStateError
from loopcraft.engine.definition import Workflow
from loopcraft.engine.events import is_persisted
from loopcraft.engine.graph import load_graph
from loopcraft.engine.results import RunInfo
from loopcraft.engine.service import Engine
from tests.engine_fakes import FakeRunner, open_engine

TOOL_CALLS: list[str] = []
FLAGS: dict[str, object] = {}


@pytest.fixture(autouse=True)
def _reset() -> None:
    TOOL_CALLS.clear()
    FLAGS.clear()


def _crash_until(flag: str) -> None:
    """Fail the workflow until the test sets ``FLAGS[flag]``: stands in for a crash before a resume."""
    if not FLAGS.get(flag):
        raise RuntimeError(f"crash until {flag}")


async def _fail_then_resume(root: Path, wf: Workflow, flag: str) -> tuple[Engine, RunInfo, RunInfo]:
    """Run ``wf`` once (it fails while ``FLAGS[flag]`` is unset), set the flag and resume that run."""
    engine = await open_engine(root)
    engine.register(wf)
    first = await engine.run(wf.name, {})
    FLAGS[flag] = True
    return engine, first, await engine.resume(first.id)


@workflow(description="inner")
async def inner(ctx: Context, topic: str) -> str:
    r = await ctx.task("inner-task", prompt=f"about {topic}")
    return r.text.upper()


@workflow(description="many kinds of steps", name="mixed")
async def mixed(ctx: Context, n: int = 2) -> dict:
    first = await ctx.task("scout", prompt="look")

    def side() -> str:
        TOOL_CALLS.append(ctx.idempotency_key)
        return "wrote"

    tool_out = await ctx.tool("side", side)
    par = await ctx.parallel(*[ctx.spec(f"review-{i}", prompt="review") for i in range(n)])
    gathered = await asyncio.gather(ctx.task("g1"), ctx.task("g2"))
    chained = await ctx.chain([ctx.spec("c1", prompt="one"), ctx.spec("c2", prompt="two")])
    nested = await ctx.workflow(inner, topic="x")
    if FLAGS.get("crash"):
        raise RuntimeError("boom after steps")
    final = await ctx.task("synth", previous=[r.text for r in par])
    return {
        "first": first.text,
        "tool": tool_out,
        "par": [r.text for r in par],
        "gathered": [g.text for g in gathered],
        "chain": [c.text for c in chained],
        "nested": nested,
        "final": final.text,
    }


async def test_primitives_outputs_and_graph(git_repo: Path) -> None:
    runner = FakeRunner()
    engine = await open_engine(git_repo, runner)
    engine.register(mixed, inner)
    info = await engine.run("mixed", {"n": 2})
    assert info.status == "completed", info.error
    assert info.output["par"] == ["ok:review-0", "ok:review-1"]
    assert info.output["nested"] == "OK:INNER-TASK"
    assert info.output["tool"] == "wrote"
    assert [f"{info.id}:root/1:tool:side"] == TOOL_CALLS
    # chain: the second stage is given the first one's output
    c2_prompt = dict(runner.calls)["c2"]
    assert c2_prompt is not None and "ok:c1" in c2_prompt
    # synthesis got the previous outputs
    assert "ok:review-1" in (dict(runner.calls)["synth"] or "")
    assert info.usage.input_tokens == 10 * len(runner.calls)
    graph = await load_graph(engine.journal, info.id)
    by_name = {n.name: n for n in graph.walk()}
    assert by_name["review-0"].parents == by_name["review-1"].parents == [by_name["side"].key]
    assert sorted(by_name["g1"].parents) == sorted(by_name["g2"].parents)
    assert by_name["c1"].parents == sorted([by_name["g1"].key, by_name["g2"].key]) or set(
        by_name["c1"].parents
    ) == {by_name["g1"].key, by_name["g2"].key}
    assert by_name["c2"].parents == [by_name["c1"].key]
    wf_node = by_name["inner"]
    assert [c.name for c in wf_node.children] == ["inner-task"]
    assert set(by_name["synth"].parents) == {wf_node.key}
    assert wf_node.tokens == 15
    await engine.close()


async def test_resume_replays_completed_steps_without_running_them(git_repo: Path) -> None:
    runner = FakeRunner()
    engine = await open_engine(git_repo, runner)
    engine.register(mixed, inner)
    FLAGS["crash"] = True
    info = await engine.run("mixed", {})
    assert info.status == "failed"
    assert "boom after steps" in (info.error or "")
    calls_before = len(runner.calls)
    FLAGS.clear()
    info2 = await engine.resume(info.id)
    assert info2.status == "completed", info2.error
    assert runner.names()[calls_before:] == ["synth"]  # only the unrecorded step ran
    assert len(TOOL_CALLS) == 1
    with pytest.raises(RunStateError, match="already completed"):  # nothing to resume: exit 10
        await engine.resume(info.id)
    assert (await engine.get_run(info.id)).output == info2.output
    await engine.close()


async def test_non_determinism_is_reported(git_repo: Path) -> None:
    @workflow(name="changing")
    async def changing(ctx: Context) -> str:
        await ctx.task("a")
        await ctx.task("b" if not FLAGS.get("changed") else "renamed")
        _crash_until("changed")
        return "done"

    engine, first, info = await _fail_then_resume(git_repo, changing, "changed")
    assert first.status == "failed" and "crash until changed" in (first.error or "")
    assert info.status == "failed"
    assert "non-deterministic" in (info.error or "")
    assert "'b'" in (info.error or "") and "'renamed'" in (info.error or "")
    await engine.close()


async def test_recorded_error_replays_without_running(git_repo: Path) -> None:
    calls: list[bool] = []  # one entry per call of the tool: was the resume flag set by then?

    @workflow(name="fails")
    async def fails(ctx: Context) -> str:
        def broken() -> None:
            calls.append(bool(FLAGS.get("pass")))
            raise ValueError("disk full")

        try:
            await ctx.tool("write", broken, retries=1)
        except Exception as exc:  # the workflow sees the same error every time
            FLAGS.setdefault("seen", []).append(str(exc))  # type: ignore[union-attr]
        await ctx.task("after")
        _crash_until("pass")
        return "ok"

    engine, first, info = await _fail_then_resume(git_repo, fails, "pass")
    assert first.status == "failed"
    assert info.status == "completed"
    assert calls == [False, False]  # one retry in the first run, never re-run by the resume
    seen = FLAGS["seen"]
    assert isinstance(seen, list) and len(seen) == 2 and seen[0] == seen[1] and "disk full" in seen[0]
    await engine.close()


class Verdict(BaseModel):
    verdict: str
    issues: list[str]


@workflow(name="structured")
async def structured(ctx: Context) -> str:
    r = await ctx.task("judge", schema=Verdict)
    assert isinstance(r.structured, Verdict)
    return r.structured.verdict


async def test_structured_output_valid_after_correction(git_repo: Path) -> None:
    runner = FakeRunner({"judge": ["not json", '```json\n{"verdict": "approve", "issues": []}\n```']})
    engine = await open_engine(git_repo, runner)
    engine.register(structured)
    info = await engine.run("structured", {})
    assert info.status == "completed" and info.output == "approve"
    assert runner.calls[1][1] is not None and runner.calls[1][1].startswith(
        "Your answer did not match the schema"
    )
    await engine.close()


async def test_structured_output_invalid_three_times_fails_closed(git_repo: Path) -> None:
    runner = FakeRunner({"judge": ['{"verdict": 3}']})
    engine = await open_engine(git_repo, runner)
    engine.register(structured)
    info = await engine.run("structured", {})
    assert info.status == "failed"
    assert "no valid structured output after 3 corrections" in (info.error or "")
    assert len(runner.calls) == 4
    graph = await engine.graph(info.id)
    assert graph.nodes[0].status == "failed"
    await engine.close()


async def test_outputs_reads_and_max_output(git_repo: Path) -> None:
    @workflow(name="files")
    async def files(ctx: Context) -> list[str]:
        a = await ctx.task("scout", output="scout.md", output_mode="file-only")
        b = await ctx.task("reader", reads=["scout.md"])
        c = await ctx.task("big", max_output=10)
        try:
            await ctx.task("missing", reads=["nope.md"])
        except Exception as exc:
            return [a.text, b.text, c.text, str(exc)]
        return []

    runner = FakeRunner({"scout": ["SCOUT REPORT " * 5], "big": ["x" * 50]})
    engine = await open_engine(git_repo, runner)
    engine.register(files)
    info = await engine.run("files", {})
    assert info.status == "completed", info.error
    a, _b, c, err = info.output
    path = git_repo / ".loopcraft" / "runs" / info.id / "artifacts" / "scout.md"
    assert path.read_text() == "SCOUT REPORT " * 5
    assert str(path) in a and "SCOUT REPORT" not in a
    assert str(path) in (dict(runner.calls)["reader"] or "")
    assert c.startswith("x" * 10) and "output cut at 10 of 50" in c
    assert "missing" not in runner.names()  # failed before any model call
    assert "nope.md" in err
    await engine.close()


async def test_exit_status_and_depth_limit(git_repo: Path) -> None:
    @workflow(name="gate")
    async def gate(ctx: Context) -> str:
        ctx.exit("needs_human", "a person must decide")

    @workflow(name="recursive")
    async def recursive(ctx: Context, n: int = 0) -> int:
        return await ctx.workflow("recursive", n=n + 1)

    engine = await open_engine(git_repo)
    engine.register(gate, recursive)
    info = await engine.run("gate", {})
    assert (info.status, info.error, info.exit_code) == ("needs_human", "a person must decide", 5)
    info = await engine.run("recursive", {})
    assert info.status == "failed" and "maximum depth" in (info.error or "")
    await engine.close()


async def test_labelled_nested_calls_are_named_by_their_label(git_repo: Path) -> None:
    @workflow(name="turn")
    async def turn(ctx: Context, n: int = 0) -> int:
        await ctx.task("work", prompt=f"turn {n}")
        return n + 1

    @workflow(name="looper")
    async def looper(ctx: Context) -> int:
        n = 0
        for i in (1, 2):
            n = await ctx.workflow(turn, label=f"turn-{i}", n=n)
        return n

    engine = await open_engine(git_repo)
    engine.register(turn, looper)
    info = await engine.run("looper", {})
    assert info.status == "completed" and info.output == 2
    graph = await load_graph(engine.journal, info.id)
    assert [n.name for n in graph.nodes] == ["turn-1", "turn-2"]
    assert [c.name for c in graph.nodes[1].children] == ["work"]
    await engine.close()


async def test_human_gate_is_durable(git_repo: Path) -> None:
    @workflow(name="ask")
    async def ask(ctx: Context) -> str:
        ok = await ctx.ui.confirm("ship it?")
        choice = await ctx.ui.select("which?", ["red", "blue"])
        return f"{ok}-{choice}"

    engine = await open_engine(git_repo)
    engine.register(ask)
    run_id = await engine.start("ask", {})
    for _ in range(100):
        if await engine.prompts(run_id):
            break
        await asyncio.sleep(0.02)
    assert (await engine.get_run(run_id)).status == "awaiting_input"
    assert await engine.answer(run_id, None, "yes") is True
    for _ in range(100):
        pending = await engine.prompts(run_id)
        if pending:
            break
        await asyncio.sleep(0.02)
    assert pending[0].options == ["red", "blue"]
    assert await engine.answer(run_id, pending[0].id, "2") == "blue"
    info = await engine.wait(run_id)
    assert info.output == "True-blue"
    events = [e["type"] for e in await engine.events(run_id)]
    assert events.count("prompt_pending") == 2 and events.count("prompt_answered") == 2
    await engine.close()


async def test_events_published_and_persisted(git_repo: Path) -> None:
    engine = await open_engine(git_repo)
    engine.register(inner)
    published: list[Any] = []
    engine.bus.subscribe(published.append)
    info = await engine.run("inner", {"topic": "t"})
    seen = [e.type for e in published]
    assert seen[0] == "run_status" and "stage_added" in seen and seen[-1] == "run_status"
    stored = [e["type"] for e in await engine.events(info.id)]
    # lifecycle events are derived from the run and step rows (the graph), never stored twice
    assert stored == [e.type for e in published if is_persisted(e)]
    assert not {"run_status", "stage_added", "stage_status", "usage"} & set(stored)
    await engine.close()


async def test_long_lived_stage_prompts_are_durable(git_repo: Path) -> None:
    @workflow(name="live")
    async def live(ctx: Context) -> list[str]:
        stage = ctx.stage("helper")
        first = await stage.prompt("one")
        second = await stage.prompt("two")
        if not FLAGS.get("pass"):
            raise RuntimeError("crash")
        return [first.text, second.text]

    runner = FakeRunner({"helper": ["first answer", "second answer"]})
    engine = await open_engine(git_repo, runner)
    engine.register(live)
    info = await engine.run("live", {})
    assert runner.calls == [("helper", "one"), ("helper", "two")]
    assert len(runner.requests) == 1  # one session for every prompt of the stage
    FLAGS["pass"] = True
    info = await engine.resume(info.id)
    assert info.output == ["first answer", "second answer"]
    assert len(runner.calls) == 2  # replayed, not re-asked
    await engine.close()


def test_builtin_hello_is_discovered(git_repo: Path) -> None:
    from loopcraft.engine.discovery import discover

    hello = discover(git_repo).get("hello")
    assert hello.input_names == ["name"] and hello.source is not None and hello.source.name == "hello.py"
