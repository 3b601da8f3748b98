"""Issue 5 acceptance with real processes: 50 races of two ``loopcraft resume RUN`` processes over
crashed runs give exactly one winner each. The winner runs the run's side effect (once) and
completes it; the loser exits 8 naming the winner's process. The racers are started together:
each imports the CLI, says it is ready, and calls ``loopcraft resume`` when the test says go.

Half the runs were left by an owner process that died with its lease still unexpired (the takeover
of a dead local owner), half by an owner whose lease ran out (the expired-lease claim)."""

from __future__ import annotations

import asyncio
import functools
import multiprocessing
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from loopcraft.engine.journal import Journal

RACES = 50
BATCH = 10  # races run concurrently (two processes each)

WORKFLOW = """
import asyncio
import functools
import multiprocessing
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loopcraft import Context, workflow


@workflow(name="race")
async def race(ctx: Context) -> str:
    async def effect() -> int:
        marks = Path(os.environ["RACE_DIR"])
        with open(marks / "effects.log", "a") as log:
            log.write(f"{ctx.run_id} {os.getpid()}\\n")
        release = marks / f"{ctx.run_id}.release"
        for _ in range(4000):  # hold the run (40 s at most) until the test saw the loser exit
            if release.exists():
                break
            await asyncio.sleep(0.01)
        return os.getpid()

    pid = await ctx.tool("effect", effect)
    return f"won by {pid}"
"""


@pytest.fixture
def repo(git_repo: Path) -> Path:
    (git_repo / ".loopcraft" / "workflows").mkdir(parents=True)
    (git_repo / ".loopcraft" / "workflows" / "race.py").write_text(WORKFLOW)
    return git_repo


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


async def _crashed_runs(db: Path, count: int) -> list[str]:
    """``count`` runs left ``running`` by owners that are gone."""
    journal = await Journal.open(db)
    host = os.uname().nodename
    ids = []
    try:
        for index in range(count):
            run_id = f"race-{index:02d}"
            await journal.create_run(run_id, "race", {}, status="running")
            if index % 2 == 0:  # the owner died while its lease was still running
                owner, expires = f"{host}:{_dead_pid()}:dead{index:02d}", time.time() + 600
            else:  # the owner's lease ran out (on a host we cannot check)
                owner, expires = f"elsewhere-host:4242:gone{index:02d}", time.time() - 1
            await journal.update_run(run_id, owner=owner, lease_expires=expires, heartbeat_at=expires - 10)
            ids.append(run_id)
    finally:
        await journal.close()
    return ids


# The racers are forked from a server that has already imported the CLI, so 100 processes do not
# each pay the interpreter's startup; each one still runs `loopcraft resume RUN` (the CLI's main) with
# its own pid, its own journal connection and its own event loop.
_MP = multiprocessing.get_context("forkserver")
_PRELOAD = [
    "loopcraft.cli",
    "loopcraft.headless",
    "loopcraft.engine.service",
    "loopcraft.engine.agent_runner",
]

Outcome = tuple[int, str, str, int]  # exit code, stdout, stderr, pid


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "LOOPCRAFT_DB": str(tmp_path / "journal.db"), "RACE_DIR": str(tmp_path)}


def _resume_here(repo: str, env: dict[str, str], run_id: str, out: str, go: Any) -> None:
    """One racer (in a forked process): ``loopcraft resume RUN`` at the go, output to ``out``.*."""
    os.chdir(repo)
    os.environ.clear()
    os.environ.update(env)
    for fd, suffix in ((1, ".out"), (2, ".err")):
        handle = os.open(out + suffix, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(handle, fd)
        os.close(handle)
    from loopcraft.cli import main

    go.wait(timeout=120)
    sys.argv = ["loopcraft", "resume", run_id]
    main()


def _release_after_the_loser(races: list[tuple[str, Callable[[], bool]]], tmp_path: Path) -> None:
    """Let each race's winner finish once one of its two processes has exited (or at the deadline)."""
    waiting = dict(races)
    deadline = time.monotonic() + 40
    while waiting and time.monotonic() < deadline:
        for run_id, one_exited in list(waiting.items()):
            if one_exited():
                (tmp_path / f"{run_id}.release").touch()
                del waiting[run_id]
        time.sleep(0.01)
    for run_id in waiting:  # a hung race: let everything finish so the assertions can report it
        (tmp_path / f"{run_id}.release").touch()


def _one_exited(pair: list[Any]) -> bool:
    return any(p.exitcode is not None for p in pair)


def _forked_batch(repo: Path, tmp_path: Path, run_ids: list[str]) -> list[tuple[str, list[Outcome]]]:
    go = _MP.Barrier(2 * len(run_ids) + 1)
    env = _env(tmp_path)
    races = [
        (
            run_id,
            [
                _MP.Process(
                    target=_resume_here, args=(str(repo), env, run_id, str(tmp_path / f"{run_id}-{n}"), go)
                )
                for n in (0, 1)
            ],
        )
        for run_id in run_ids
    ]
    procs = [p for _, pair in races for p in pair]
    try:
        for proc in procs:
            proc.start()
        go.wait(timeout=120)  # every racer has started: all call resume now
        _release_after_the_loser(
            [(run_id, functools.partial(_one_exited, pair)) for run_id, pair in races],
            tmp_path,
        )
        results = []
        for run_id, pair in races:
            outcomes = []
            for n, proc in enumerate(pair):
                proc.join(timeout=60)
                base = tmp_path / f"{run_id}-{n}"
                out, err = Path(f"{base}.out").read_text(), Path(f"{base}.err").read_text()
                outcomes.append((proc.exitcode if proc.exitcode is not None else -1, out, err, proc.pid or 0))
            results.append((run_id, outcomes))
        return results
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.kill()
                proc.join()


def _console_race(repo: Path, tmp_path: Path, run_id: str) -> tuple[str, list[Outcome]]:
    """Two plain ``loopcraft resume RUN`` commands started together."""
    command = [str(Path(sys.executable).with_name("loopcraft")), "resume", run_id]
    pair = [
        subprocess.Popen(
            command,
            cwd=repo,
            env=_env(tmp_path),
            text=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in (0, 1)
    ]
    try:
        _release_after_the_loser([(run_id, lambda: any(p.poll() is not None for p in pair))], tmp_path)
        outcomes = []
        for proc in pair:
            out, err = proc.communicate(timeout=60)
            outcomes.append((proc.returncode, out, err, proc.pid))
        return run_id, outcomes
    finally:
        for proc in pair:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _check(db: Path, tmp_path: Path, results: list[tuple[str, list[Outcome]]]) -> None:
    """Exactly one winner per race: it ran the side effect once and completed the run; the loser
    exited 8 with one line naming the winning process."""
    effects = [line.split() for line in (tmp_path / "effects.log").read_text().splitlines()]
    for run_id, outcomes in results:
        assert sorted(code for code, *_ in outcomes) == [0, 8], (run_id, outcomes)
        (_, out, _, winner_pid), (_, _, err, _) = sorted(outcomes, key=lambda o: o[0])
        assert f"run {run_id} (race) completed" in out and f"output: won by {winner_pid}" in out, out
        assert err.startswith(f"error: run {run_id} is being run by "), err
        assert f":{winner_pid}:" in err and len(err.splitlines()) == 1, err
        assert [pid for rid, pid in effects if rid == run_id] == [str(winner_pid)]
    assert len(effects) == len(results)

    async def journal_state() -> list[tuple[str, list[tuple[str, str, int]]]]:
        journal = await Journal.open(db)
        try:
            state = []
            for run_id, _ in results:
                run = await journal.get_run(run_id)
                steps = await journal.load_steps(run_id)
                state.append((run.status if run else "?", [(s.name, s.status, s.attempts) for s in steps]))
            return state
        finally:
            await journal.close()

    for status, steps in asyncio.run(journal_state()):
        assert status == "completed"
        assert steps == [("effect", "completed", 1)]


@pytest.mark.slow
def test_fifty_races_of_two_resumer_processes_have_one_winner_each(repo: Path, tmp_path: Path) -> None:
    db = tmp_path / "journal.db"
    run_ids = asyncio.run(_crashed_runs(db, RACES))
    _MP.set_forkserver_preload([*_PRELOAD, __name__])
    results = []
    for start in range(0, RACES, BATCH):
        results += _forked_batch(repo, tmp_path, run_ids[start : start + BATCH])
    _check(db, tmp_path, results)


def test_races_of_two_loopcraft_resume_commands_have_one_winner_each(repo: Path, tmp_path: Path) -> None:
    db = tmp_path / "journal.db"
    run_ids = asyncio.run(_crashed_runs(db, 4))  # two of each kind of crashed run
    _check(db, tmp_path, [_console_race(repo, tmp_path, run_id) for run_id in run_ids])
