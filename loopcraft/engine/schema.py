"""The journal's SQLite schema and its migrations, versioned with ``PRAGMA user_version``."""

from __future__ import annotations

SCHEMA_VERSION = 3

# Each entry migrates from version ``index`` to ``index + 1``. Never edit a shipped migration:
# append a new one and bump SCHEMA_VERSION.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        workflow TEXT NOT NULL,
        inputs TEXT NOT NULL DEFAULT '{}',
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
        run_id TEXT NOT NULL,
        key TEXT NOT NULL,
        pos TEXT NOT NULL,
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        status TEXT NOT NULL,
        output TEXT,
        error TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        usage TEXT,
        model TEXT,
        started REAL,
        finished REAL,
        parents TEXT NOT NULL DEFAULT '[]',
        seq INTEGER NOT NULL DEFAULT 0,
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
        payload TEXT NOT NULL DEFAULT '{}',
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
    "ALTER TABLE steps ADD COLUMN grants TEXT",
    # 3: steps kept in their primary key's b-tree (WITHOUT ROWID: no second index holding run id
    # and position again), so a journal grows about half as fast per step
    """
    CREATE TABLE steps_v3 (
        run_id TEXT NOT NULL,
        pos TEXT NOT NULL,
        key TEXT NOT NULL,
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        status TEXT NOT NULL,
        output TEXT,
        error TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        usage TEXT,
        model TEXT,
        started REAL,
        finished REAL,
        parents TEXT NOT NULL DEFAULT '[]',
        seq INTEGER NOT NULL DEFAULT 0,
        grants TEXT,
        PRIMARY KEY (run_id, pos)
    ) WITHOUT ROWID;
    INSERT INTO steps_v3 (run_id, pos, key, kind, name, status, output, error, attempts, usage, model,
        started, finished, parents, seq, grants)
        SELECT run_id, pos, key, kind, name, status, output, error, attempts, usage, model,
        started, finished, parents, seq, grants FROM steps;
    DROP TABLE steps;
    ALTER TABLE steps_v3 RENAME TO steps
    """,
]
