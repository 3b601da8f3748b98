"""The app's keys, read from its bindings: one table that the F1 key panel, ``/help keys`` and
the README's key table all show (a test checks the README against it).

Each row comes from a :class:`~textual.binding.Binding` (its ``tooltip`` says what it does);
keys that Textual's own widgets handle (Enter on a run or a stage) are listed in
:data:`WIDGET_KEYS`, next to the widgets they belong to.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

KEY_NAMES = {
    "escape": "Esc",
    "enter": "Enter",
    "tab": "Tab",
    "up": "Up",
    "down": "Down",
    "question_mark": "?",
}


@dataclass(frozen=True)
class KeyRow:
    where: str
    keys: str
    does: str


def key_label(key: str) -> str:
    """``ctrl+shift+enter`` as ``Ctrl+Shift+Enter``, ``f1`` as ``F1``, ``escape`` as ``Esc``."""
    *mods, last = key.split("+")
    last_label = last.upper() if mods and len(last) == 1 else _part_label(last)
    return "+".join([*(_part_label(mod) for mod in mods), last_label])


def _part_label(part: str) -> str:
    if part in KEY_NAMES:
        return KEY_NAMES[part]
    if len(part) == 1:
        return part  # letters keep their case: a and A are different keys
    if part[0] == "f" and part[1:].isdigit():
        return part.upper()
    return part.title()


def rows_from(where: str, bindings: Iterable[Binding | tuple[str, ...]]) -> list[KeyRow]:
    """One row per binding that says what it does (its tooltip); bindings with the same
    tooltip are merged into one row (``F2 / F3``)."""
    rows: dict[str, list[str]] = {}
    for binding in bindings:
        if not isinstance(binding, Binding) or not binding.tooltip:
            continue
        labels = [binding.key_display or key_label(key.strip()) for key in binding.key.split(",")]
        rows.setdefault(binding.tooltip, []).extend(labels)
    return [KeyRow(where, " / ".join(dict.fromkeys(labels)), does) for does, labels in rows.items()]


WIDGET_KEYS = (
    KeyRow("runs, graph", "Enter", "on a run: show its graph; on a stage: attach (on a gate: its prompt)"),
    KeyRow("prompts", "Up / Down / Enter", "select prompts: choose; input prompts: Enter sends"),
)


def key_table() -> list[KeyRow]:
    """Every key the app binds, where it works and what it does."""
    from loopcraft.tui.app import LoopcraftApp
    from loopcraft.tui.chat import PermissionPrompt
    from loopcraft.tui.panes.prompts import PromptCard
    from loopcraft.tui.prompt_input import PromptInput

    return [
        *rows_from("anywhere", LoopcraftApp.BINDINGS),
        *rows_from("prompt", PromptInput.BINDINGS),
        KeyRow("prompt", "?", "on an empty prompt: show these keys"),
        *WIDGET_KEYS,
        *rows_from("prompt card", PromptCard.BINDINGS),
        *rows_from("permission", PermissionPrompt.BINDINGS),
    ]


def keys_text(rows: list[KeyRow] | None = None) -> str:
    """The table as aligned plain text (``/help keys``, the F1 panel)."""
    rows = rows if rows is not None else key_table()
    width = max(len(r.keys) for r in rows)
    where = max(len(r.where) for r in rows)
    return "\n".join(f"{r.where.ljust(where)}  {r.keys.ljust(width)}  {r.does}" for r in rows)


def markdown_table(rows: list[KeyRow] | None = None) -> str:
    """The table as the README shows it."""
    rows = rows if rows is not None else key_table()
    lines = ["| where | key | does |", "|---|---|---|"]
    lines += [f"| {r.where} | {r.keys} | {r.does} |" for r in rows]
    return "\n".join(lines)


def _rich_table(rows: list[KeyRow]) -> Table:
    """The rows as columns whose descriptions wrap in place (the F1 panel)."""
    table = Table(box=None, show_header=True, header_style="bold", expand=True, pad_edge=False)
    table.add_column("where", style="dim", no_wrap=True)
    table.add_column("key", style="bold", no_wrap=True)
    table.add_column("does", ratio=1)
    for row in rows:
        table.add_row(row.where, row.keys, row.does)
    return table


class KeyPanel(ModalScreen[None]):
    """F1 (or ``?`` on an empty prompt): the key table over the app; Esc, F1 or q closes it."""

    DEFAULT_CSS = """
    KeyPanel { align: center middle; }
    KeyPanel > VerticalScroll {
        width: 90%; height: auto; max-height: 90%;
        border: round $primary; background: $surface; padding: 0 1;
    }
    KeyPanel Static { width: 100%; }
    KeyPanel .key-panel-title { text-style: bold; }
    """
    BINDINGS = [Binding("escape,f1,q", "dismiss", "close", show=False)]

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static("keys (Esc closes; /help lists the commands)", classes="key-panel-title")
            yield Static(_rich_table(key_table()), id="key-table")


if __name__ == "__main__":  # .venv/bin/python -m loopcraft.tui.keys: the README's table
    print(markdown_table())
