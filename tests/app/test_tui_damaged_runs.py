"""Issue 20 item 3, the app's side: a damaged journal row is listed in the runs pane as
``damaged`` while the other runs list normally (the engine opens; no "workflow engine
unavailable: Expecting value…"). Real journal made by the real CLI, damaged with sqlite3."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import yaml

from loopcraft.tui.panes.runs import RunsPane
from tests.app.tui_support import chat_texts, make_app
from tests.integration.test_cli_basics import lc

FLOW = """
from loopcraft import Context, workflow


@workflow(description="one task")
async def one(ctx: Context) -> str:
    return (await ctx.task("draft", prompt="Draft")).text
"""


async def test_runs_pane_lists_a_damaged_row_and_the_others(git_repo: Path) -> None:
    (git_repo / ".loopcraft" / "workflows").mkdir(parents=True)
    (git_repo / ".loopcraft" / "workflows" / "one.py").write_text(FLOW)
    (git_repo / ".loopcraft" / "scripts").mkdir()
    (git_repo / ".loopcraft" / "scripts" / "t.yaml").write_text(yaml.safe_dump({"default": [{"text": "ok"}]}))
    ids = []
    for _ in range(2):
        out = lc("run", "one", "-m", "scripted/t", "--json", cwd=git_repo)
        assert out.returncode == 0, out.stderr
        ids.append(json.loads(out.stdout)["id"])
    bad, good = ids
    conn = sqlite3.connect(git_repo / ".loopcraft" / "loopcraft.db")
    with conn:
        conn.execute("UPDATE runs SET inputs = '{oops', created = 'yesterday' WHERE id = ?", (bad,))
    conn.close()

    app = make_app(git_repo, "scripted/demo")
    async with app.run_test(size=(160, 45)):
        controller = await app.open_workflows()
        runs = controller.runs_pane.runs
        assert runs[bad].status == "damaged" and "runs.inputs is not JSON" in runs[bad].error
        assert runs[good].status == "completed"
        table = app.query_one(RunsPane).table
        assert (
            str(table.get_row(bad)[2]).strip() == "damaged"
            and str(table.get_row(good)[2]).strip() == "completed"
        )
        assert not any("unavailable" in text for text in chat_texts(app))
