"""The input line: slash-command completion (a Textual Suggester), history on up/down,
and Alt+Enter to queue a follow-up."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from textual.binding import Binding
from textual.message import Message
from textual.suggester import Suggester
from textual.widgets import Input

from loopcraft.tui.commands import complete


@dataclass
class History:
    """Entered lines, browsed with up/down; the line being typed is kept while browsing."""

    entries: list[str] = field(default_factory=list)
    limit: int = 500
    _index: int | None = None
    _draft: str = ""

    def add(self, line: str) -> None:
        if line.strip() and (not self.entries or self.entries[-1] != line):
            self.entries.append(line)
            del self.entries[: -self.limit]
        self._index = None

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


class CommandSuggester(Suggester):
    """Suggests the first completion of a partial slash command."""

    def __init__(self, dynamic: Callable[[], dict[str, list[str]]]) -> None:
        super().__init__(use_cache=False, case_sensitive=True)
        self._dynamic = dynamic

    async def get_suggestion(self, value: str) -> str | None:
        if not value.startswith("/"):
            return None
        options = complete(value, self._dynamic())
        return options[0] if options else None


class PromptInput(Input):
    """Enter submits (steers while the agent runs); Alt+Enter queues a follow-up."""

    BINDINGS = [
        Binding("up", "history_previous", "previous", show=False),
        Binding("down", "history_next", "next", show=False),
        Binding("alt+enter,ctrl+j", "queue", "queue follow-up", show=False),
        Binding("tab", "accept_suggestion", "complete", show=False),
    ]

    class Queued(Message):
        """The user asked to queue ``value`` as a follow-up."""

        def __init__(self, value: str) -> None:
            super().__init__()
            self.value = value

    def __init__(self, dynamic: Callable[[], dict[str, list[str]]], **kwargs: object) -> None:
        super().__init__(suggester=CommandSuggester(dynamic), **kwargs)  # type: ignore[arg-type]
        self.history = History()

    def _set(self, value: str) -> None:
        self.value = value
        self.cursor_position = len(value)

    def action_history_previous(self) -> None:
        self._set(self.history.previous(self.value))

    def action_history_next(self) -> None:
        self._set(self.history.next(self.value))

    def action_accept_suggestion(self) -> None:
        if self._suggestion and self._suggestion != self.value:
            self._set(self._suggestion)
        else:
            self.app.action_focus_next()

    def action_queue(self) -> None:
        value = self.value.strip()
        if value:
            self.history.add(value)
            self.value = ""
            self.post_message(self.Queued(value))
