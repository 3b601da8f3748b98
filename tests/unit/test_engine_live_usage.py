"""What in-flight stages have spent so far, read from their transcripts (``show`` of a live run):
a forked task counts only its own turns; a stage's open prompt counts the session's usage less
what its earlier prompts recorded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from loopcraft.engine.artifacts import RunFiles
from loopcraft.engine.journal import StepRow
from loopcraft.engine.live_usage import in_flight, with_live_usage


def _usage(tokens: int) -> dict[str, Any]:
    return {"type": "usage", "usage": {"input_tokens": tokens, "output_tokens": 0}}


def _write(files: RunFiles, key: str, entries: list[dict[str, Any]]) -> None:
    path = files.session_path(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(e) + "\n" for e in [{"type": "header"}, *entries]))


def test_open_stages_count_their_own_transcript_usage(tmp_path: Path) -> None:
    files = RunFiles(tmp_path, "r1")
    fork = {"type": "status", "status": "forked", "usage": {"input_tokens": 1000}}
    _write(files, "root/0:task:a", [_usage(1000), fork, _usage(30), _usage(12)])
    _write(files, "root/1:stage:s", [_usage(100), _usage(10), _usage(7)])
    steps = [
        StepRow("r1", "root/0:task:a", "0", "task", "a", "running"),
        StepRow("r1", "root/1:stage:s", "1", "stage", "s", "running"),
        StepRow(
            "r1",
            "root/1:stage:s/0:stage_prompt:s",
            "1/0",
            "stage_prompt",
            "s",
            "completed",
            usage={"input_tokens": 110},
        ),
        StepRow("r1", "root/1:stage:s/1:stage_prompt:s", "1/1", "stage_prompt", "s", "paused"),
        StepRow("r1", "root/2:task:done", "2", "task", "done", "completed", usage={"input_tokens": 5}),
    ]
    live = {key: usage.total_tokens for key, usage in in_flight(files, steps).items()}
    assert live == {"root/0:task:a": 42, "root/1:stage:s/1:stage_prompt:s": 7}
    patched = {s.key: s.usage for s in with_live_usage(files, steps)}
    assert patched["root/0:task:a"] == {**patched["root/0:task:a"], "input_tokens": 42}
    assert patched["root/2:task:done"] == {"input_tokens": 5}  # finished rows keep their own


def test_an_open_stage_without_a_transcript_spent_nothing(tmp_path: Path) -> None:
    steps = [StepRow("r1", "root/0:task:a", "0", "task", "a", "running")]
    assert in_flight(RunFiles(tmp_path, "r1"), steps)["root/0:task:a"].total_tokens == 0
    assert with_live_usage(RunFiles(tmp_path, "r1"), steps) == steps
