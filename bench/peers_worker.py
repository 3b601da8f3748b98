"""One measurement of one system in a fresh process, for ``python -m bench peers``.

``python -m bench.peers_worker SYSTEM MEASURE DIR [STEPS]`` prints one JSON object on its last line.
SYSTEM is ``loopcraft``, ``loopcraft-full`` (synchronous=FULL), ``dbos``, ``langgraph-graph`` or
``langgraph-func``; MEASURE is ``steps`` (no-op step latency, total and bytes per step),
``record`` (STEPS steps, then the process kills itself as the next step starts), ``resume``
(finish the run ``record`` left), ``fanout`` (200 x 20 ms at concurrency 50) or ``cold`` (import
and open the store). Every step body appends a line to ``DIR/ran.log``, so re-executed steps can
be counted after a crash. Not a module of the benchmark suite (it does not start with ``bench_``).
"""

from __future__ import annotations

import time

T0 = time.perf_counter()

import asyncio  # noqa: E402
import json  # noqa: E402
import operator  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import sqlite3  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
from collections.abc import Awaitable, Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Annotated, Any, TypedDict  # noqa: E402

FANOUT, FANOUT_CONCURRENCY, FANOUT_SLEEP = 200, 50, 0.02
STEPS = 1_000


class Probe:
    """What a step body does: log that it ran, and kill the process when told to (the crash)."""

    def __init__(self, folder: Path, kill_at: int | None) -> None:
        self.fd = os.open(folder / "ran.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self.kill_at = kill_at
        self.times: list[float] = []

    def ran(self, index: int) -> None:
        if index == self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)  # right after step ``index`` - 1 finished
        os.write(self.fd, f"{index}\n".encode())


def _pages(path: Path) -> int:
    """The store's logical size in bytes (committed pages, the WAL's included)."""
    with sqlite3.connect(path) as conn:
        count = conn.execute("PRAGMA page_count").fetchone()[0]
        size = conn.execute("PRAGMA page_size").fetchone()[0]
    return int(count) * int(size)


_SYNC = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}


def _settings(conn: Any) -> dict[str, str]:
    mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    sync = conn.execute("PRAGMA synchronous").fetchone()[0]
    return {"journal_mode": str(mode).upper(), "synchronous": _SYNC.get(int(sync), str(sync))}


# -- loopcraft ---------------------------------------------------------------------------------


async def _loopcraft(system: str, measure: str, folder: Path, steps: int, probe: Probe) -> dict[str, Any]:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ["LOOPCRAFT_DB"] = str(folder / "loopcraft.db")
    from loopcraft import Context, workflow
    from loopcraft.config import Config, EngineConfig
    from loopcraft.engine.service import Engine

    sync = "full" if system.endswith("full") else "normal"
    config = Config(model="scripted/none", engine=EngineConfig(synchronous=sync))
    launched = time.perf_counter()
    engine = await Engine.open(folder, config)
    opened = time.perf_counter()
    db = folder / "loopcraft.db"
    out: dict[str, Any] = {"cold_s": opened - T0, **await _lc_settings(engine)}

    @workflow(name="steps")
    async def run_steps(ctx: Context, n: int) -> int:
        for i in range(n):
            t = time.perf_counter()
            await ctx.tool(f"s{i}", lambda i=i: probe.ran(i))
            probe.times.append(time.perf_counter() - t)
        return n

    @workflow(name="fanout")
    async def fan(ctx: Context) -> int:
        async def sleep() -> None:
            await asyncio.sleep(FANOUT_SLEEP)

        calls = [ctx.tool(f"f{i}", sleep) for i in range(FANOUT)]
        return len(await ctx.parallel(*calls, concurrency=FANOUT_CONCURRENCY))

    engine.register(run_steps)
    engine.register(fan)
    if measure == "steps":
        before = _pages(db)
        t = time.perf_counter()
        info = await engine.run("steps", {"n": steps})
        out["total_s"] = time.perf_counter() - t
        assert info.status == "completed", info.error
        out["bytes_per_step"] = (_pages(db) - before) / steps
    elif measure == "record":
        await engine.run("steps", {"n": steps + 1})
    elif measure == "resume":
        run_id = (await engine.journal.list_runs(1))[0].id
        info = await engine.resume(run_id)
        out["resume_s"] = time.perf_counter() - launched
        assert info.status == "completed", info.error
    elif measure == "fanout":
        t = time.perf_counter()
        info = await engine.run("fanout", {})
        out["fanout_s"] = time.perf_counter() - t
        assert info.status == "completed", info.error
    await engine.close()
    return out


async def _lc_settings(engine: Any) -> dict[str, str]:
    rows = await engine.journal.select("PRAGMA journal_mode")
    sync = await engine.journal.select("PRAGMA synchronous")
    return {"journal_mode": str(rows[0][0]).upper(), "synchronous": _SYNC.get(int(sync[0][0]), "?")}


# -- DBOS --------------------------------------------------------------------------------------


async def _dbos(system: str, measure: str, folder: Path, steps: int, probe: Probe) -> dict[str, Any]:
    import logging

    from dbos import DBOS, DBOSConfig, SetWorkflowID

    logging.getLogger("dbos").setLevel(logging.WARNING)
    db = folder / "dbos.sqlite"
    config: DBOSConfig = {"name": "peers", "system_database_url": f"sqlite:///{db}", "log_level": "WARNING"}
    dbos = DBOS(config=config)

    @DBOS.step()
    async def step(i: int) -> None:
        probe.ran(i)

    @DBOS.workflow()
    async def run_steps(n: int) -> int:
        for i in range(n):
            t = time.perf_counter()
            await step(i)
            probe.times.append(time.perf_counter() - t)
        return n

    @DBOS.step()
    async def sleep(i: int) -> None:
        await asyncio.sleep(FANOUT_SLEEP)

    @DBOS.workflow()
    async def fan() -> int:
        gate = asyncio.Semaphore(FANOUT_CONCURRENCY)

        async def one(i: int) -> None:
            async with gate:
                await sleep(i)

        await asyncio.gather(*[one(i) for i in range(FANOUT)])
        return FANOUT

    launched = time.perf_counter()
    DBOS.launch()
    opened = time.perf_counter()
    if measure == "record":  # setup only, not measured: the same rows, written without syncing
        import sqlalchemy as sa

        sa.event.listen(dbos._sys_db.engine, "connect", lambda c, _: c.execute("PRAGMA synchronous = OFF"))
        dbos._sys_db.engine.dispose()
    with dbos._sys_db.engine.connect() as conn:
        settings = _settings(conn.connection.dbapi_connection)
    out: dict[str, Any] = {"cold_s": opened - T0, **settings}
    if measure == "steps":
        before = _pages(db)
        t = time.perf_counter()
        await run_steps(steps)
        out["total_s"] = time.perf_counter() - t
        out["bytes_per_step"] = (_pages(db) - before) / steps
    elif measure == "record":
        with SetWorkflowID("recorded"):
            await run_steps(steps + 1)
    elif measure == "resume":
        handle = await DBOS.retrieve_workflow_async("recorded")  # launch() began its recovery
        await handle.get_result()
        out["resume_s"] = time.perf_counter() - launched
    elif measure == "fanout":
        t = time.perf_counter()
        await fan()
        out["fanout_s"] = time.perf_counter() - t
    DBOS.destroy()
    return out


# -- LangGraph ---------------------------------------------------------------------------------


class State(TypedDict):
    i: int
    n: int


class FanState(TypedDict):
    done: Annotated[list[int], operator.add]


async def _langgraph(system: str, measure: str, folder: Path, steps: int, probe: Probe) -> dict[str, Any]:
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    db = folder / "langgraph.sqlite"
    launched = time.perf_counter()
    async with AsyncSqliteSaver.from_conn_string(str(db)) as saver:
        await saver.setup()
        app, fan = (_lg_graph if system == "langgraph-graph" else _lg_func)(saver, probe)
        opened = time.perf_counter()
        async with saver.conn.execute("PRAGMA journal_mode") as cur:
            mode = (await cur.fetchone())[0]
        async with saver.conn.execute("PRAGMA synchronous") as cur:
            sync = (await cur.fetchone())[0]
        out: dict[str, Any] = {
            "cold_s": opened - T0,
            "journal_mode": str(mode).upper(),
            "synchronous": _SYNC.get(int(sync), "?"),
        }
        config: dict[str, Any] = {"configurable": {"thread_id": "t"}, "recursion_limit": 10**7}
        if measure == "steps":
            before = _pages(db)
            t = time.perf_counter()
            await app.ainvoke(_lg_input(system, steps), config)
            out["total_s"] = time.perf_counter() - t
            out["bytes_per_step"] = (_pages(db) - before) / steps
        elif measure == "record":
            await app.ainvoke(_lg_input(system, steps + 1), config)
        elif measure == "resume":
            await app.ainvoke(None, config)
            out["resume_s"] = time.perf_counter() - launched
        elif measure == "fanout":
            t = time.perf_counter()
            await fan.ainvoke(_lg_fan_input(system), {**config, "max_concurrency": FANOUT_CONCURRENCY})
            out["fanout_s"] = time.perf_counter() - t
    return out


def _lg_input(system: str, n: int) -> Any:
    return {"i": 0, "n": n} if system == "langgraph-graph" else n


def _lg_fan_input(system: str) -> Any:
    return {"done": []} if system == "langgraph-graph" else FANOUT


def _lg_graph(saver: Any, probe: Probe) -> tuple[Any, Any]:
    """Graph API: one node that runs once per superstep (a checkpoint each), looping n times."""
    from langgraph.graph import END, START, StateGraph
    from langgraph.types import Send

    last = [time.perf_counter()]

    async def step(state: State) -> dict[str, int]:
        now = time.perf_counter()  # a step's overhead: from the previous step's end to this one's
        if state["i"]:
            probe.times.append(now - last[0])
        probe.ran(state["i"])
        last[0] = time.perf_counter()
        return {"i": state["i"] + 1}

    graph = StateGraph(State)
    graph.add_node("step", step)
    graph.add_edge(START, "step")
    graph.add_conditional_edges("step", lambda s: "step" if s["i"] < s["n"] else END)
    app = graph.compile(checkpointer=saver)

    async def sleeper(arg: dict[str, int]) -> dict[str, list[int]]:
        await asyncio.sleep(FANOUT_SLEEP)
        return {"done": [arg["i"]]}

    fan = StateGraph(FanState)
    fan.add_node("sleeper", sleeper)
    fan.add_conditional_edges(START, lambda s: [Send("sleeper", {"i": i}) for i in range(FANOUT)])
    fan.add_edge("sleeper", END)
    return app, fan.compile(checkpointer=saver)


def _lg_func(saver: Any, probe: Probe) -> tuple[Any, Any]:
    """Functional API: an entrypoint calling one task per step (its result checkpointed)."""
    from langgraph.func import entrypoint, task

    @task
    async def step(i: int) -> int:
        probe.ran(i)
        return i

    @entrypoint(checkpointer=saver)
    async def run_steps(n: int) -> int:
        for i in range(n):
            t = time.perf_counter()
            await step(i)
            probe.times.append(time.perf_counter() - t)
        return n

    @task
    async def sleep(i: int) -> int:
        await asyncio.sleep(FANOUT_SLEEP)
        return i

    @entrypoint(checkpointer=saver)
    async def fan(n: int) -> int:
        return len(await asyncio.gather(*[sleep(i) for i in range(n)]))

    return run_steps, fan


# -- entry -------------------------------------------------------------------------------------

SYSTEMS: dict[str, Callable[[str, str, Path, int, Probe], Awaitable[dict[str, Any]]]] = {
    "loopcraft": _loopcraft,
    "loopcraft-full": _loopcraft,
    "dbos": _dbos,
    "langgraph-graph": _langgraph,
    "langgraph-func": _langgraph,
}


def main() -> None:
    system, measure, folder = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    steps = int(sys.argv[4]) if len(sys.argv) > 4 else STEPS
    probe = Probe(folder, steps if measure == "record" else None)
    os.chdir(folder)
    out = asyncio.run(SYSTEMS[system](system, measure, folder, steps, probe))
    if probe.times:
        ms = sorted(t * 1e3 for t in probe.times)
        out["p50_ms"] = statistics.median(ms)
        out["p95_ms"] = ms[min(len(ms) - 1, int(0.95 * len(ms)))]
    print(json.dumps(out))
    sys.stdout.flush()
    os._exit(0)  # no slow interpreter teardown (DBOS threads): the figures are out


if __name__ == "__main__":
    main()
