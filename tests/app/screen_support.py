"""What a pilot test's app shows: the rendered screen as plain text lines, so a test can
assert what the user actually sees (a collapsed block hides its text, a pane is drawn)."""

from __future__ import annotations

from typing import Any


def screen_lines(app: Any) -> list[str]:
    """The screen as drawn now, one string per terminal row."""
    return [strip.text for strip in app.screen._compositor.render_strips()]


def screen_text(app: Any) -> str:
    return "\n".join(screen_lines(app))
