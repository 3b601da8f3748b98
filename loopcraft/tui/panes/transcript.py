"""The transcript pane: the attached stage's conversation, live; typing steers it.

It reuses the chat's widgets: a :class:`ChatView` fed by a :class:`ChatRenderer`, first
with the stage's recorded transcript, then with its live events.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from loopcraft.tui.chat import AssistantMessage, ChatRenderer, ChatView, Notice, ToolBlock, UserMessage


class TranscriptPane(Vertical):
    """Shown while attached to a stage (``attach``), hidden after ``detach``."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.run_id: str | None = None
        self.key: str | None = None
        self.renderer: ChatRenderer | None = None

    def compose(self) -> ComposeResult:
        yield Static("Transcript", classes="pane-title", id="transcript-title")
        yield ChatView(id="transcript-view", max_blocks=200)

    @property
    def view(self) -> ChatView:
        return self.query_one("#transcript-view", ChatView)

    async def attach(self, run_id: str, key: str, entries: list[dict[str, Any]], status: str = "") -> None:
        self.run_id, self.key = run_id, key
        await self.view.remove_children()
        self.renderer = ChatRenderer(self.view)
        self.set_title(status)
        for entry in entries:
            await self._render_entry(entry)
        self.add_class("visible")
        self.view.scroll_end(animate=False)

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
        await self.view.remove_children()

    async def on_stage_event(self, event: Any) -> None:
        """A live agent event of the attached stage."""
        if self.renderer is not None:
            await self.renderer.handle(event)

    def _take(self, call_id: str) -> ToolBlock | None:
        tools = self.renderer.tools if self.renderer is not None else {}
        return tools.pop(call_id) if call_id in tools else None

    async def _render_entry(self, entry: dict[str, Any]) -> None:
        """One recorded session entry (message / tool_result …) as chat blocks."""
        kind = entry.get("type")
        if kind == "message":
            message = entry.get("message") or {}
            role, content = message.get("role"), message.get("content") or ""
            if role == "user":
                await self.view.add(UserMessage(str(content)))
            elif role == "assistant":
                if content:
                    await self.view.add(AssistantMessage(str(content)))
                for call in message.get("tool_calls") or []:
                    function = call.get("function", {})
                    started = ToolBlock(
                        call.get("id", ""), function.get("name", "?"), _loads(function.get("arguments"))
                    )
                    await self.view.add(started)
                    assert self.renderer is not None
                    self.renderer.tools[started.call_id] = started
            elif role == "tool" and self.renderer is not None:
                answered = self._take(message.get("tool_call_id", ""))
                if answered is not None:
                    answered.finish(str(content), is_error=False)
        elif kind == "tool_result" and self.renderer is not None:
            block = self._take(entry.get("call_id", entry.get("tool_call_id", "")))
            if block is not None:
                block.finish(
                    str(entry.get("output", "")),
                    is_error=bool(entry.get("is_error")),
                    diff=(entry.get("metadata") or {}).get("diff"),
                )
        elif kind == "status" and entry.get("status") != "running":
            await self.view.add(Notice(f"status: {entry.get('status')} {entry.get('reason', '')}".strip()))


def _loads(raw: Any) -> dict[str, Any]:
    import json

    if isinstance(raw, dict):
        return raw
    try:
        value = json.loads(raw or "{}")
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}
