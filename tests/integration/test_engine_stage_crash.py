"""A long-lived stage (``ctx.stage(...).prompt(text)``) killed with SIGKILL after its second prompt
reached the stage's transcript but before the step was journaled: ``loopcraft resume`` continues the
half-done turn instead of sending the prompt again, and never repeats a completed model turn."""

from __future__ import annotations

import json
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from loopcraft.models.scripted import read_call_log
from tests.cli_process import install_workflow, spawn_loopcraft

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

WORKFLOW = """
from loopcraft import Context, workflow


@workflow(description="one long-lived stage prompted three times")
async def talky(ctx: Context) -> list:
    stage = ctx.stage("talker")
    first = await stage.prompt("FIRST prompt")
    second = await stage.prompt("SECOND prompt")
    third = await stage.prompt("THIRD prompt")
    return [first.text, second.text, third.text]
"""

SLOW_TEXT = "second answer " + "." * 160


def script() -> dict[str, Any]:
    return {
        "pace": 0.03,
        "chunk_size": 2,
        "stages": {"talker": [{"text": "first answer"}, {"text": SLOW_TEXT}, {"text": "third answer"}]},
    }


def session_prompts(repo: Path) -> list[str]:
    """The user prompts in the stage's transcript (complete lines only), in order."""
    found: list[str] = []
    for path in (repo / ".loopcraft" / "runs").glob("*/stages/*.jsonl"):
        for line in path.read_text().splitlines()[1:]:
            try:
                entry = json.loads(line)
            except ValueError:
                break
            if entry.get("type") == "message" and entry.get("source") == "prompt":
                found.append(entry["message"]["content"])
    return found


def test_sigkill_mid_stage_prompt_resumes_the_half_done_turn(git_repo: Path, tmp_path: Path) -> None:
    repo = git_repo
    calls = tmp_path / "calls.jsonl"
    env = install_workflow(repo, WORKFLOW, "talky", script(), calls)

    proc = spawn_loopcraft(repo, env, "run", "talky", "--model", "scripted/talky", "--json")
    deadline = time.monotonic() + 60
    # The second prompt is in the transcript; its answer streams for about 2.4 s (logged when done).
    while "SECOND prompt" not in session_prompts(repo):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the second prompt never started"
        time.sleep(0.01)
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert session_prompts(repo) == ["FIRST prompt", "SECOND prompt"]
    before = read_call_log(calls)
    assert [e["turn"] for e in before] == [0], "the kill did not land inside the second turn"
    done_before = {(e["stage"], e["turn"]) for e in before}
    n_before = len(before)

    run_id = next((repo / ".loopcraft" / "runs").iterdir()).name
    out, err = spawn_loopcraft(repo, env, "resume", run_id, "--json").communicate(timeout=60)
    result = json.loads(out or "{}")
    assert result.get("status") == "completed", err[-2000:]
    assert result["output"] == ["first answer", SLOW_TEXT, "third answer"]

    assert session_prompts(repo) == ["FIRST prompt", "SECOND prompt", "THIRD prompt"]
    after = read_call_log(calls)[n_before:]
    assert not {(e["stage"], e["turn"]) for e in after} & done_before, "a completed turn was re-called"
    assert Counter(e["turn"] for e in after) == {1: 1, 2: 1}
