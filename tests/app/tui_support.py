"""Helpers for the TUI's pilot and snapshot tests: an app in a temp git repo on a
scripted model, waiting for conditions instead of sleeping fixed times, and runs started from
the app up to their human gate."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loopcraft.config import load_config
from loopcraft.models.scripted import Script, register_script
from loopcraft.tui.app import LoopcraftApp
from loopcraft.tui.panes.prompts import PromptCard

DEMO_STAGES = ("scout", "plan", "demo-review", "review-correctness", "review-maintainability", "synthesis")
"""The stages of the built-in ``demo`` workflow (and its nested ``demo-review``)."""


def scripted(
    name: str,
    turns: list[dict[str, Any]],
    stages: dict[str, list[dict[str, Any]]] | None = None,
    **options: Any,
) -> str:
    """Register ``scripted/<name>`` (``turns`` for unmatched stages, script ``options`` such as
    pace or chunk_size); returns the model string."""
    register_script(name, Script.model_validate({"default": turns, "stages": stages or {}, **options}))
    return f"scripted/{name}"


def make_app(root: Path, model: str, *, background: bool = False, **config: Any) -> LoopcraftApp:
    return LoopcraftApp(root, load_config(root, flags=config), model, background=background)


async def wait_for(pilot: Any, condition: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Pump the app until ``condition()`` is truthy; fails after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        value = condition()
        if value:
            return value
        await pilot.pause(0.05)
    raise AssertionError(
        f"condition not met within {timeout}s; the chat ends with {chat_texts(pilot.app)[-3:]}"
    )


def chat_texts(app: LoopcraftApp) -> list[str]:
    """Every chat block as text (notices, messages, tool titles)."""
    out = []
    for block in app.chat_view.blocks():
        text = getattr(block, "text", None)
        out.append(text if isinstance(text, str) else str(getattr(block, "title", "")))
    return out


def add_workflow(root: Path, name: str, source: str) -> None:
    """Write ``source`` as the repository's ``.loopcraft/workflows/<name>.py``."""
    folder = root / ".loopcraft" / "workflows"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.py").write_text(source)


async def run_to_gate(pilot: Any, controller: Any, name: str, cards: int = 1, timeout: float = 10.0) -> str:
    """Start workflow ``name`` from the app's workflow ``controller`` and wait until the prompts pane
    shows ``cards`` cards (its gate's among them); returns the run id."""
    run_id: str = await controller.run(name, {})
    await wait_for(pilot, lambda: len(pilot.app.query(PromptCard)) == cards, timeout)
    return run_id


async def gated_run(app: LoopcraftApp, pilot: Any, name: str, source: str) -> tuple[Any, str]:
    """Add workflow ``name`` (``source``), open the app's workflows and run it to its first gate;
    returns the workflow controller and the run id."""
    add_workflow(app.root, name, source)
    controller = await app.open_workflows()
    return controller, await run_to_gate(pilot, controller, name)
