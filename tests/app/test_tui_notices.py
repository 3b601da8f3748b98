"""Issue 16, items 6 and 7 in the app: the chat says when a run starts, crosses 80 % of its budget
(once), beats while it runs long, has a stalled stage (and when it is active again) and ends; the
graph marks the stalled stage and shows its turn count and last activity."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from loopcraft.engine.names import short_id
from tests.app.tui_support import chat_texts, make_app, scripted, wait_for

FIRST_CALL_S = 30  # the first model call in a test process also imports litellm
HANG = """
from loopcraft import Context, workflow

@workflow(description="one slow stage", budget={"tokens": 1000})
async def hang(ctx: Context) -> str:
    result = await ctx.task("slowpoke", prompt="Take your time.", model="scripted/tui-hang")
    return result.text
"""


def _label(app: Any, name: str) -> str:
    pane = app.workflows.graph_pane
    key = next((k for k, n in pane.model.nodes.items() if n.name == name), None)
    node = pane._tree_nodes.get(key) if key else None
    return str(node.label) if node is not None else ""


def _said(app: Any, pattern: str) -> list[str]:
    return [line for line in chat_texts(app) if re.search(pattern, line)]


async def test_notices_heartbeats_and_a_stalled_stage_in_the_chat_and_the_graph(git_repo: Path) -> None:
    scripted(
        "tui-hang",
        [
            {
                "tool_calls": [{"name": "ls", "arguments": {"path": "."}}],
                "usage": {"input": 500, "output": 400},
            },
            {"delay": 1.5, "text": "done at last", "usage": {"input": 50, "output": 0}},
        ],
    )
    folder = git_repo / ".loopcraft" / "workflows"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "hang.py").write_text(HANG)
    app = make_app(
        git_repo, "scripted/demo", engine={"stall_after": 0.4}, notify={"heartbeat_minutes": 0.005}
    )
    async with app.run_test(size=(100, 40)) as pilot:
        controller = await app.open_workflows()
        run_id = await controller.run("hang", {})
        handle = short_id(run_id)
        # the second turn hangs (the first may stall too, while litellm is imported)
        stalled = lambda: "stalled" in (text := _label(app, "slowpoke")) and "turn 2" in text  # noqa: E731
        await wait_for(pilot, stalled, timeout=FIRST_CALL_S)
        assert re.search(r"\d+s ago", _label(app, "slowpoke")), _label(app, "slowpoke")
        await wait_for(pilot, lambda: _said(app, rf"run hang {handle} completed"), timeout=FIRST_CALL_S)
        assert len(_said(app, rf"run hang {handle} has used 90% of its tokens budget")) == 1
        assert _said(app, r"stage .*slowpoke stalled: no model or tool activity for \d+s; last: model call")
        assert _said(app, r"stage .*slowpoke: active again")
        assert _said(app, rf"run hang {handle} still running")  # a heartbeat
        assert not _said(app, rf"run hang {handle} started")  # the app said "started … as run" itself
        await wait_for(pilot, lambda: "✓" in _label(app, "slowpoke"))
        done = _label(app, "slowpoke")
        assert "stalled" not in done and "ago" not in done and "turn 2" in done, done
