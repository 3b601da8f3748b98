"""The transcript pane: the attached stage's conversation, live; typing steers it.

It reuses the chat's widgets: a :class:`ChatView` fed by a :class:`ChatRenderer`, first
with the stage's recorded transcript, then with its live events. A recorded transcript
is first reduced to plain block descriptions (:func:`transcript_blocks`), and widgets
are built only for the blocks the view keeps, so attaching to a stage with ten thousand
messages costs about as much as attaching to one with a hundred. A failed stage's transcript
ends with its whole error. The pane can also show a group's review round as a table
(:meth:`TranscriptPane.show_round`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widget import Widget
from textual.widgets import Static

from loopcraft.tui.chat import AssistantMessage, ChatRenderer, ChatView, Notice, ToolBlock, UserMessage


@dataclass
class Block:
    """One chat block of a recorded transcript, before it becomes a widget."""

    kind: str  # user | assistant | tool | notice
    text: str = ""
    call_id: str = ""
    args: dict[str, Any] = field(default_factory=dict)
    output: str | None = None  # a tool's result (None: no result recorded yet)
    is_error: bool = False
    diff: str | None = None

    def build(self) -> Widget:
        if self.kind == "user":
            return UserMessage(self.text)
        if self.kind == "assistant":
            return AssistantMessage(self.text)
        if self.kind == "notice":
            return Notice(self.text)
        block = ToolBlock(self.call_id, self.text, self.args)
        if self.output is not None:
            block.finish(self.output, is_error=self.is_error, diff=self.diff)
        return block


def transcript_blocks(entries: list[dict[str, Any]]) -> list[Block]:
    """A stage's session entries (messages, tool results, statuses) as chat blocks, in order."""
    blocks: list[Block] = []
    open_tools: dict[str, Block] = {}
    for entry in entries:
        kind = entry.get("type")
        if kind == "message":
            message = entry.get("message") or {}
            role, content = message.get("role"), message.get("content") or ""
            if role == "user":
                blocks.append(Block("user", str(content)))
            elif role == "assistant":
                if content:
                    blocks.append(Block("assistant", str(content)))
                for call in message.get("tool_calls") or []:
                    function = call.get("function", {})
                    tool = Block(
                        "tool",
                        function.get("name", "?"),
                        call.get("id", ""),
                        _loads(function.get("arguments")),
                    )
                    open_tools[tool.call_id] = tool
                    blocks.append(tool)
            elif role == "tool":
                answered = open_tools.pop(message.get("tool_call_id", ""), None)
                if answered is not None:
                    answered.output = str(content)
        elif kind == "tool_result":
            done = open_tools.pop(entry.get("call_id", entry.get("tool_call_id", "")), None)
            if done is not None:
                done.output = str(entry.get("output", ""))
                done.is_error = bool(entry.get("is_error"))
                done.diff = (entry.get("metadata") or {}).get("diff")
        elif kind == "status" and entry.get("status") != "running":
            blocks.append(Block("notice", f"status: {entry.get('status')} {entry.get('reason', '')}".strip()))
    return blocks


def failure_blocks(blocks: list[Block], error: str) -> list[Block]:
    """``blocks`` of a failed stage, ending with its whole error (a session that completed before the
    stage failed, e.g. on its output's schema, does not end with ``status: completed``)."""
    while blocks and blocks[-1].kind == "notice" and blocks[-1].text.startswith("status: completed"):
        blocks = blocks[:-1]
    return [*blocks, Block("notice", f"failed: {error}")]


@dataclass
class RoundRow:
    """One member of a review round: a reviewer's verdict or a check's outcome."""

    name: str
    verdict: str
    blockers: int | None = None
    top: str = ""


def round_table(rows: list[RoundRow]) -> Table:
    table = Table(expand=True, show_lines=False)
    table.add_column("reviewer", no_wrap=True)
    table.add_column("verdict", no_wrap=True)
    table.add_column("blockers", justify="right", no_wrap=True)
    table.add_column("top finding", ratio=1)
    for row in rows:
        style = "green" if row.verdict in ("approve", "passed") else "yellow"
        blockers = "" if row.blockers is None else str(row.blockers)
        table.add_row(row.name, Text(row.verdict, style=style), blockers, row.top)
    return table


class TranscriptPane(Vertical):
    """Shown while attached to a stage (``attach``), hidden after ``detach``."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.run_id: str | None = None
        self.key: str | None = None
        self.label: str = ""  # the stage's path, e.g. "demo › demo-review › synthesis"
        self.run_label: str = ""  # the run's short handle
        self.renderer: ChatRenderer | None = None

    def compose(self) -> ComposeResult:
        yield Static("Transcript", classes="pane-title", id="transcript-title")
        yield ChatView(id="transcript-view", max_blocks=80, prune_step=20)

    @property
    def view(self) -> ChatView:
        return self.query_one("#transcript-view", ChatView)

    async def attach(
        self,
        run_id: str,
        key: str,
        entries: list[dict[str, Any]],
        status: str = "",
        *,
        label: str = "",
        run_label: str = "",
        error: str | None = None,
    ) -> None:
        """Show stage ``key``'s transcript (titled by ``label``, its path, and ``run_label``);
        a failed stage's ``error`` ends it."""
        self.run_id, self.key = run_id, key
        self.label, self.run_label = label or key, run_label or run_id
        view = self.view
        await view.clear()
        self.renderer = renderer = ChatRenderer(view)
        self.set_title(status)
        blocks = transcript_blocks(entries)
        if status == "failed" and error:
            blocks = failure_blocks(blocks, error)
        kept = blocks[-view.max_blocks :]
        view.pruned = len(blocks) - len(kept)
        for block in kept:
            widget = await view.add(block.build())
            if block.kind == "tool" and block.output is None and isinstance(widget, ToolBlock):
                renderer.tools[block.call_id] = widget  # its result may still arrive live
        self.add_class("visible")

    def set_title(
        self, status: str = "", hint: str = "typing steers this stage; /workflow detach to return"
    ) -> None:
        title = Text(f"Transcript · {self.label} · run {self.run_label}")
        if status:
            title.append(f" · {status}")
        title.append(f"  ({hint})", style="dim")
        self.query_one("#transcript-title", Static).update(title)

    async def show_failure(self, error: str) -> None:
        """The attached stage failed just now: its transcript ends with the whole error."""
        await self.view.add(Notice(f"failed: {error}"))

    async def show_round(
        self, run_id: str, key: str, label: str, run_label: str, rows: list[RoundRow], summary: str
    ) -> None:
        """Group ``key``'s review round as a table (reviewer, verdict, blockers, top finding)."""
        self.run_id, self.key, self.label, self.run_label = run_id, key, label, run_label
        self.renderer = None
        view = self.view
        await view.clear()
        self.set_title(summary, "a review round; /workflow detach to return")
        await view.add(Static(round_table(rows), classes="round-table"))
        self.add_class("visible")

    async def detach(self) -> None:
        self.run_id = self.key = None
        self.renderer = None
        self.remove_class("visible")
        await self.view.clear()

    async def on_stage_events(self, events: list[Any]) -> None:
        """A batch of live agent events of the attached stage."""
        if self.renderer is not None:
            await self.renderer.handle_many(events)


def _loads(raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    try:
        value = json.loads(raw or "{}")
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}
