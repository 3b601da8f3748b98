"""Issue 13 in the app: the chat agent's ``workflow`` tool (the engine's) fans out three reviewers
with ``action=parallel``; the dynamic run shows in the runs pane and the graph like any run, the
agent synthesises, and ``/workflow promote`` writes the run as a workflow file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from loopcraft.models.scripted import Script, register_script, unregister_script
from loopcraft.tui.chat import AssistantMessage, Notice
from tests.app.test_tui_demo_chat import _allow
from tests.app.tui_support import make_app, wait_for

REVIEWERS = ("review-correctness", "review-tests", "review-security")


@pytest.fixture
def fan_out_script() -> Any:
    stages = [{"name": n, "prompt": f"Review for {n}."} for n in REVIEWERS]
    call = {"action": "parallel", "request": "review my change", "stages": stages}
    register_script(
        "fanout",
        Script.model_validate(
            {
                "replies": [
                    {
                        "match": r"\breview\b",
                        "stage": "chat",
                        "turns": [
                            {"tool_calls": [{"name": "workflow", "arguments": call}]},
                            {"text": "Synthesis: all three approve."},
                        ],
                    }
                ],
                "stages": {n: [{"text": f"{n}: approve"}] for n in REVIEWERS},
            }
        ),
    )
    yield
    unregister_script("fanout")


async def test_a_chat_fan_out_is_a_run_in_the_graph_and_promotes(git_repo: Path, fan_out_script: Any) -> None:
    app = make_app(git_repo, "scripted/fanout")
    async with app.run_test(size=(160, 45)) as pilot:
        controller = await app.open_workflows()
        await pilot.press(*"review my change", "enter")
        await _allow(pilot, app)
        result = await app.chat.wait()
        assert result is not None and result.status == "completed"
        await wait_for(
            pilot,
            lambda: (
                [b.text for b in app.chat_view.blocks() if isinstance(b, AssistantMessage)][-1:]
                == ["Synthesis: all three approve."]
            ),
        )
        run_id = controller.selected
        assert run_id is not None and run_id in controller.runs_pane.runs
        assert controller.runs_pane.runs[run_id].workflow.startswith("dynamic:")
        await wait_for(
            pilot,
            lambda: (
                sorted(n.name for n in controller.graphs[run_id].nodes.values() if n.kind == "task")
                == sorted(REVIEWERS)
            ),
        )
        await app.run_command(f"/workflow promote {run_id} triple")
        last = [b for b in app.chat_view.blocks() if isinstance(b, Notice)][-1]
        assert "triple.py" in last.text, last.text
        assert (git_repo / ".loopcraft" / "workflows" / "triple.py").is_file()
        assert "triple" in app.workflows.eng.workflows().names()  # read from the file, not imported
