"""The prompts pane: pending human gates from every run, answered from the keyboard.

confirm: y / n; select: arrows + Enter; input: type + Enter; editor: type, Ctrl+S sends.
Each answer is posted as :class:`PromptsPane.Answer`; the app sends it to the engine.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Input, Static

from loopcraft.engine.names import short_id, step_path
from loopcraft.tui.chat import PERMISSION_GRACE_S

if TYPE_CHECKING:  # imported when a prompt needs them: TextArea alone costs ~5% of start-up
    from textual.widgets import OptionList


@dataclass
class PendingPrompt:
    prompt_id: str
    run_id: str
    key: str
    kind: str  # confirm | select | input | editor
    question: str
    options: list[Any] | None = None
    default: Any = None
    workflow: str = ""  # the run's workflow: the gate reads as ``demo › confirm``


class PromptCard(Vertical, can_focus=True):
    """One pending prompt with the widget its kind needs."""

    BINDINGS = [
        Binding("y", "confirm(True)", "yes", show=False, tooltip="confirm prompt: yes"),
        Binding("n", "confirm(False)", "no", show=False, tooltip="confirm prompt: no"),
        Binding("ctrl+s", "send_editor", "send", show=False, tooltip="editor prompt: send the text"),
    ]

    def __init__(self, prompt: PendingPrompt) -> None:
        super().__init__(classes=f"prompt-card prompt-{prompt.kind}")
        self.prompt = prompt
        self.shown_at = time.monotonic()

    def compose(self) -> ComposeResult:
        prompt = self.prompt
        head = Text(f"? {prompt.question}", style="bold")
        head.append(
            f"   run {short_id(prompt.run_id)} · {step_path(prompt.key, prompt.workflow or None)}",
            style="dim",
        )
        yield Static(head)
        if prompt.kind == "confirm":
            yield Static(Text("[y] yes   [n] no"), classes="prompt-keys")
        elif prompt.kind == "select":
            from textual.widgets import OptionList

            yield OptionList(*[str(o) for o in prompt.options or []], classes="prompt-options")
        elif prompt.kind == "editor":
            from textual.widgets import TextArea

            yield TextArea(str(prompt.default or ""), classes="prompt-editor")
            yield Static("Ctrl+S sends", classes="prompt-keys")
        else:
            yield Input(
                value=str(prompt.default or ""), placeholder="answer, then Enter", classes="prompt-input"
            )

    def focus_answer(self) -> None:
        target = next((w for w in self.query("OptionList, TextArea, Input") if w.can_focus), None)
        (target or self).focus()

    def _ready(self) -> bool:
        return time.monotonic() - self.shown_at >= PERMISSION_GRACE_S

    def _send(self, answer: Any) -> None:
        if self._ready():
            self.post_message(PromptsPane.Answer(self.prompt, answer))

    def action_confirm(self, value: bool) -> None:
        if self.prompt.kind == "confirm":
            self._send(value)

    def action_send_editor(self) -> None:
        if self.prompt.kind == "editor":
            from textual.widgets import TextArea

            self._send(self.query_one(TextArea).text)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._send(event.value)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        options = self.prompt.options or []
        self._send(
            options[event.option_index] if event.option_index < len(options) else str(event.option.prompt)
        )


class PromptsPane(Vertical, can_focus=True):
    """Every pending prompt; ``add`` rings the bell and notifies. Focused itself (F4 with prompts
    in several runs and none picked), no card is armed: y / n only say to pick one first."""

    BINDINGS = [
        Binding("y", "unpicked", "yes", show=False),
        Binding("n", "unpicked", "no", show=False),
        Binding("enter", "pick_first", "pick", show=False),
    ]

    @dataclass
    class Answer(Message):
        prompt: PendingPrompt
        answer: Any

    class Unpicked(Message):
        """y / n pressed with no prompt chosen: nothing is answered."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pending: dict[str, PendingPrompt] = {}

    def compose(self) -> ComposeResult:
        yield Static("Prompts (none pending)", classes="pane-title", id="prompts-title")

    async def add(self, prompt: PendingPrompt) -> bool:
        """Show ``prompt``; False when it was already shown."""
        if prompt.prompt_id in self.pending:
            return False
        self.pending[prompt.prompt_id] = prompt
        await self.mount(PromptCard(prompt))
        self._retitle()
        return True

    async def resolve(self, prompt_id: str) -> None:
        self.pending.pop(prompt_id, None)
        for card in self.query(PromptCard):
            if card.prompt.prompt_id == prompt_id:
                await card.remove()
        self._retitle()

    async def drop_run(self, run_id: str) -> None:
        """Remove every prompt of ``run_id`` (the run ended: its gates take no answer)."""
        for prompt_id in [p.prompt_id for p in self.pending.values() if p.run_id == run_id]:
            await self.resolve(prompt_id)

    def action_unpicked(self) -> None:
        self.post_message(self.Unpicked())

    def action_pick_first(self) -> None:
        self.focus_first()

    def focus_first(self, prompt_id: str | None = None) -> bool:
        """Focus the answer widget of prompt ``prompt_id`` (else the first card); False if none."""
        cards = list(self.query(PromptCard))
        chosen = next((c for c in cards if c.prompt.prompt_id == prompt_id), cards[0] if cards else None)
        if chosen is not None:
            chosen.scroll_visible()
            chosen.focus_answer()
        return chosen is not None

    def focus_prompt(self, run_id: str, key: str) -> bool:
        """Focus the answer widget of the pending prompt of gate ``key`` in ``run_id``; False if none."""
        card = next(
            (c for c in self.query(PromptCard) if (c.prompt.run_id, c.prompt.key) == (run_id, key)), None
        )
        if card is not None:
            card.scroll_visible()
            card.focus_answer()
        return card is not None

    def _retitle(self) -> None:
        count = len(self.pending)
        title = f"Prompts ({count} pending)" if count else "Prompts (none pending)"
        self.query_one("#prompts-title", Static).update(title)
        self.set_class(bool(count), "has-prompts")
        self.can_focus = bool(count)  # in the focus chain only with a card to pick
