"""The transcript pane: the attached stage's conversation, live; typing steers it.

It reuses the chat's widgets: a :class:`ChatView` fed by a :class:`ChatRenderer`, first
with the stage's recorded transcript, then with its live events. A recorded transcript
is first reduced to plain block descriptions (:func:`transcript_blocks`), and widgets
are built only for the blocks the view keeps, so attaching to a stage with ten thousand
messages costs about as much as attaching to one with a hundred.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

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


class TranscriptPane(Vertical):
    """Shown while attached to a stage (``attach``), hidden after ``detach``."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.run_id: str | None = None
        self.key: str | None = None
        self.renderer: ChatRenderer | None = None

    def compose(self) -> ComposeResult:
        yield Static("Transcript", classes="pane-title", id="transcript-title")
        yield ChatView(id="transcript-view", max_blocks=80, prune_step=20)

    @property
    def view(self) -> ChatView:
        return self.query_one("#transcript-view", ChatView)

    async def attach(self, run_id: str, key: str, entries: list[dict[str, Any]], status: str = "") -> None:
        self.run_id, self.key = run_id, key
        view = self.view
        await view.clear()
        self.renderer = renderer = ChatRenderer(view)
        self.set_title(status)
        blocks = transcript_blocks(entries)
        kept = blocks[-view.max_blocks :]
        view.pruned = len(blocks) - len(kept)
        for block in kept:
            widget = await view.add(block.build())
            if block.kind == "tool" and block.output is None and isinstance(widget, ToolBlock):
                renderer.tools[block.call_id] = widget  # its result may still arrive live
        self.add_class("visible")

    def set_title(self, status: str = "") -> None:
        title = Text(f"Transcript · {self.key} · run {self.run_id}")
        if status:
            title.append(f" · {status}")
        title.append("  (typing steers this stage; /workflow detach to return)", style="dim")
        self.query_one("#transcript-title", Static).update(title)

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
