"""The configured theme is applied at start-up without the extra CSS refresh a switch costs:
an app started with a theme must look exactly like one switched to it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.app.tui_support import make_app


def _look(app: Any) -> dict[str, Any]:
    return {
        "theme": app.theme,
        "classes": sorted(c for c in app.classes if c.startswith("-")),
        "variables": app.stylesheet._variables,
        "screen": app.screen.styles.background,
        "input": app.input.styles.border,
        "status": app.status.styles.background,
        "status_text": app.status.styles.color,
    }


@pytest.mark.parametrize("theme", ["loopcraft-light", "loopcraft-dark", "textual-light"])
async def test_starting_with_a_theme_looks_like_switching_to_it(git_repo: Path, theme: str) -> None:
    started = make_app(git_repo, "scripted/demo", theme=theme)
    async with started.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        at_start = _look(started)

    other = "loopcraft-dark" if theme != "loopcraft-dark" else "loopcraft-light"
    switched = make_app(git_repo, "scripted/demo", theme=other)
    async with switched.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert _look(switched) != at_start  # the probe can tell themes apart
        switched.theme = theme
        await pilot.pause()
        assert _look(switched) == at_start
