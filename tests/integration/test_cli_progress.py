"""Headless progress lines (``headless.ProgressPrinter``) for a stage that waits at a gate:
no negative or ``-0.0s`` durations, whatever order the status events come in."""

from __future__ import annotations

import io

from loopcraft.engine.events import StageAdded, StageStatus
from loopcraft.headless import ProgressPrinter, _elapsed


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
