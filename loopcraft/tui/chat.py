"""The chat pane's widgets: user and assistant messages (streaming markdown), tool calls
that update in place with collapsible output and diffs, notices and errors, the inline
permission prompt, and a scrolling view that keeps only the last N blocks mounted."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from rich.syntax import Syntax
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Collapsible, Markdown, Static
from textual.widgets._markdown import MarkdownStream

MAX_OUTPUT_SHOWN = 4_000
PERMISSION_GRACE_S = 0.5


class UserMessage(Static):
    """What the user typed; a queued follow-up is marked until it is delivered."""

    def __init__(self, text: str, *, queued: bool = False) -> None:
        super().__init__(classes="user-message")
        self.text = text
        self.queued = queued

    def on_mount(self) -> None:
        self._refresh()

    def delivered(self) -> None:
        self.queued = False
        self._refresh()

    def _refresh(self) -> None:
        label = Text("› ", style="bold")
        label.append(self.text)
        if self.queued:
            label.append("  (queued)", style="italic dim")
        self.set_class(self.queued, "queued")
        self.update(label)


class AssistantMessage(Markdown):
    """The model's answer, streamed in through Textual's :class:`MarkdownStream`."""

    def __init__(self, text: str = "") -> None:
        super().__init__(text, classes="assistant-message")
        self.text = text
        self._stream: MarkdownStream | None = None

    async def append_text(self, fragment: str) -> None:
        self.text += fragment
        if self._stream is None:
            self._stream = Markdown.get_stream(self)
        await self._stream.write(fragment)

    async def finish(self) -> None:
        if self._stream is not None:
            await self._stream.stop()
            self._stream = None


def _short(value: str, limit: int = 80) -> str:
    value = " ".join(value.split())
    return value if len(value) <= limit else value[: limit - 1] + "…"


def tool_subject(name: str, args: dict[str, Any]) -> str:
    """The one thing a tool call is about (command, path, pattern), for its title."""
    for key in ("command", "path", "pattern", "action", "name"):
        if key in args:
            return _short(str(args[key]))
    return _short(", ".join(f"{k}={v}" for k, v in args.items()))


class ToolBlock(Collapsible):
    """A tool call: title shows status (running, ok, error); body holds output and diff."""

    ICONS = {"running": "⟳", "ok": "✓", "error": "✗"}

    def __init__(self, call_id: str, name: str, args: dict[str, Any]) -> None:
        self.call_id = call_id
        self.tool_name = name
        self.subject = tool_subject(name, args)
        self.status = "running"
        self._output = Static("", classes="tool-output")
        super().__init__(self._output, title=self._make_title(), collapsed=True, classes="tool-block")

    def _make_title(self) -> str:
        return f"{self.ICONS[self.status]} {self.tool_name} {self.subject}"

    def finish(self, output: str, *, is_error: bool, diff: str | None = None) -> None:
        self.status = "error" if is_error else "ok"
        self.title = self._make_title()
        self.set_class(is_error, "error")
        shown = output if len(output) <= MAX_OUTPUT_SHOWN else output[:MAX_OUTPUT_SHOWN] + "\n… (cut)"
        if diff:
            self._output.update(Syntax(diff, "diff", theme="ansi_dark", word_wrap=True))
            self.collapsed = False
        else:
            self._output.update(Text(shown))
            if is_error:
                self.collapsed = False


class Notice(Static):
    """An info, warning or error line in the chat (errors carry the command usage)."""

    def __init__(self, text: str, kind: str = "info") -> None:
        super().__init__(Text(text), classes=f"notice {kind}")
        self.kind = kind
        self.text = text


class PermissionPrompt(Widget, can_focus=True):
    """Inline approval: a (allow once), A (always), r/n (reject); keys in the first
    0.5 s are ignored so typing that was meant for the input cannot answer it."""

    BINDINGS = [
        Binding("a,y", "answer('allow_once')", "allow once"),
        Binding("A", "answer('allow_always')", "always"),
        Binding("r,n,escape", "answer('reject')", "reject"),
    ]

    class Answered(Message):
        def __init__(self, prompt: PermissionPrompt, answer: str) -> None:
            super().__init__()
            self.prompt = prompt
            self.answer = answer

    def __init__(self, tool: str, subject: str, reason: str, *, destructive: bool = False) -> None:
        super().__init__(classes="permission-prompt")
        self.tool = tool
        self.subject = subject
        self.reason = reason
        self.destructive = destructive
        self.future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.shown_at = time.monotonic()
        self.answer: str | None = None

    def compose(self) -> ComposeResult:
        head = Text("⚠ permission needed: " if not self.destructive else "⚠ DESTRUCTIVE: ", style="bold")
        head.append(f"{self.tool} ", style="bold")
        head.append(self.subject)
        yield Static(head, classes="permission-head")
        yield Static(Text(self.reason, style="italic"), classes="permission-reason")
        yield Static(Text("[a] allow once   [A] always allow   [r] reject"), classes="permission-keys")

    def on_mount(self) -> None:
        self.shown_at = time.monotonic()

    def action_answer(self, answer: str) -> None:
        if self.answer is not None or time.monotonic() - self.shown_at < PERMISSION_GRACE_S:
            return
        self.resolve(answer)

    def resolve(self, answer: str) -> None:
        """Settle the prompt (also used by tests and by the app when the agent stops)."""
        if self.answer is not None:
            return
        self.answer = answer
        if not self.future.done():
            self.future.set_result(answer)
        label = {"allow_once": "allowed once", "allow_always": "always allowed", "reject": "rejected"}
        self.query_one(".permission-keys", Static).update(Text(f"→ {label.get(answer, answer)}"))
        self.add_class("answered")
        self.can_focus = False
        self.post_message(self.Answered(self, answer))


class ChatView(VerticalScroll):
    """The conversation; only the last ``max_blocks`` blocks stay mounted."""

    def __init__(self, *, max_blocks: int = 120, prune_step: int = 30, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_blocks = max_blocks
        self.prune_step = prune_step  # prune in batches: one relayout per batch, not per block
        self.pruned = 0
        self._pruned_note: Notice | None = None

    async def add(self, widget: Widget) -> Widget:
        follow = self.is_vertical_scroll_end or self.max_scroll_y == 0
        await self.mount(widget)
        await self._prune()
        if follow:
            self.scroll_end(animate=False)
        return widget

    async def add_many(self, widgets: list[Widget]) -> None:
        """Mount a batch (e.g. a loaded transcript) with one layout pass; only the tail is kept."""
        keep = widgets[-(self.max_blocks + self.prune_step) :]
        self.pruned += len(widgets) - len(keep)
        await self.mount_all(keep)
        await self._prune()
        self.scroll_end(animate=False)

    async def _prune(self) -> None:
        blocks = [child for child in self.children if child is not self._pruned_note]
        if len(blocks) <= self.max_blocks + self.prune_step:
            return
        excess = len(blocks) - self.max_blocks
        victims = [b for b in blocks[:excess] if not isinstance(b, PermissionPrompt) or b.answer]
        self.pruned += len(victims)
        await self.remove_children(victims)
        text = f"({self.pruned} earlier blocks hidden; the full conversation is in the session file)"
        if self._pruned_note is None:
            self._pruned_note = Notice(text, "info")
            await self.mount(self._pruned_note, before=0)
        else:
            self._pruned_note.update(Text(text))

    def blocks(self) -> list[Widget]:
        return [child for child in self.children if child is not self._pruned_note]


class ChatRenderer:
    """Turns agent events into chat blocks: streamed text, tool calls updated in place."""

    def __init__(self, view: ChatView) -> None:
        self.view = view
        self.current: AssistantMessage | None = None
        self.tools: dict[str, ToolBlock] = {}

    async def handle(self, event: Any) -> None:
        kind = getattr(event, "kind", "")
        if kind == "text_delta":
            if self.current is None:
                self.current = AssistantMessage()
                await self.view.add(self.current)
            await self.current.append_text(event.text)
            if self.view.is_vertical_scroll_end or self.view.max_scroll_y <= self.view.scroll_y + 3:
                self.view.scroll_end(animate=False)
        elif kind in ("turn_end", "stopped"):
            await self._end_text()
            if kind == "stopped" and event.status not in ("completed",):
                level = "warning" if event.status == "interrupted" else "error"
                await self.view.add(Notice(f"agent stopped: {event.status}: {event.reason}", level))
        elif kind == "tool_call_start":
            await self._end_text()
            block = ToolBlock(event.call_id, event.name, _args(event.arguments))
            self.tools[event.call_id] = block
            await self.view.add(block)
        elif kind == "tool_call_end":
            found = self.tools.pop(event.call_id, None)
            if found is None:
                found = ToolBlock(event.call_id, event.name, {})
                await self.view.add(found)
            found.finish(event.output, is_error=event.is_error, diff=(event.metadata or {}).get("diff"))
        elif kind == "compaction":
            await self.view.add(
                Notice(
                    f"history compacted ({event.method}): {event.tokens_before} → {event.tokens_after} tokens"
                )
            )
        elif kind == "budget_warning":
            await self.view.add(Notice(f"{event.limit}: {event.message}", "warning"))
        elif kind == "steered" and event.skipped_tool_calls:
            await self.view.add(Notice(f"steered: skipped {event.skipped_tool_calls} queued tool call(s)"))

    async def _end_text(self) -> None:
        if self.current is not None:
            await self.current.finish()
            self.current = None


def _args(raw: str) -> dict[str, Any]:
    import json

    try:
        value = json.loads(raw or "{}")
    except ValueError:
        return {"args": raw}
    return value if isinstance(value, dict) else {"args": raw}
