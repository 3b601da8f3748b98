"""``/stats [WORKFLOW]`` in the app: the stats report of seeded runs in a modal screen, with
Textual ``Sparkline`` widgets of cost per run and completion over time; Escape closes it."""

from __future__ import annotations

import time
from pathlib import Path

from textual.widgets import Sparkline, Static

from loopcraft.engine.journal import Journal
from loopcraft.engine.service import db_path
from loopcraft.tui.stats_view import StatsScreen
from tests.app.tui_support import chat_texts, make_app, scripted, wait_for


async def seed(root: Path) -> None:
    """Three finished runs of ``wf``: completed ($1), failed ($3) 10 s later, completed ($2) 40 s in."""
    journal = await Journal.open(db_path(root))
    start = time.time() - 3600
    try:
        for rid, status, cost, offset in (
            ("r1", "completed", 1.0, 0),
            ("r2", "failed", 3.0, 10),
            ("r3", "completed", 2.0, 40),
        ):
            await journal.create_run(rid, "wf", {})
            usage = {"input_tokens": 100, "output_tokens": 10, "cost_usd": cost}
            await journal.update_run(
                rid, status=status, created=start + offset, finished=start + offset + 5, usage=usage
            )
    finally:
        await journal.close()


async def test_stats_shows_the_report_with_sparklines_of_cost_and_completion(git_repo: Path) -> None:
    await seed(git_repo)
    app = make_app(git_repo, scripted("stats-app", [{"text": "hi"}]))
    async with app.run_test(size=(120, 50)) as pilot:
        await app.run_command("/stats wf")
        screen = await wait_for(pilot, lambda: isinstance(app.screen, StatsScreen) and app.screen)
        await pilot.pause(0.1)
        report = str(screen.query_one("#stats-wf", Static).render())
        assert "wf: 3 runs, completed 2 (67%)" in report
        cost = screen.query_one("#spark-cost-wf", Sparkline)
        done = screen.query_one("#spark-completion-wf", Sparkline)
        # 24 slices of the 40 s span: the first run in the first, the last in the last; empty ones are 0
        assert len(cost.data) == 24 and (cost.data[0], cost.data[-1], max(cost.data)) == (1.0, 2.0, 3.0)
        assert sum(cost.data) == 6.0
        assert len(done.data) == 24 and (done.data[0], done.data[-1], sum(done.data)) == (1.0, 1.0, 2.0)
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, StatsScreen))
        await app.run_command("/stats nope")
        screen = await wait_for(pilot, lambda: isinstance(app.screen, StatsScreen) and app.screen)
        await pilot.pause(0.1)
        assert not screen.query(Sparkline)
        assert "no runs match" in str(screen.query(Static)[1].render())
        await pilot.press("escape")
        await app.run_command("/stats wf --since soon")
        await wait_for(pilot, lambda: any("bad --since 'soon'" in t for t in chat_texts(app)))
