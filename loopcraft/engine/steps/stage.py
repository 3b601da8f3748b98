"""The ``stage`` / ``stage_prompt`` steps: a long-lived agent session prompted several times from code."""

from __future__ import annotations

import json
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loopcraft.engine.journal import StepRow
from loopcraft.engine.limits import wait_for_limits
from loopcraft.engine.results import StageResult
from loopcraft.engine.steps.protocol import Runtime, Scope, check_step, run_step, spent_total
from loopcraft.engine.steps.task import task_request
from loopcraft.engine.tasks import (
    CORRECTION_PREFIX,
    DelegatingSession,
    TaskSession,
    TaskSpec,
    build_prompt,
    run_agent_task,
    shape_output,
    stage_result,
)
from loopcraft.errors import LoopcraftError
from loopcraft.models.types import Usage


class LiveStage:
    """A long-lived stage: one agent session prompted several times from workflow code."""

    def __init__(self, rt: Runtime, scope: Scope, pos: str, key: str, spec: TaskSpec) -> None:
        self._rt = rt
        self._scope = scope.child(key)
        self.key = key
        self.spec = spec
        self.session: TaskSession | None = None
        # what this stage's earlier prompts recorded (the session's usage is a running total)
        self.charged = Usage()

    def prompt(self, text: str) -> Awaitable[StageResult]:
        pos, key = self._scope.reserve("stage_prompt", self.spec.name)
        return run_stage_prompt(self._rt, self, pos, key, text)

    def steer(self, text: str) -> None:
        if self.session is not None:
            self.session.steer(text)

    def follow_up(self, text: str) -> None:
        if self.session is not None:
            self.session.follow_up(text)

    def close(self) -> None:
        """End the stage's session: no steering or control reaches it any more."""
        if self.session is not None:
            self._rt.live.pop(self.key, None)
            self._rt.control.detach(self.key)
            self.session.close()
            self.session = None


def live_stage(rt: Runtime, scope: Scope, pos: str, key: str, spec: TaskSpec) -> LiveStage:
    check_step(rt, pos, key, "stage", spec.name)
    return LiveStage(rt, scope, pos, key, spec)


async def run_stage_prompt(rt: Runtime, stage: LiveStage, pos: str, key: str, text: str) -> StageResult:
    async def body(row: StepRow) -> StageResult:
        session_path = rt.files.session_path(stage.key)
        started, corrections = False, 0
        if stage.session is None:  # first prompt this process sends: the transcript may hold it
            request = task_request(rt, stage.key, stage.spec, session_path)
            row.model = request.model
            opened = wait_for_limits(rt, stage.key, await rt.runner.open(request))
            stage.session = rt.control.attach(stage.key, opened)
            rt.live[stage.key] = stage.session
            earlier = [
                r
                for r in rt.recorded.values()
                if r.kind == "stage_prompt" and r.pos.startswith(stage.key + "/") and r.pos != pos
            ]
            stage.charged = spent_total(earlier)
            started, corrections = sent_prompt_state(read_transcript(session_path), len(earlier))
        prompt = (
            text
            if not stage.spec.previous
            else build_prompt(TaskSpec(name=stage.spec.name, prompt=text, previous=stage.spec.previous), [])
        )
        try:
            outcome, structured, usage = await run_agent_task(
                TaskSpec(name=stage.spec.name, schema=stage.spec.schema),
                _Prompted(stage.session, started, corrections),
                prompt,
            )
        except BaseException:  # stopped (budget, kill, failure): keep what this prompt spent
            total = rt.keep_spent(row, stage.session, stage.charged)
            if total is not None:
                stage.charged = total
            raise
        row.model = outcome.model or row.model
        usage, stage.charged = usage - stage.charged, usage
        out, written = shape_output(stage.spec, outcome.text, rt.files, rt.config.engine.max_output)
        return stage_result(outcome, out, structured, usage, written, session_path)

    result: StageResult = await run_step(
        rt,
        stage._scope,
        pos,
        key,
        "stage_prompt",
        stage.spec.name,
        body,
        encode=lambda r: r.to_dict(),
        decode=lambda d: StageResult.from_dict(d, stage.spec.schema),
        usage_of=lambda r: r.usage,
        grants=stage.spec.grants,
    )
    return result


def read_transcript(path: Path) -> list[dict[str, Any]]:
    """A stage transcript's entries, header included, up to the first torn or malformed line."""
    if not path.is_file():
        return []
    entries = []
    # "\n" only: str.splitlines() would also split at U+2028/U+2029/U+0085 inside JSON strings
    for line in path.read_text(encoding="utf-8").split("\n"):
        if not line.strip():
            continue
        try:
            entries.append(json.loads(line))
        except ValueError:
            break
    return entries


@dataclass
class TranscriptScan:
    """A transcript read for people (``show --stage``): every line, a damaged one (not UTF-8, not a
    JSON object) as a ``{"type": "damaged", "line": N}`` entry in its place, never a cut."""

    path: Path
    entries: list[dict[str, Any]] = field(default_factory=list)
    damaged: list[int] = field(default_factory=list)
    missing: bool = False


def scan_transcript(path: Path) -> TranscriptScan:
    """Every line of the transcript at ``path``; damage is marked where it is, not raised."""
    scan = TranscriptScan(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        scan.missing = True
        return scan
    except OSError as exc:
        raise LoopcraftError(f"cannot read the transcript {path}: {exc.strerror}", exit_code=8) from exc
    for number, line in enumerate(raw.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            entry = None
        if isinstance(entry, dict):
            scan.entries.append(entry)
        else:
            scan.damaged.append(number)
            scan.entries.append({"type": "damaged", "line": number})
    return scan


def sent_prompt_state(entries: list[dict[str, Any]], earlier: int) -> tuple[bool, int]:
    """Whether a long-lived stage's next prompt (after ``earlier`` journaled ones) is already in its
    transcript, and how many schema corrections followed it there.

    Durable facts only: a prompt appended before a crash but whose step was never recorded makes
    the transcript hold more prompts than the journal has steps; the turn is then resumed, not
    prompted again. Only what follows a fork belongs to the stage (as for ordinary tasks)."""
    forks = [i for i, e in enumerate(entries) if e.get("type") == "status" and e.get("status") == "forked"]
    own = entries[forks[-1] + 1 :] if forks else entries
    prompts = [
        str(e["message"].get("content") or "")
        for e in own
        if e.get("type") == "message" and e.get("source") == "prompt"
    ]
    sent = [i for i, p in enumerate(prompts) if not p.startswith(CORRECTION_PREFIX)]
    if len(sent) <= earlier:
        return False, 0
    end = sent[earlier + 1] if len(sent) > earlier + 1 else len(prompts)
    return True, end - sent[earlier] - 1


@dataclass
class _Prompted(DelegatingSession):
    """A session view for one prompt of a long-lived stage: resumes a half-done turn, else prompts anew."""

    inner: TaskSession
    started: bool = False
    corrections: int = 0

    def close(self) -> None:
        pass  # the stage's session outlives its prompts
