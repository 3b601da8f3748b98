"""Journal schema 2: a journal written by schema 1 (before per-stage grants) opens, is migrated in
place, keeps its steps (with no grants) and records a new step's grants."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from loopcraft.engine.journal import Journal, StepRow
from loopcraft.engine.schema import SCHEMA_VERSION
from tests.engine_helpers import old_journal


async def test_a_schema_1_journal_is_migrated_and_keeps_its_steps(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    old_journal(
        db,
        1,
        "INSERT INTO steps (run_id, key, pos, kind, name, status) VALUES ('r1', 'k', 'p', 'task', 'old', 'completed')",
    )
    journal = await Journal.open(db)
    try:
        (old,) = await journal.load_steps("r1")
        assert old.name == "old" and old.grants == []
        await journal.start_step(
            StepRow("r1", "k2", "p2", "task", "new", "running", seq=2, grants=["scripts/x.sh", "network"])
        )
        steps = await journal.load_steps("r1")
        assert [s.grants for s in steps] == [[], ["scripts/x.sh", "network"]]
    finally:
        await journal.close()
    assert sqlite3.connect(db).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION >= 2
