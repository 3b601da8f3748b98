"""The status bar's context percentage uses the model's window: litellm's model info, or the
``[models.X] context_window`` override (the same figure the agent compacts at)."""

from __future__ import annotations

from pathlib import Path

from loopcraft.models.litellm_loader import load_litellm
from tests.app.tui_support import make_app

MODEL = "anthropic/claude-sonnet-4-5"


async def test_status_bar_window_from_litellm_and_from_the_override(git_repo: Path) -> None:
    load_litellm()
    app = make_app(git_repo, MODEL)
    async with app.run_test(size=(120, 40)):
        assert app._context_window() == 200_000  # not the old blanket 128k
    app = make_app(git_repo, MODEL, models={MODEL: {"context_window": 32_000}})
    async with app.run_test(size=(120, 40)):
        assert app._context_window() == 32_000
