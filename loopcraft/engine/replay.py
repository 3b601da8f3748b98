"""``loopcraft replay``: re-run a recorded run with its recorded model responses, offline.

The stage transcripts of the source run become a scripted-model script (each assistant
message one turn, by stage name, with its tool calls and usage); the replay is a new run whose
every stage uses that script (no fallbacks, no network). A stage the recording lacks, or a
stage asking for more turns than were recorded, fails at once; the report then names the first
stage where the new run differs from the recording (another step, another output, a failure).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loopcraft.engine.artifacts import RunFiles
from loopcraft.engine.graph import GRAPH_KINDS, USAGE_KINDS
from loopcraft.engine.journal import StepRow
from loopcraft.engine.runtime import read_transcript
from loopcraft.engine.service import Engine, new_run_id
from loopcraft.engine.steps.task import forced_model
from loopcraft.models.scripted import (
    Fault,
    Script,
    ScriptedToolCall,
    Turn,
    TurnUsage,
    register_script,
    unregister_script,
)

MISSING = "replay: the recording has no model response for this call (the workflow changed here)"
_MISSING_TURN = Turn(faults=[Fault(kind="not_found", message=MISSING) for _ in range(8)])


def _glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def _turn(message: dict[str, Any], usage: dict[str, Any] | None) -> Turn:
    calls = [
        ScriptedToolCall(
            name=(c.get("function") or {}).get("name", ""),
            arguments=(c.get("function") or {}).get("arguments") or "{}",
            id=c.get("id"),
        )
        for c in message.get("tool_calls") or []
    ]
    content = message.get("content")
    text = content if isinstance(content, str) else None
    used = None
    if usage:
        used = TurnUsage(
            input=usage.get("input_tokens"),
            output=usage.get("output_tokens"),
            cache_read=usage.get("cache_read_tokens", 0),
            cache_write=usage.get("cache_write_tokens", 0),
        )
    return Turn(text=text, tool_calls=calls, usage=used)


def transcript_turns(entries: list[dict[str, Any]]) -> list[Turn]:
    """Each assistant message of a transcript as a turn (the usage logged just before it)."""
    turns: list[Turn] = []
    usage: dict[str, Any] | None = None
    for entry in entries:
        if entry.get("type") == "usage" and entry.get("source") == "turn":
            usage = entry.get("usage")
        message = entry.get("message") if entry.get("type") == "message" else None
        if isinstance(message, dict) and message.get("role") == "assistant":
            turns.append(_turn(message, usage))
            usage = None
    return turns


def build_script(root: Path, run_id: str, steps: list[StepRow]) -> Script:
    """The script that answers every model call the run made, as it was answered."""
    files = RunFiles(root, run_id)
    stages: dict[str, list[Turn]] = {}
    for step in steps:
        if step.kind not in ("task", "stage"):
            continue
        entries = read_transcript(files.session_path(step.key))
        header = next((e for e in entries if e.get("type") == "header"), {})
        name = str(header.get("stage") or step.name)
        turns = transcript_turns(entries)
        known = stages.setdefault(_glob_escape(name), [])
        known.extend(turns[len(known) :])  # a forked session repeats the turns it continues
    return Script(
        stages={pattern: [*turns, _MISSING_TURN] for pattern, turns in stages.items()},
        default=[_MISSING_TURN],
    )


@dataclass
class Divergence:
    stage: str
    key: str
    reason: str


def _output(root: Path, run_id: str, step: StepRow) -> str:
    """A stage's output as compared, with its run id masked (file-only outputs name the run's folder)."""
    value = RunFiles(root, run_id).load_output(step.output)
    if isinstance(value, dict):
        value = {k: v for k, v in value.items() if k in ("text", "structured", "status")}
    return json.dumps(value, sort_keys=True, default=str).replace(run_id, "<run>")


def first_divergence(
    root: Path, recorded: tuple[str, list[StepRow]], replayed: tuple[str, list[StepRow]]
) -> Divergence | None:
    """The first stage (in the replay's order) that is not what the recording has."""
    old = {s.pos: s for s in recorded[1]}
    for step in sorted(replayed[1], key=lambda s: s.seq):
        if step.kind not in GRAPH_KINDS and step.kind != "score":
            continue
        was = old.get(step.pos)
        if was is None or (was.kind, was.name) != (step.kind, step.name):
            what = f"{was.kind} {was.name!r}" if was else "nothing"
            return Divergence(
                step.name,
                step.key,
                f"the recording has {what} here; the workflow now runs {step.kind} {step.name!r}",
            )
        if step.status != was.status:
            message = (step.error or {}).get("message", "")
            return Divergence(
                step.name,
                step.key,
                f"recorded {was.status}, now {step.status}" + (f": {message}" if message else ""),
            )
        changed = step.kind in USAGE_KINDS and step.status == "completed"
        if changed and _output(root, recorded[0], was) != _output(root, replayed[0], step):
            return Divergence(step.name, step.key, "its output differs from the recording")
    return None


async def replay_run(engine: Engine, run_id: str) -> tuple[str, Divergence | None]:
    """Run the replay to its end; returns its run id and the first divergence (None: identical)."""
    source = await engine.find_run(run_id)
    steps = await engine.journal.load_steps(source.id)
    engine.workflows().get(source.workflow)
    name = f"replay-{uuid.uuid4().hex[:8]}"
    register_script(name, build_script(engine.root, source.id, steps))
    model = f"scripted/{name}"
    new_id = new_run_id()
    await engine.journal.create_run(new_id, source.workflow, source.inputs, model=model, parent_run=source.id)
    engine.stop_at_gates = True  # a replay never waits for a person
    token = forced_model.set(model)
    try:
        await engine.start_recorded(new_id)
        await engine.wait(new_id)
    finally:
        forced_model.reset(token)
        unregister_script(name)
    replayed = await engine.journal.load_steps(new_id)
    return new_id, first_divergence(engine.root, (source.id, steps), (new_id, replayed))


def divergence_dict(div: Divergence | None) -> dict[str, Any] | None:
    return None if div is None else {"stage": div.stage, "key": div.key, "reason": div.reason}
