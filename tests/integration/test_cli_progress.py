"""Headless progress lines (``headless.ProgressPrinter``) for a stage that waits at a gate:
no negative or ``-0.0s`` durations, whatever order the status events come in; stage marks, budget
notices and heartbeats (issue 16) as lines of their own, in a real ``loopcraft run`` too."""

from __future__ import annotations

import io
import re
from pathlib import Path

from loopcraft.engine.events import StageAdded, StageStatus
from loopcraft.headless import ProgressPrinter, _elapsed
from tests.cli_process import install_workflow, spawn_loopcraft


def _printed(*events: object) -> list[str]:
    out = io.StringIO()
    printer = ProgressPrinter(out)
    for event in events:
        printer(event)  # type: ignore[arg-type]
    return out.getvalue().splitlines()


def test_answered_gate_lines_have_no_negative_duration() -> None:
    key = "root/0:prompt:confirm"
    lines = _printed(
        StageAdded("r1", key=key, name="confirm", kind="prompt"),
        StageStatus("r1", key=key, status="awaiting_input"),
        StageStatus("r1", key=key, status="completed"),
    )
    assert len(lines) == 2
    assert lines[1].startswith("  ✓ confirm  completed ")
    assert all("-" not in line.split()[-1] for line in lines), lines


def test_a_final_status_without_a_start_is_zero() -> None:
    lines = _printed(StageStatus("r1", key="root/0:task:x", status="completed"))
    assert lines == ["  ✓ x  completed 0.0s"]  # named by its path, never its key


def test_elapsed_never_negative() -> None:
    assert _elapsed(-0.01) == "0.0s" and _elapsed(-5) == "0.0s" and _elapsed(1.25) == "1.2s"


def test_marks_budget_notices_and_heartbeats_are_progress_lines() -> None:
    from loopcraft.engine.events import BudgetNotice, Heartbeat, StageFlag

    key = "root/0:task:fix"
    lines = _printed(
        StageAdded("r1", key=key, name="fix"),
        StageFlag("r1", key, "stalled", "no model or tool activity for 5m; last: tool bash started"),
        StageFlag("r1", key, None, "active again: tool bash finished"),
        StageFlag("r1", key, "waiting", "rate limit on openai/gpt-5.5", until=1.0),
        BudgetNotice("r1", "tokens=1000", 900, 1000, "run goal r1 has used 90% of its tokens budget"),
        Heartbeat("r1", "run goal r1 still running (10m)"),
    )
    assert lines[0] == "  ! fix  stalled: no model or tool activity for 5m; last: tool bash started"
    assert lines[1] == "  ▶ fix  active again: tool bash finished"
    assert lines[2].startswith("  … fix  waiting until ") and "it continues on its own" in lines[2]
    assert lines[3:] == [
        "  $ run goal r1 has used 90% of its tokens budget",
        "  · run goal r1 still running (10m)",
    ]


def test_loopcraft_run_prints_the_budget_notice_heartbeats_and_a_stall(git_repo: Path) -> None:
    source = (
        "from loopcraft import Context, workflow\n\n"
        "@workflow(description='slow')\n"
        "async def hang(ctx: Context) -> str:\n"
        "    return (await ctx.task('slowpoke', prompt='go', model='scripted/hang')).text\n"
    )
    turns = [
        {"tool_calls": [{"name": "ls", "arguments": {"path": "."}}], "usage": {"input": 500, "output": 400}},
        {"delay": 1.5, "text": "done", "usage": {"input": 10, "output": 0}},
    ]
    env = install_workflow(git_repo, source, "hang", {"default": turns}, git_repo / "calls.jsonl")
    env |= {"LOOPCRAFT_NOTIFY__HEARTBEAT_MINUTES": "0.005", "LOOPCRAFT_ENGINE__STALL_AFTER": "0.5"}
    proc = spawn_loopcraft(git_repo, env, "run", "hang", "--budget", "tokens=1000")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert re.search(r"\$ run hang \w+ has used 90% of its tokens budget \(900 of 1,000\)", out), out
    assert re.search(r"· run hang \w+ still running", out), out
    assert re.search(r"! slowpoke  stalled: no model or tool activity for \d+s; last: model call", out), out
