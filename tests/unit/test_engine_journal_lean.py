"""Journal schema 3 and the lean step protocol: a schema 2 journal is migrated in place (its steps
kept, the table rebuilt without a rowid), a no-op step is one write and stores no lifecycle event,
a resume decodes the steps once, and ``engine.synchronous`` reaches SQLite."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from loopcraft import Context, workflow
from loopcraft.config import Config, EngineConfig
from loopcraft.engine.journal import Journal, JournalError, StepRow
from loopcraft.engine.schema import SCHEMA_VERSION
from loopcraft.engine.service import Engine
from tests.engine_helpers import old_journal


async def test_a_schema_2_journal_is_migrated_and_keeps_its_steps(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    old_journal(
        db,
        2,
        "INSERT INTO steps (run_id, key, pos, kind, name, status, output, parents, seq, grants) "
        "VALUES ('r1', 'root/0:tool:a', 'root/0', 'tool', 'a', 'completed', 'null', '[]', 1, '[\"network\"]')",
    )
    journal = await Journal.open(db)
    try:
        (old,) = await journal.load_steps("r1")
        assert (old.key, old.output, old.grants, old.seq) == ("root/0:tool:a", None, ["network"], 1)
        await journal.write_steps(
            [StepRow("r1", "root/1:tool:b", "root/1", "tool", "b", "completed", seq=2)], []
        )
        assert [s.name for s in await journal.load_steps("r1")] == ["a", "b"]
    finally:
        await journal.close()
    check = sqlite3.connect(db)
    assert check.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
    sql = check.execute("SELECT sql FROM sqlite_schema WHERE name = 'steps'").fetchone()[0]
    assert "WITHOUT ROWID" in sql
    assert (
        check.execute(
            "SELECT COUNT(*) FROM sqlite_schema WHERE name LIKE 'sqlite_autoindex_steps%'"
        ).fetchone()[0]
        == 0
    )


async def test_synchronous_setting_reaches_sqlite(tmp_path: Path) -> None:
    for setting, expected in (("normal", 1), ("full", 2)):
        journal = await Journal.open(tmp_path / f"{setting}.db", synchronous=setting)
        try:
            assert (await journal.select("PRAGMA synchronous"))[0][0] == expected
        finally:
            await journal.close()
    with pytest.raises(JournalError, match="normal or full"):
        await Journal.open(tmp_path / "x.db", synchronous="off")


def test_config_takes_engine_synchronous() -> None:
    assert Config().engine.synchronous == "normal"
    assert Config(engine=EngineConfig(synchronous="full")).engine.synchronous == "full"
    with pytest.raises(ValueError):
        EngineConfig(synchronous="off")  # type: ignore[arg-type]


class _Counting:
    """Counts the journal's statements (the SQLite trace callback) and step decodes."""

    def __init__(self, journal: Journal) -> None:
        self.statements: list[str] = []
        self.loads = 0
        self.journal = journal
        original = journal.load_steps

        async def load_steps(run_id: str) -> list[StepRow]:
            self.loads += 1
            return await original(run_id)

        journal.load_steps = load_steps  # type: ignore[method-assign]

    async def trace(self) -> None:
        conn = self.journal._conn  # the statements SQLite runs, on the connection's own thread
        await conn._execute(lambda: conn._conn.set_trace_callback(self.statements.append))


async def test_a_noop_step_is_one_insert_and_stores_no_lifecycle_event(git_repo: Path) -> None:
    state: dict[str, Any] = {"fail": True}

    @workflow(name="noops")
    async def noops(ctx: Context) -> int:
        for i in range(50):
            await ctx.tool(f"s{i}", lambda: None)
        if state["fail"]:
            raise RuntimeError("stop")
        return 50

    engine = await Engine.open(git_repo, Config(model="scripted/none"))
    engine.register(noops)
    count = _Counting(engine.journal)
    await count.trace()
    info = await engine.run("noops", {})
    assert info.status == "failed"
    steps = [s for s in count.statements if " steps " in f" {s} " and not s.startswith("SELECT")]
    assert len(steps) == 50, steps[:5]  # one INSERT per step: no start row, then an update
    assert all(s.startswith("INSERT OR REPLACE INTO steps") for s in steps)
    assert not [s for s in count.statements if "INTO events" in s]
    assert count.loads == 1  # once per execution (it used to be three times)
    state["fail"] = False
    count.loads = 0
    resumed = await engine.resume(info.id)
    assert resumed.status == "completed" and count.loads == 1
    await engine.close()
