"""Issue 16, items 6 and 7, on the real agent with the scripted model or a loopback provider: a budget
at 80 % gives one notice (not repeated after a resume); a stage whose model hangs is marked stalled
after a shortened ``engine.stall_after`` (in events, ``show``'s graph) and cleared when it answers;
long runs post heartbeats; a 429 with a reset time waits (the deadline journaled, kept across a
crash) and carries on by itself; without one the run ends blocked naming the limit and the model."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from loopcraft import Context, workflow
from loopcraft.config import BudgetConfig, Config, EngineConfig, ModelOptions, NotifyConfig, RetryConfig
from loopcraft.engine.activity import load_waits
from loopcraft.engine.events import BudgetNotice, Heartbeat, StageFlag
from loopcraft.engine.service import Engine
from loopcraft.headless import graph_lines
from tests.engine_helpers import collect_events, flag_raised, watched_engine
from tests.fakes import OpenAIServer, openai_server
from tests.integration.test_agent_support import scripted_model, tool_call

__all__ = ["openai_server"]

TURN = {"input": 200, "output": 100}  # 300 tokens a model turn
HTTP_MODEL = "openai_compatible/test-model"


@workflow(name="spend")
async def spend(ctx: Context) -> str:
    first = await ctx.task("work", prompt="work")
    await ctx.ui.confirm("Go on?")
    return first.text


@workflow(name="one")
async def one(ctx: Context) -> str:
    return (await ctx.task("work", prompt="work")).text


async def test_a_budget_at_80_percent_gives_one_notice_kept_across_a_resume(git_repo: Path) -> None:
    work = [{"tool_calls": [tool_call("ls", path=f"d{n}")], "usage": TURN} for n in range(2)]
    model = scripted_model([*work, {"text": "done", "usage": TURN}])  # 900 of 1,000 tokens
    engine, seen = await watched_engine(
        git_repo, Config(model=model, budget=BudgetConfig(warn_at=0.8)), spend
    )
    engine.stop_at_gates = True
    info = await engine.run("spend", {}, budget={"tokens": 1000})
    assert info.status == "needs_human", info.error
    notices = [e for e in seen if isinstance(e, BudgetNotice)]
    assert len(notices) == 1 and notices[0].limit == "tokens=1000"
    assert "90% of its tokens budget (900 of 1,000)" in notices[0].line

    prompt = (await engine.prompts(info.id))[0]
    await engine.answer(info.id, prompt.id, True)
    engine.stop_at_gates = False
    resumed = await engine.resume(info.id)  # the replay charges the 900 tokens again: no new notice
    assert resumed.status == "completed", resumed.error
    assert len([e for e in seen if isinstance(e, BudgetNotice)]) == 1
    journaled = [e for e in await engine.events(info.id) if e["type"] == "budget_notice"]
    assert len(journaled) == 1
    await engine.close()


async def test_a_hung_model_is_marked_stalled_then_cleared_and_shown(git_repo: Path) -> None:
    model = scripted_model([{"delay": 1.2, "text": "finally"}])
    config = Config(model=model, engine=EngineConfig(stall_after=0.3))
    engine, seen = await watched_engine(git_repo, config, one)
    run_id = await engine.start("one", {})
    stalled = await flag_raised(seen, "stalled", polls=100)
    assert "no model or tool activity" in stalled.detail and "model call (turn 1)" in stalled.detail
    await asyncio.sleep(0.15)  # the flag reaches the journal
    _, graph = await engine.live_view(run_id)
    node = graph.find("work")
    assert node is not None and node.flag == "stalled"
    text = "\n".join(graph_lines(graph, "one"))
    assert "running, stalled" in text and "last: model call (turn 1)" in text

    info = await engine.wait(run_id)
    assert info.status == "completed" and info.output == "finally"
    flags = [e.flag for e in seen if isinstance(e, StageFlag)]
    assert flags == ["stalled", None]  # once, and cleared by the answer
    _, graph = await engine.live_view(run_id)
    node = graph.find("work")
    assert node is not None and node.flag is None and node.turns == 1
    await engine.close()


async def test_a_long_run_posts_heartbeats(git_repo: Path) -> None:
    model = scripted_model([{"delay": 1.0, "text": "done", "usage": TURN}])
    config = Config(model=model, notify=NotifyConfig(heartbeat_minutes=0.005))  # every 0.3 s
    engine, seen = await watched_engine(git_repo, config, one)
    info = await engine.run("one", {})
    assert info.status == "completed", info.error
    beats = [e for e in seen if isinstance(e, Heartbeat)]
    assert beats and "still running" in beats[0].line and "work turn 1" in beats[0].line
    assert "last activity" in beats[0].line
    assert not [e for e in await engine.events(info.id) if e["type"] == "heartbeat"]  # never journaled
    await engine.close()


def _http_config(server: OpenAIServer, **engine: float) -> Config:
    return Config(
        model=HTTP_MODEL,
        models={HTTP_MODEL: ModelOptions(api_base=server.base_url)},
        retry=RetryConfig(max_retries=0, base_delay=0.01),
        engine=EngineConfig(**engine),
    )


async def test_a_429_with_retry_after_waits_and_carries_on(
    git_repo: Path, openai_server: OpenAIServer
) -> None:
    openai_server.fail(429, retry_after=2).respond(text="after the wait")
    engine, seen = await watched_engine(git_repo, _http_config(openai_server), one)
    started = time.time()
    run_id = await engine.start("one", {})
    waiting = await flag_raised(seen, "waiting")
    assert waiting.until is not None and 1.5 <= waiting.until - started <= 3.5
    assert waiting.detail == f"rate limit on {HTTP_MODEL}"
    _, graph = await engine.live_view(run_id)
    assert "waiting until" in "\n".join(graph_lines(graph, "one"))

    info = await engine.wait(run_id)
    assert info.status == "completed" and info.output == "after the wait", info.error
    assert openai_server.times[1] - openai_server.times[0] >= 1.8  # the retry came at the reset, not before
    assert [e.flag for e in seen if isinstance(e, StageFlag)] == ["waiting", None]
    await engine.close()


async def test_a_429_with_openai_reset_headers_waits_for_the_exhausted_limit(
    git_repo: Path, openai_server: OpenAIServer
) -> None:
    resets = {
        "x-ratelimit-remaining-requests": "99",
        "x-ratelimit-reset-requests": "20ms",
        "x-ratelimit-remaining-tokens": "0",
        "x-ratelimit-reset-tokens": "1.5s",
    }
    openai_server.fail(429, headers=resets).respond(text="tokens are back")
    engine, seen = await watched_engine(git_repo, _http_config(openai_server), one)
    info = await engine.run("one", {})
    assert info.status == "completed" and info.output == "tokens are back", info.error
    assert [e.flag for e in seen if isinstance(e, StageFlag)] == ["waiting", None]
    assert openai_server.times[1] - openai_server.times[0] >= 1.3  # the tokens' reset, not the requests'
    await engine.close()


async def test_a_429_without_reset_time_ends_blocked_naming_limit_and_model(
    git_repo: Path, openai_server: OpenAIServer
) -> None:
    openai_server.fail(429)
    engine = await Engine.open(git_repo, _http_config(openai_server))
    engine.register(one)
    info = await engine.run("one", {})
    assert info.status == "blocked", info.error
    assert info.error is not None
    assert f"rate limit on {HTTP_MODEL} (no reset time given)" in info.error
    await engine.close()


async def test_a_wait_past_the_seconds_budget_stops_at_once(
    git_repo: Path, openai_server: OpenAIServer
) -> None:
    openai_server.fail(429, retry_after=30)
    engine = await Engine.open(git_repo, _http_config(openai_server))
    engine.register(one)
    started = time.monotonic()
    info = await engine.run("one", {}, budget={"seconds": 5})
    assert time.monotonic() - started < 4  # never sleeps into the budget's end
    assert info.status == "budget_exceeded", info.error
    assert info.error is not None and "after the run's seconds budget runs out" in info.error
    await engine.close()


async def test_the_wait_deadline_is_journaled_and_kept_across_a_crash(git_repo: Path) -> None:
    model = scripted_model([{"faults": [{"kind": "rate_limit", "retry_after": 1.5}], "text": "later"}])
    config = Config(model=model, retry=RetryConfig(max_retries=0))
    engine, seen = await watched_engine(git_repo, config, one)
    run_id = await engine.start("one", {})
    first = await flag_raised(seen, "waiting")
    await engine.close()  # the process goes away mid-wait

    engine = await Engine.open(git_repo, config)
    engine.register(one)
    waits = await load_waits(engine.journal, run_id)
    assert list(waits.values()) == [(pytest.approx(first.until), f"rate limit on {model}")]
    seen = collect_events(engine)
    info = await engine.resume(run_id)
    assert info.status == "completed" and info.output == "later", info.error
    again = [e for e in seen if isinstance(e, StageFlag) and e.flag == "waiting"]
    assert again and again[0].until == pytest.approx(first.until)  # the same deadline, not a new one
    assert time.time() >= (first.until or 0)
    await engine.close()
