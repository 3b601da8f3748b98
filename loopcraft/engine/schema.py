"""The journal's SQLite schema and its migrations, versioned with ``PRAGMA user_version``."""

from __future__ import annotations

import textwrap

SCHEMA_VERSION = 3

# The steps table's columns after its run id, key and position: schema 1 creates the table with
# them, schema 3 rebuilds it with them (and schema 2's grants).
_STEP_COLUMNS = (
    "kind TEXT NOT NULL",
    "name TEXT NOT NULL",
    "status TEXT NOT NULL",
    "output TEXT",
    "error TEXT",
    "attempts INTEGER NOT NULL DEFAULT 0",
    "usage TEXT",
    "model TEXT",
    "started REAL",
    "finished REAL",
    "parents TEXT NOT NULL DEFAULT '[]'",
    "seq INTEGER NOT NULL DEFAULT 0",
)
_GRANTS = "grants TEXT"
_STEPS_V3 = ("run_id TEXT NOT NULL", "pos TEXT NOT NULL", "key TEXT NOT NULL", *_STEP_COLUMNS, _GRANTS)


def _columns(*columns: str) -> str:
    """Column definitions as a CREATE TABLE lists them: one a line, indented, each with its comma."""
    return "\n".join(f"        {column}," for column in columns)


def _names(*columns: str) -> str:
    """The names of ``columns``, comma-separated, wrapped at 80 characters for an INSERT or SELECT."""
    return "\n        ".join(textwrap.wrap(", ".join(column.split()[0] for column in columns), 80))


# Each entry migrates from version ``index`` to ``index + 1``. Never edit a shipped migration:
# append a new one and bump SCHEMA_VERSION. The entries are f-strings over the column lists above
# (SQL braces doubled); the text they make must stay the same to the byte as well.
MIGRATIONS: list[str] = [
    f"""
    CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        workflow TEXT NOT NULL,
        inputs TEXT NOT NULL DEFAULT '{{}}',
        status TEXT NOT NULL,
        output TEXT,
        error TEXT,
        created REAL NOT NULL,
        updated REAL NOT NULL,
        finished REAL,
        parent_run TEXT,
        model TEXT,
        budget TEXT,
        usage TEXT,
        owner TEXT,
        lease_expires REAL,
        heartbeat_at REAL
    );
    CREATE INDEX runs_created ON runs(created);
    CREATE TABLE steps (
{_columns("run_id TEXT NOT NULL", "key TEXT NOT NULL", "pos TEXT NOT NULL", *_STEP_COLUMNS)}
        PRIMARY KEY (run_id, pos)
    );
    CREATE TABLE events (
        run_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        ts REAL NOT NULL,
        type TEXT NOT NULL,
        payload TEXT NOT NULL,
        PRIMARY KEY (run_id, seq)
    );
    CREATE TABLE artifacts (
        run_id TEXT NOT NULL,
        step_key TEXT,
        name TEXT NOT NULL,
        path TEXT NOT NULL,
        size INTEGER NOT NULL,
        created REAL NOT NULL,
        PRIMARY KEY (run_id, name)
    );
    CREATE TABLE mailbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id TEXT NOT NULL,
        stage_key TEXT,
        kind TEXT NOT NULL CHECK (kind IN
            ('pause', 'resume', 'interrupt', 'kill', 'steer', 'follow_up', 'answer')),
        payload TEXT NOT NULL DEFAULT '{{}}',
        created REAL NOT NULL,
        consumed_at REAL,
        dedupe_key TEXT UNIQUE
    );
    CREATE INDEX mailbox_pending ON mailbox(run_id, consumed_at);
    CREATE TABLE prompts (
        id TEXT PRIMARY KEY,
        run_id TEXT NOT NULL,
        step_key TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('input', 'confirm', 'select', 'editor')),
        question TEXT NOT NULL,
        options TEXT,
        "default" TEXT,
        status TEXT NOT NULL CHECK (status IN ('pending', 'answered')),
        answer TEXT,
        created REAL NOT NULL,
        answered_at REAL,
        UNIQUE (run_id, step_key)
    );
    """,
    # 2: a stage's grant (protected paths it may write, network), shown in the graph
    f"ALTER TABLE steps ADD COLUMN {_GRANTS}",
    # 3: steps kept in their primary key's b-tree (WITHOUT ROWID: no second index holding run id
    # and position again), so a journal grows about half as fast per step
    f"""
    CREATE TABLE steps_v3 (
{_columns(*_STEPS_V3)}
        PRIMARY KEY (run_id, pos)
    ) WITHOUT ROWID;
    INSERT INTO steps_v3 ({_names(*_STEPS_V3)})
        SELECT {_names(*_STEPS_V3)} FROM steps;
    DROP TABLE steps;
    ALTER TABLE steps_v3 RENAME TO steps
    """,
]
