"""``serve = true``: the open app fires the repo's triggers (holding the serve lease), and
gives the lease back when it closes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from loopcraft.engine.service import db_path
from loopcraft.triggers.inbox import Inbox
from tests.app.tui_support import chat_texts, make_app, scripted, wait_for

QUICK = """
from loopcraft import Context, workflow


@workflow
async def quick(ctx: Context, target: str = "") -> str:
    return "done " + target
"""


def _outcomes(root: Path) -> list[tuple[str, str]]:
    conn = sqlite3.connect(db_path(root), timeout=10)
    try:
        if not conn.execute("SELECT name FROM sqlite_master WHERE name = 'runs'").fetchall():
            return []  # the app's engine has not opened the journal yet
        return list(
            conn.execute("SELECT d.status, r.status FROM inbox_dispatch d JOIN runs r ON r.id = d.run_id")
        )
    finally:
        conn.close()


async def test_the_app_with_serve_true_turns_a_queued_event_into_a_run(git_repo: Path) -> None:
    (git_repo / ".loopcraft" / "workflows").mkdir(parents=True)
    (git_repo / ".loopcraft" / "workflows" / "quick.py").write_text(QUICK)
    (git_repo / ".loopcraft" / "triggers.toml").write_text(
        '[[trigger]]\nworkflow = "quick"\nwebhook = "job"\n'
    )
    inbox = Inbox(db_path(git_repo))
    inbox.record("job", {}, source="cli")  # recorded while nothing runs
    app = make_app(git_repo, scripted("triggers-app", [{"text": "hi"}]), serve=True)
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: _outcomes(git_repo) == [("started", "completed")], timeout=60)
        assert inbox.serve_owner() is not None  # the app holds the lease meanwhile
    assert inbox.serve_owner() is None
    inbox.close()


async def test_without_serve_the_app_fires_nothing(git_repo: Path) -> None:
    (git_repo / ".loopcraft" / "workflows").mkdir(parents=True)
    (git_repo / ".loopcraft" / "workflows" / "quick.py").write_text(QUICK)
    (git_repo / ".loopcraft" / "triggers.toml").write_text(
        '[[trigger]]\nworkflow = "quick"\nwebhook = "job"\n'
    )
    inbox = Inbox(db_path(git_repo))
    inbox.record("job", {}, source="cli")
    app = make_app(git_repo, scripted("triggers-app-off", [{"text": "hi"}]))
    async with app.run_test() as pilot:
        await pilot.pause(0.2)
        assert app.config.serve is False and inbox.serve_owner() is None
    assert [e.status for e in inbox.pending()] == ["pending"]
    inbox.close()


async def test_triggers_and_inbox_views_list_the_trigger_and_its_run(git_repo: Path) -> None:
    (git_repo / ".loopcraft" / "workflows").mkdir(parents=True)
    (git_repo / ".loopcraft" / "workflows" / "quick.py").write_text(QUICK)
    (git_repo / ".loopcraft" / "triggers.toml").write_text(
        '[[trigger]]\nname = "on-job"\nworkflow = "quick"\nwebhook = "job"\n'
    )
    Inbox(db_path(git_repo)).record("job", {}, source="cli")
    app = make_app(git_repo, scripted("triggers-views", [{"text": "hi"}]), serve=True)
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: _outcomes(git_repo) == [("started", "completed")], timeout=60)
        await app.run_command("/triggers")
        await wait_for(pilot, lambda: any("on-job" in t and "webhook job" in t for t in chat_texts(app)))
        await app.run_command("/inbox")
        await wait_for(pilot, lambda: any(t.startswith("INBOX") and "archived" in t for t in chat_texts(app)))
