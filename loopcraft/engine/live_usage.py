"""What a run's in-flight stages have spent so far, read from their transcripts.

A stage's journal row gets its usage when it ends; until then its usage lives only in its JSONL
transcript (one ``usage`` entry per model turn or compaction, written as it happens). A look at a
live run from another process (``loopcraft show``) adds these to the finished stages' usage.
"""

from __future__ import annotations

from dataclasses import replace

from loopcraft.engine.artifacts import RunFiles, session_key
from loopcraft.engine.journal import StepRow
from loopcraft.engine.steps.stage import read_transcript
from loopcraft.models.types import Usage

OPEN_STATES = frozenset({"pending", "running", "paused", "awaiting_input"})


def transcript_spent(files: RunFiles, key: str) -> Usage:
    """What the session of stage ``key`` spent itself (entries after its fork marker, if forked)."""
    from loopcraft.engine.agent_runner import own_entries

    entries, _ = own_entries(read_transcript(files.session_path(key)))
    return sum(
        (Usage.from_dict(e.get("usage")) for e in entries if e.get("type") == "usage"),
        Usage(),
    )


def in_flight(files: RunFiles, steps: list[StepRow]) -> dict[str, Usage]:
    """Usage so far of each open task or stage prompt, by step key."""
    spent: dict[str, Usage] = {}
    for step in steps:
        if step.status not in OPEN_STATES:
            continue
        if step.kind == "task":
            spent[step.key] = transcript_spent(files, step.key)
        elif step.kind == "stage_prompt":
            stage = session_key(step.kind, step.key)
            earlier = sum(
                (
                    Usage.from_dict(s.usage)
                    for s in steps
                    if s.kind == "stage_prompt"
                    and s.key != step.key
                    and session_key(s.kind, s.key) == stage
                    and s.usage
                ),
                Usage(),
            )
            spent[step.key] = transcript_spent(files, stage) - earlier
    return spent


def with_live_usage(files: RunFiles, steps: list[StepRow]) -> list[StepRow]:
    """``steps`` with each open stage's usage so far in place of its (not yet written) row usage."""
    live = in_flight(files, steps)
    return [
        replace(s, usage=live[s.key].to_dict()) if s.key in live and live[s.key].total_tokens else s
        for s in steps
    ]
