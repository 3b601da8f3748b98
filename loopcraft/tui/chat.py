"""The chat pane's widgets: user and assistant messages (streaming markdown), tool calls
that update in place with collapsible output and diffs, notices and errors, the inline
permission prompt, and a scrolling view that keeps only the last N blocks mounted."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Collapsible, Static

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


class CommandEcho(Static):
    """A slash command as typed, dimmed, above its output."""

    def __init__(self, text: str) -> None:
        super().__init__(Text(f"› {text}"), classes="command-echo")
        self.text = text


class AssistantMessage(Widget):
    """The model's answer as markdown, drawn statically: one cheap widget per message.

    While it streams, fragments are buffered and the widget is redrawn at most every
    ``FLUSH_S``. A long answer is cut at block boundaries into several messages (the
    :class:`ChatRenderer` starts a ``continued`` one), so each redraw stays small.
    """

    FLUSH_S = 0.15
    CHUNK_CHARS = 2_000

    def __init__(self, text: str = "", *, continued: bool = False) -> None:
        super().__init__(classes="assistant-message" + (" continued" if continued else ""))
        self.text = text
        self._drawn: tuple[str, Any] | None = None
        self._flush_pending = False

    def render(self) -> Any:
        if self._drawn is None or self._drawn[0] != self.text:
            self._drawn = (self.text, render_markdown(self.text))
        return self._drawn[1]

    async def append_text(self, fragment: str) -> None:
        self.text += fragment
        if not self._flush_pending and self.is_mounted:
            self._flush_pending = True
            self.set_timer(self.FLUSH_S, self._flush)

    async def finish(self) -> None:
        self._flush()

    def cut(self, cut: Cut) -> str:
        """Keep the text before ``cut`` (drawn now) and return the rest, for a continuation."""
        rest = cut.reopen + self.text[cut.at :]
        self.text = self.text[: cut.at] + cut.close
        self._flush()
        return rest

    def _flush(self) -> None:
        self._flush_pending = False
        if self.is_mounted:
            self.refresh(layout=True)
            if isinstance(self.parent, ChatView):
                self.parent.follow()


@dataclass(frozen=True)
class Cut:
    """Where to cut a streaming answer in two, and how to keep both halves valid markdown."""

    at: int
    close: str = ""  # appended to the first half (closes a code fence cut in the middle)
    reopen: str = ""  # prepended to the second half (reopens that fence)


def find_cut(text: str, min_chars: int) -> Cut | None:
    """A place to cut ``text`` after at least ``min_chars``, so that redrawing a streaming
    answer only redraws its last part: after the last complete block (a blank line outside
    code) if there is one; once the text is twice ``min_chars`` long, at the last line break
    (a code block is closed and reopened) or, in one huge paragraph, the last space."""
    if len(text) < min_chars:
        return None
    fence: str | None = None  # the opening line of the fence we are in
    block_end = line_end = None
    line_fence: str | None = None
    position = 0
    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        if stripped.startswith(("```", "~~~")):
            fence = None if fence is not None else line.rstrip("\r\n")
        position += len(line)
        if not line.endswith("\n") or position >= len(text) or position < min_chars:
            continue
        if not stripped and fence is None:
            block_end = position
        line_end, line_fence = position, fence
    if block_end is not None:
        return Cut(block_end)
    if len(text) < 2 * min_chars:
        return None
    if line_end is not None:
        if line_fence is not None:
            marker = line_fence.lstrip()[:3]
            return Cut(line_end, close=marker + "\n", reopen=line_fence + "\n")
        return Cut(line_end)
    space = text.rfind(" ", min_chars, len(text) - 1)
    return Cut(space + 1) if space > 0 else None


def render_markdown(text: str) -> Any:
    """A rich renderable of ``text`` as markdown (headings left-aligned, like the rest of the chat)."""
    from loopcraft.tui.markdown import render

    return render(text)


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
            from rich.syntax import Syntax  # pygments: loaded with the first diff, not at startup

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
        Binding("a,y", "answer('allow_once')", "allow once", tooltip="allow this call once"),
        Binding("A", "answer('allow_always')", "always", tooltip="always allow such calls (this session)"),
        Binding("r,n,escape", "answer('reject')", "reject", tooltip="reject the call"),
    ]

    @dataclass
    class Answered(Message):
        prompt: PermissionPrompt
        answer: str

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
    """The conversation, windowed: only the last ``max_blocks`` blocks stay mounted.

    ``add`` queues a block and returns at once; queued blocks are mounted together on the
    next turn of the view's message loop, and only the ones that would survive pruning are
    mounted at all, so a burst (a loaded transcript, thousands of messages) costs one
    layout, not one per block. ``settle()`` waits until everything queued is mounted. The
    view stays scrolled to the end while new blocks arrive, unless the user scrolled up.
    """

    def __init__(self, *, max_blocks: int = 120, prune_step: int = 30, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_blocks = max_blocks
        self.prune_step = prune_step  # prune in batches: one relayout per batch, not per block
        self.pruned = 0
        self._pruned_note: Notice | None = None
        self._queue: list[Widget] = []
        self._settled: asyncio.Event | None = None
        self.following = True

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        self.following = new >= self.max_scroll_y - 1

    def follow(self) -> None:
        """Keep the newest content in view, unless the user scrolled up to read."""
        if self.following:
            self.scroll_end(animate=False)

    async def add(self, widget: Widget) -> Widget:
        """Queue ``widget`` at the end of the conversation; it is mounted on the next turn."""
        self._queue.append(widget)
        if len(self._queue) > 2 * (self.max_blocks + self.prune_step):
            self._trim_queue()
        if len(self._queue) == 1:
            self._settled_event().clear()
            self.call_later(self._flush)
        return widget

    def _trim_queue(self) -> None:
        """Drop queued blocks that would be pruned anyway (never an unanswered prompt)."""
        kept = _tail_keeping_prompts(self._queue, self.max_blocks + self.prune_step)
        self.pruned += len(self._queue) - len(kept)
        self._queue = kept

    async def add_many(self, widgets: list[Widget]) -> None:
        for widget in widgets:
            await self.add(widget)

    async def settle(self) -> None:
        """Wait until every queued block is mounted (or pruned)."""
        if self._queue:
            await self._settled_event().wait()

    def _settled_event(self) -> asyncio.Event:
        if self._settled is None:
            self._settled = asyncio.Event()
            self._settled.set()
        return self._settled

    async def _flush(self) -> None:
        queue, self._queue = self._queue, []
        if not queue:
            return
        keep = _tail_keeping_prompts(queue, self.max_blocks + self.prune_step)
        self.pruned += len(queue) - len(keep)
        try:
            await self.mount_all(keep)
            await self._prune()
            self.follow()
        finally:
            if not self._queue:
                self._settled_event().set()

    async def _prune(self) -> None:
        blocks = [child for child in self.children if child is not self._pruned_note]
        if len(blocks) > self.max_blocks + self.prune_step:
            excess = len(blocks) - self.max_blocks
            victims = [b for b in blocks[:excess] if not isinstance(b, PermissionPrompt) or b.answer]
            self.pruned += len(victims)
            await self.remove_children(victims)
        if not self.pruned:
            return
        text = f"({self.pruned} earlier blocks hidden; the full conversation is in the session file)"
        if self._pruned_note is None:
            self._pruned_note = Notice(text, "info")
            await self.mount(self._pruned_note, before=0)
        else:
            self._pruned_note.text = text
            self._pruned_note.update(Text(text))

    async def clear(self) -> None:
        """Remove every block (a new conversation)."""
        self._queue.clear()
        self._settled_event().set()
        self.pruned = 0
        self._pruned_note = None
        self.following = True
        await self.remove_children()

    def blocks(self) -> list[Widget]:
        """The conversation's blocks, oldest first: mounted ones, then queued ones."""
        mounted = [child for child in self.children if child is not self._pruned_note]
        return [*mounted, *self._queue]


def _tail_keeping_prompts(widgets: list[Widget], count: int) -> list[Widget]:
    """The last ``count`` widgets, plus any earlier permission prompt still waiting for an answer."""
    cut = max(0, len(widgets) - count)
    waiting = [w for w in widgets[:cut] if isinstance(w, PermissionPrompt) and not w.answer]
    return [*waiting, *widgets[cut:]]


class ChatRenderer:
    """Turns agent events into chat blocks: streamed text, tool calls updated in place."""

    def __init__(self, view: ChatView) -> None:
        self.view = view
        self.current: AssistantMessage | None = None
        self._next_cut_check = AssistantMessage.CHUNK_CHARS
        self.tools: dict[str, ToolBlock] = {}

    async def handle_many(self, events: list[Any]) -> None:
        """A batch of events, with runs of text deltas appended as one piece of text."""
        text: list[str] = []
        for event in events:
            if getattr(event, "kind", "") == "text_delta":
                text.append(event.text)
                continue
            if text:
                await self._append("".join(text))
                text.clear()
            await self.handle(event)
        if text:
            await self._append("".join(text))

    async def handle(self, event: Any) -> None:
        kind = getattr(event, "kind", "")
        if kind == "text_delta":
            await self._append(event.text)
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

    async def _append(self, text: str) -> None:
        if self.current is None:
            self.current = AssistantMessage()
            self._next_cut_check = AssistantMessage.CHUNK_CHARS
            await self.view.add(self.current)
        current = self.current
        await current.append_text(text)
        if len(current.text) < self._next_cut_check:
            return
        cut = find_cut(current.text, AssistantMessage.CHUNK_CHARS)
        if cut is None:  # nowhere to cut yet: look again after another half chunk
            self._next_cut_check = len(current.text) + AssistantMessage.CHUNK_CHARS // 2
            return
        self.current = AssistantMessage(current.cut(cut), continued=True)
        self._next_cut_check = AssistantMessage.CHUNK_CHARS
        await self.view.add(self.current)

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
