"""The status bar: model, tokens, cost, context %, active runs, pending prompts, agent state."""

from __future__ import annotations

from dataclasses import dataclass, replace

from rich.text import Text
from textual.widgets import Static


@dataclass(frozen=True)
class StatusInfo:
    model: str = "…"
    tokens: int = 0
    cost: float = 0.0
    context_pct: float = 0.0
    active_runs: int = 0
    pending_prompts: int = 0
    state: str = "idle"  # idle | running | waiting for you | interrupted …
    permission_mode: str = "default"
    queued: int = 0
    activity: str = ""  # the spinner while a model call runs: "⠹ 3.2s · ~120 tok"


def format_tokens(count: int) -> str:
    if count >= 1_000_000:
        return f"{count / 1_000_000:.1f}M"
    if count >= 1_000:
        return f"{count / 1_000:.1f}k"
    return str(count)


def format_elapsed(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


SPINNER_FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


def spinner_text(elapsed: float, tokens: int) -> str:
    """The in-flight model call: a spinner frame (from the elapsed time), elapsed and tokens so far."""
    frame = SPINNER_FRAMES[int(elapsed * 10) % len(SPINNER_FRAMES)]
    return f"{frame} {format_elapsed(elapsed)} · ~{format_tokens(tokens)} tok"


def render_status(info: StatusInfo) -> Text:
    """The one-line status text (pure, so it is unit-testable)."""
    text = Text()
    text.append(f" {info.model} ", style="bold reverse")
    text.append(f" {info.state}")
    if info.activity:
        text.append(f" {info.activity}", style="bold")
    if info.queued:
        text.append(f" (+{info.queued} queued)")
    text.append(f" │ {format_tokens(info.tokens)} tok │ ${info.cost:.4f} │ ctx {info.context_pct:.0f}%")
    text.append(f" │ {info.permission_mode}")
    text.append(f" │ active {info.active_runs}")  # runs pending, running, paused or awaiting input
    prompts = f" │ prompts {info.pending_prompts} "
    text.append(prompts, style="bold reverse" if info.pending_prompts else "")
    return text


def hint_text(*, attached: bool = False) -> Text:
    """The key-hint line under the input (what the keys do right now)."""
    if attached:
        hints = [("Enter", "steer stage"), ("Tab/Alt+Enter", "follow-up"), ("Esc", "detach")]
    else:
        hints = [("Enter", "send"), ("Tab/Alt+Enter", "queue"), ("Esc", "interrupt")]
    hints += [("F1", "keys"), ("Ctrl+J", "new line"), ("Ctrl+P", "commands"), ("F2 F3 F4", "panes")]
    text = Text(" ")
    for index, (key, what) in enumerate(hints):
        if index:
            text.append(" · ", style="dim")
        text.append(key, style="bold")
        text.append(f" {what}", style="dim")
    return text


class StatusBar(Static):
    """A one-line bar at the bottom; ``update_info(**changes)`` re-renders it."""

    DEFAULT_CSS = """
    StatusBar { height: 1; dock: bottom; background: $panel; color: $foreground; }
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__("", **kwargs)  # type: ignore[arg-type]
        self.info = StatusInfo()

    def on_mount(self) -> None:
        self.update(render_status(self.info))

    def update_info(self, **changes: object) -> None:
        new = replace(self.info, **changes)  # type: ignore[arg-type]
        if new != self.info:
            self.info = new
            self.update(render_status(new))
