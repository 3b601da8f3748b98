"""The prompt: a multi-line text area (Enter sends, Shift+Enter or Ctrl+J adds a line, a paste
keeps every line), slash-command completion shown inline (Tab accepts), history on Up/Down
kept across sessions, and Alt+Enter to queue a follow-up."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from textual import events
from textual.binding import Binding
from textual.message import Message
from textual.widgets import TextArea

from loopcraft.tui.commands import complete

HISTORY_FILE = "history.jsonl"  # under the user's loopcraft folder (LOOPCRAFT_HOME, ~/.loopcraft)


def history_path() -> Path:
    """Where prompt history is kept: one JSON string a line, owner-only (0600)."""
    from loopcraft.paths import home_dir

    return home_dir() / HISTORY_FILE


@dataclass
class History:
    """Entered prompts, browsed with Up/Down; the prompt being typed is kept while browsing.
    With a ``path`` they are loaded from it and each new one is appended to it."""

    entries: list[str] = field(default_factory=list)
    limit: int = 500
    path: Path | None = None
    _index: int | None = None
    _draft: str = ""

    @classmethod
    def load(cls, path: Path, limit: int = 500) -> History:
        """The history saved at ``path`` (empty when missing or unreadable)."""
        entries: list[str] = []
        with contextlib.suppress(OSError, UnicodeDecodeError):
            for line in path.read_text(encoding="utf-8").splitlines():
                with contextlib.suppress(ValueError):
                    value = json.loads(line)
                    if isinstance(value, str) and value.strip():
                        entries.append(value)
        history = cls(entries[-limit:], limit, path)
        if len(entries) > 2 * limit:
            history._rewrite()
        return history

    def add(self, line: str) -> None:
        if line.strip() and (not self.entries or self.entries[-1] != line):
            self.entries.append(line)
            del self.entries[: -self.limit]
            self._append(line)
        self._index = None

    def _open(self, mode: str) -> int:
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(
            self.path, os.O_WRONLY | os.O_CREAT | (os.O_APPEND if mode == "a" else os.O_TRUNC), 0o600
        )
        os.fchmod(fd, 0o600)
        return fd

    def _append(self, line: str) -> None:
        if self.path is None:
            return
        with contextlib.suppress(OSError), os.fdopen(self._open("a"), "a", encoding="utf-8") as fh:
            fh.write(json.dumps(line) + "\n")

    def _rewrite(self) -> None:
        with contextlib.suppress(OSError), os.fdopen(self._open("w"), "w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(entry) + "\n" for entry in self.entries)

    def previous(self, current: str) -> str:
        if not self.entries:
            return current
        if self._index is None:
            self._draft, self._index = current, len(self.entries)
        self._index = max(0, self._index - 1)
        return self.entries[self._index]

    def next(self, current: str) -> str:
        if self._index is None:
            return current
        self._index += 1
        if self._index >= len(self.entries):
            self._index = None
            return self._draft
        return self.entries[self._index]


def completion(text: str, dynamic: dict[str, list[str]]) -> str | None:
    """The whole line Tab would make of ``text`` (a slash command), or None."""
    if not text.startswith("/") or "\n" in text:
        return None
    options = complete(text, dynamic)
    return options[0] if options else None


class PromptInput(TextArea):
    """Enter submits (steers while the agent runs); Alt+Enter queues a follow-up."""

    BINDINGS: ClassVar[list[Binding | tuple[str, str] | tuple[str, str, str]]] = [
        Binding(
            "enter",
            "submit",
            "send",
            show=False,
            tooltip="send; while the agent works, steer it (or the attached stage)",
        ),
        Binding("shift+enter,ctrl+j", "newline", "new line", show=False, tooltip="add a line to the prompt"),
        Binding(
            "alt+enter",
            "queue",
            "queue follow-up",
            show=False,
            tooltip="queue a follow-up, delivered when the agent (or attached stage) would stop",
        ),
        Binding(
            "up", "history_previous", "previous", show=False, tooltip="on the first line: earlier prompts"
        ),
        Binding("down", "history_next", "next", show=False, tooltip="on the last line: later prompts"),
        Binding(
            "tab",
            "accept_suggestion",
            "complete",
            show=False,
            tooltip="accept the suggested completion; with none, while the agent works: queue the prompt "
            "(like Alt+Enter, for terminals that do not send Alt+Enter)",
        ),
    ]

    _own_keys = {key: b.action for b in BINDINGS if isinstance(b, Binding) for key in b.key.split(",")}

    class Submitted(Message):
        """The user sent ``value`` (Enter)."""

        def __init__(self, input: PromptInput, value: str) -> None:
            super().__init__()
            self.input = input
            self.value = value

        @property
        def control(self) -> PromptInput:
            return self.input

    class Queued(Message):
        """The user asked to queue ``value`` as a follow-up."""

        def __init__(self, value: str) -> None:
            super().__init__()
            self.value = value

    class KeysWanted(Message):
        """``?`` on an empty prompt: show the keys."""

    def __init__(
        self,
        dynamic: Callable[[], dict[str, list[str]]],
        *,
        history: History | None = None,
        busy: Callable[[], bool] = lambda: False,
        **kwargs: object,
    ) -> None:
        super().__init__(
            soft_wrap=True,
            show_line_numbers=False,
            highlight_cursor_line=False,
            tab_behavior="focus",
            **kwargs,  # type: ignore[arg-type]
        )
        self._dynamic = dynamic
        self._busy = busy  # is the agent (or the attached stage) working? Tab then queues
        self._suggestion: str | None = None  # the whole line a Tab would make
        self.prompt_history = history if history is not None else History()

    # ----- the text as one value -----------------------------------------------------------

    @property
    def value(self) -> str:
        return self.text

    @value.setter
    def value(self, value: str) -> None:
        self.load_text(value)
        self.move_cursor(self.document.end)
        self.update_suggestion()

    def update_suggestion(self) -> None:
        """Suggest the first completion of a slash command, when the cursor is at the end."""
        dynamic = getattr(self, "_dynamic", None)
        if dynamic is None:  # called by TextArea while it is being built
            return
        text = self.text
        line = completion(text, dynamic()) if self.cursor_location == self.document.end else None
        self._suggestion = line
        self.suggestion = line[len(text) :] if line and line.startswith(text) else ""

    # ----- keys ----------------------------------------------------------------------------

    async def _on_key(self, event: events.Key) -> None:
        action = self._own_keys.get(event.key)
        if action is not None:
            # Run at once, in the order typed: a binding would run only once the key bubbled up
            # to the app, after keys typed behind it (and TextArea would insert Enter itself).
            event.stop()
            event.prevent_default()
            await self.run_action(action)
            return
        if event.character == "?" and not self.text:
            event.stop()
            event.prevent_default()
            self.post_message(self.KeysWanted())
            return
        await super()._on_key(event)

    def action_submit(self) -> None:
        self.post_message(self.Submitted(self, self.text))

    def action_newline(self) -> None:
        start, end = self.selection  # as typing does: replace the selection, the cursor after it
        self.replace("\n", start, end, maintain_selection_offset=False)

    def action_history_previous(self) -> None:
        if self.cursor_location[0] > 0 or not self.selection.is_empty:
            self.action_cursor_up()
            return
        self.value = self.prompt_history.previous(self.text)

    def action_history_next(self) -> None:
        if self.cursor_location[0] < self.document.line_count - 1 or not self.selection.is_empty:
            self.action_cursor_down()
            return
        self.value = self.prompt_history.next(self.text)

    def action_accept_suggestion(self) -> None:
        """Complete the line (with the space that starts the next word); with nothing to
        complete, queue the prompt while the agent works, else do nothing (the prompt keeps
        the focus)."""
        line = self._suggestion
        if line and line != self.text:
            self.value = line if line.endswith("=") else line + " "
        elif self._busy():
            self.action_queue()

    def action_queue(self) -> None:
        value = self.text.strip()
        if value:
            self.prompt_history.add(value)
            self.value = ""
            self.post_message(self.Queued(value))
