"""Snapshot tests (pytest-textual-snapshot) of the app's main states, with deterministic
content: chat with tool calls, the stage graph with parallel and nested stages, an
attached transcript, pending approvals, and an error."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from loopcraft.tui.app import LoopcraftApp
from loopcraft.tui.chat import PermissionPrompt
from loopcraft.tui.panes.graph import GraphModel, GraphPane
from loopcraft.tui.panes.prompts import PendingPrompt, PromptsPane
from loopcraft.tui.panes.transcript import TranscriptPane
from tests.app.tui_support import make_app, scripted, wait_for

SIZE = (120, 36)
Setup = Callable[[Any], Awaitable[None]]

USAGE = {"input": 300, "output": 40}  # fixed, so the status bar does not depend on the tmp path
CHAT_TURNS = [
    {
        "text": "Let me fix the heading.",
        "tool_calls": [
            {
                "name": "edit",
                "id": "call-1",
                "arguments": {"path": "README.md", "old_string": "# sample", "new_string": "# fixed sample"},
            }
        ],
        "usage": USAGE,
    },
    {"tool_calls": [{"name": "bash", "id": "call-2", "arguments": {"command": "exit 3"}}], "usage": USAGE},
    {"text": "The heading is **fixed**; the check command failed with exit code 3.", "usage": USAGE},
]


def _graph() -> GraphModel:
    graph = GraphModel("run-1")
    graph.add("root/0:chain/0:task:scout", "scout", parents=["start"])
    graph.add("root/0:chain/1:task:plan", "plan", parents=["root/0:chain/0:task:scout"])
    graph.add("root/1:workflow:review", "review", "workflow", parents=["root/0:chain/1:task:plan"])
    fan = "root/1:workflow:review/0:parallel"
    branches = [
        {"key": f"{fan}/{i}:task:{n}", "name": n} for i, n in enumerate(["correctness", "style", "security"])
    ]
    graph.add(fan, "", "parallel", info={"branches": branches, "concurrency": 2})
    graph.add("root/1:workflow:review/0:parallel/0:task:correctness", "correctness")
    graph.add("root/1:workflow:review/0:parallel/1:task:style", "style")
    graph.add("root/1:workflow:review/1:task:synthesis", "synthesis", parents=["x"])
    graph.add("root/2:prompt:confirm", "confirm", "prompt", parents=["root/1:workflow:review"])
    for node in graph.nodes.values():
        node.status = "completed"
        node.model = None if node.kind != "task" else "scripted/demo"
        node.tokens = 1200 if node.kind == "task" else 0
    graph.nodes["root/1:workflow:review/0:parallel/1:task:style"].status = "failed"
    graph.nodes["root/1:workflow:review/0:parallel/1:task:style"].error = "schema mismatch"
    graph.nodes["root/2:prompt:confirm"].status = "awaiting_input"
    graph.nodes[f"{fan}/2:task:security"].status = "queued"  # held back by the concurrency limit
    return graph


def _matches(snap_compare: Any, app: LoopcraftApp, setup: Setup, settle: float = 0.3) -> bool:
    """Whether the screen after ``setup(pilot)`` and a ``settle`` pause matches the snapshot."""

    async def run_before(pilot: Any) -> None:
        app.input.cursor_blink = False  # a blinking cursor makes screenshots differ
        await setup(pilot)
        await pilot.pause(settle)

    return bool(snap_compare(app, terminal_size=SIZE, run_before=run_before))


def test_snapshot_chat_with_tool_calls(git_repo: Path, snap_compare) -> None:
    app = make_app(git_repo, scripted("tui-snap-chat", CHAT_TURNS), agent={"permission_mode": "yolo"})

    async def setup(pilot) -> None:
        await pilot.press(*"fix the heading", "enter")
        await app.chat.wait()
        await wait_for(pilot, lambda: app.renderer.current is None)  # the markdown stream has stopped
        await pilot.wait_for_scheduled_animations()

    assert _matches(snap_compare, app, setup, settle=0.5)


def test_snapshot_graph_parallel_and_nested(git_repo: Path, snap_compare) -> None:
    app = make_app(git_repo, "scripted/demo")

    async def setup(pilot) -> None:
        app.show_side()
        app.query_one(GraphPane).show(_graph(), "demo · run-1 · awaiting_input")

    assert _matches(snap_compare, app, setup)


def test_snapshot_attached_transcript(git_repo: Path, snap_compare) -> None:
    app = make_app(git_repo, "scripted/demo")
    entries = [
        {"type": "message", "message": {"role": "user", "content": "Map the context."}},
        {
            "type": "message",
            "message": {
                "role": "assistant",
                "content": "Looking around.",
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "ls", "arguments": '{"path": "."}'}}
                ],
            },
        },
        {"type": "tool_result", "call_id": "c1", "output": "README.md\nsrc/", "is_error": False},
        {"type": "message", "message": {"role": "assistant", "content": "## Map\n- README\n- src/"}},
        {"type": "status", "status": "completed", "reason": ""},
    ]

    async def setup(pilot) -> None:
        await app.query_one(TranscriptPane).attach("run-1", "root/0:task:scout", entries, "completed")

    assert _matches(snap_compare, app, setup)


def test_snapshot_pending_approvals(git_repo: Path, snap_compare) -> None:
    app = make_app(git_repo, "scripted/demo")

    async def setup(pilot) -> None:
        prompt = PermissionPrompt(
            "bash", "rm -rf build", "destructive command needs approval", destructive=True
        )
        await app.chat_view.add(prompt)
        app.show_side()
        await app.query_one(PromptsPane).add(
            PendingPrompt("p1", "run-1", "root/2:prompt:confirm", "confirm", "Apply the demo plan?")
        )
        await app.query_one(PromptsPane).add(
            PendingPrompt(
                "p2", "run-1", "root/3:prompt:select", "select", "Which model?", ["fast", "careful"]
            )
        )
        app.status.update_info(pending_prompts=2)
        prompt.focus()
        await wait_for(pilot, lambda: app.focused is prompt)

    assert _matches(snap_compare, app, setup)


def test_snapshot_error(git_repo: Path, snap_compare) -> None:
    app = make_app(git_repo, "scripted/demo")

    async def setup(pilot) -> None:
        await pilot.press(*"/workflow fly", "enter")
        await pilot.press(*"/model a b", "enter")

    assert _matches(snap_compare, app, setup)
