"""``/stats [WORKFLOW]``: ``loopcraft stats`` in a modal screen, each workflow's report with Textual
``Sparkline`` widgets of its cost per run and completion rate over time (oldest on the left)."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Sparkline, Static

from loopcraft.engine.stats import stats_lines


def series(values: list[float | None]) -> list[float]:
    """A trend's slices as sparkline data (a slice with no run is 0)."""
    return [v if v is not None else 0.0 for v in values]


def trend_caption(entry: dict[str, Any], what: str) -> str:
    trend = entry.get("trend") or {}
    slices = len(trend.get(what) or [])
    step = float(trend.get("step") or 0.0)
    span = f", {slices} slices of {_span(step)}" if slices > 1 else ""
    label = "cost per run" if what == "cost" else "completion rate"
    return f"{label} over time (oldest left{span})"


def _span(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


class StatsScreen(ModalScreen[None]):
    """The stats of every workflow (or one) with their sparklines; Escape closes it."""

    DEFAULT_CSS = """
    StatsScreen { align: center middle; }
    StatsScreen > Vertical { width: 100; max-height: 90%; height: auto; border: thick $accent;
        padding: 1 2; background: $surface; }
    StatsScreen > Vertical > VerticalScroll { height: auto; max-height: 1fr; }
    StatsScreen .stats-title { text-style: bold; }
    StatsScreen .stats-caption { color: $text-muted; margin-top: 1; }
    StatsScreen Sparkline { height: 2; }
    StatsScreen .stats-workflow { margin-top: 1; }
    """
    BINDINGS = [Binding("escape", "close", "close")]

    def __init__(self, entries: list[dict[str, Any]], title: str = "stats") -> None:
        super().__init__()
        self.entries = entries
        self.title_text = title

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(f"{self.title_text}  (Esc closes)", classes="stats-title", markup=False)
            with VerticalScroll(id="stats-body"):
                if not self.entries:
                    yield Static("\n".join(stats_lines([])), markup=False)
                for entry in self.entries:
                    name = entry["workflow"]
                    yield Static(
                        "\n".join(stats_lines([entry])),
                        classes="stats-workflow",
                        id=f"stats-{_safe(name)}",
                        markup=False,
                    )
                    trend = entry.get("trend") or {}
                    for what in ("cost", "completion"):
                        yield Static(trend_caption(entry, what), classes="stats-caption", markup=False)
                        yield Sparkline(
                            series(trend.get(what) or []),
                            summary_function=max,
                            id=f"spark-{what}-{_safe(name)}",
                        )

    def action_close(self) -> None:
        self.dismiss(None)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
