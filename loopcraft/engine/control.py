"""Run control: commands (pause, resume, interrupt, kill, steer, follow-up) travel through the
journal's durable mailbox, so any process can send them; the owning execution polls the
mailbox every ``engine.poll_seconds`` and applies them to its live stages.

Sender side: :func:`find_stage` (address a stage by key or name) and :func:`post`.
Owner side: :class:`RunControl` (one per execution, seen through :class:`~loopcraft.engine.steps.protocol.Runtime`), which
pumps the mailbox, holds pause state, and wraps every stage session in a
:class:`ControlledSession` so that a paused stage waits at its next safe point and an
interrupted one waits, resumable, instead of failing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from loopcraft.engine.events import RunStatus, StageStatus
from loopcraft.engine.journal import Journal, MailRow, StepRow
from loopcraft.engine.steps.protocol import WorkflowExit
from loopcraft.engine.tasks import DelegatingSession, TaskOutcome, TaskSession
from loopcraft.errors import LoopcraftError, NotFoundError
from loopcraft.models.types import Usage

if TYPE_CHECKING:
    from loopcraft.engine.steps.protocol import Runtime

log = logging.getLogger(__name__)

Delivery = tuple[str, str, "int | None"]  # (steer | follow_up, text, mailbox id or None)

COMMANDS = ("pause", "resume", "interrupt", "kill", "steer", "follow_up", "answer")
MESSAGES = frozenset({"steer", "follow_up"})  # consumed only once a stage's transcript holds them
STAGE_STEP_KINDS = frozenset({"task", "tool", "workflow", "prompt", "stage_prompt", "check"})
OPEN_STAGE_STATES = frozenset({"running", "paused", "awaiting_input"})
# Stages an earlier execution stopped part-way (paused, or settled when its run ended): resumable.
STOPPED_STAGE_STATES = frozenset({"paused", "budget_exceeded", "cancelled"})
SESSION_KINDS = frozenset({"task", "stage_prompt"})  # steps that run an agent session (steer targets)
BUDGET_RAISED = "The budget was raised: continue the task where you left off."


class ControlError(LoopcraftError):
    """A control command that cannot apply (bad input: an empty message, an unknown command); nothing
    changed."""


class RunStateError(ControlError):
    """The run is not in a state for this (finished, not running, a gate already answered, in use
    by a live process): answer, kill, pause, steer, follow-up, interrupt, resume and rm all say so
    with this exit code, and nothing changed."""

    exit_code = 10


class RunKilled(BaseException):
    """Raised inside a killed run's stages (a BaseException: never recorded as a step failure)."""


# -- addressing stages ----------------------------------------------------------------------------


def control_key(row: StepRow) -> str:
    """The key a live session is registered under (a long-lived stage's prompts share their stage's)."""
    return row.key.rpartition("/")[0] if row.kind == "stage_prompt" else row.key


def find_stage(steps: Iterable[StepRow], run_id: str, stage: str) -> StepRow:
    """The step named ``stage`` (by key or name; an open one wins); NotFoundError lists the stages."""
    rows = [r for r in steps if r.kind in STAGE_STEP_KINDS]
    matches = [r for r in rows if stage in (r.key, r.name, control_key(r))]
    if not matches:
        names = ", ".join(dict.fromkeys(r.name for r in rows)) or "none yet"
        raise NotFoundError(f"run {run_id} has no stage {stage!r}; stages: {names}")
    open_rows = [r for r in matches if r.status in OPEN_STAGE_STATES]
    return (open_rows or matches)[-1]


async def post(
    journal: Journal, run_id: str, kind: str, *, stage_key: str | None = None, **payload: Any
) -> int:
    """Queue one command in the mailbox; returns its id."""
    if kind not in COMMANDS:
        raise ControlError(f"unknown control command {kind!r}; use one of {', '.join(COMMANDS)}")
    mail_id = await journal.post(run_id, kind, payload, stage_key=stage_key)
    assert mail_id is not None
    return mail_id


# -- the owner's side -------------------------------------------------------------------------------


class RunControl:
    """Pause state, live sessions and the mailbox pump of one execution."""

    def __init__(self, execution: Runtime) -> None:
        self.exec = execution
        self.run_paused = False
        self.stage_paused: set[str] = set()
        self.killed = False
        self.sessions: dict[str, ControlledSession] = {}
        self.pending: dict[str | None, list[Delivery]] = {}  # key -> [(steer|follow_up, text, mail id)]
        self.resumable: set[str] = set()  # stages stopped (paused, settled) by an earlier execution
        self._reattached: set[str] = set()  # resumable stages given the run-wide messages already
        self.task: asyncio.Task[Any] | None = None  # the execution's task (cancelled by kill)
        self._changed = asyncio.Event()
        self._wake = asyncio.Event()
        self._waiting: set[str] = set()
        self._taken: set[int] = set()  # message mail being delivered: the pump must not take it again
        self._acks: set[asyncio.Task[None]] = set()

    # -- the mailbox pump --------------------------------------------------------------------------

    async def start(self, recorded: Iterable[StepRow]) -> None:
        """Before the run: note stopped stages; apply durable steering left while the owner was down."""
        self.resumable = {
            control_key(r) for r in recorded if r.status in STOPPED_STAGE_STATES and r.kind in SESSION_KINDS
        }
        self.task = asyncio.current_task()
        for mail in await self.exec.journal.pending_mail(self.exec.run_id):
            if mail.kind in MESSAGES:
                await self._take(mail)  # queued for its stage; consumed once its transcript holds it
            elif await self.exec.journal.consume_mail(mail.id) and mail.kind == "kill":
                await self.apply(mail)  # stale pause/interrupt/resume commands are dropped

    def poke(self) -> None:
        """Look at the mailbox now (a command was posted from this process)."""
        self._wake.set()

    async def pump(self) -> None:
        """Apply new commands until cancelled (noticed within ``engine.poll_seconds``)."""
        poll = self.exec.config.engine.poll_seconds
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), poll)
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                await self.pump_once()
            except LoopcraftError as exc:
                log.warning("run %s: control mailbox: %s", self.exec.run_id, exc)

    async def pump_once(self) -> None:
        """Apply the commands pending now (each at most once per execution)."""
        for mail in await self.exec.journal.pending_mail(self.exec.run_id):
            await self._take(mail)

    async def _take(self, mail: MailRow) -> None:
        """Apply one pending command once: messages are consumed after delivery, the rest before."""
        if mail.id in self._taken:
            return
        if mail.kind in MESSAGES:
            self._taken.add(mail.id)
            await self.apply(mail)
        elif await self.exec.journal.consume_mail(mail.id):
            await self.apply(mail)

    async def apply(self, mail: MailRow) -> None:
        """Carry out one command."""
        key, text = mail.stage_key, str(mail.payload.get("message") or "")
        if mail.kind == "pause":
            await self._pause(key)
        elif mail.kind == "interrupt":
            await self._pause(key)
            for session in self._targets(key):
                session.interrupt()
        elif mail.kind == "resume":
            if text:
                self._deliver("steer", key, text, stopped_only=True)
            await self._resume(key)
        elif mail.kind in ("steer", "follow_up"):
            if mail.payload.get("only_stopped") and key is None and not self.resumable:
                await self._consume(mail.id)  # e.g. "budget raised" when no stage was stopped mid-way
                return
            self._deliver(mail.kind, key, text, mail_id=mail.id)
        elif mail.kind == "answer":
            self.exec.answer_signal.set()
        elif mail.kind == "kill":
            self.kill()

    def kill(self) -> None:
        self.killed = True
        for session in list(self.sessions.values()):
            session.interrupt()
        if self.task is not None and not self.task.done():
            self.task.cancel()
        self._changed.set()

    # -- pause and resume ------------------------------------------------------------------------

    async def _pause(self, key: str | None) -> None:
        if key is None:
            if not self.run_paused:
                self.run_paused = True
                await self._run_status("paused")
        else:
            self.stage_paused.add(key)
        self._changed.set()

    async def _resume(self, key: str | None) -> None:
        if key is None:
            self.stage_paused.clear()
            if self.run_paused:
                self.run_paused = False
                await self._run_status("running")
        else:
            self.stage_paused.discard(key)
        self._changed.set()

    def paused(self, key: str | None) -> bool:
        return self.run_paused or (key is not None and key in self.stage_paused)

    async def checkpoint(self, key: str | None = None) -> None:
        """Wait here while the run (or stage ``key``) is paused; raises :class:`RunKilled` once killed."""
        if self.killed:
            raise RunKilled
        if not self.paused(key):
            return
        if key is not None:
            self._waiting.add(key)
            await self._stage_status(key, "paused")
        try:
            while self.paused(key) and not self.killed:
                self._changed.clear()
                await self._changed.wait()
        finally:
            if key is not None:
                self._waiting.discard(key)
        if self.killed:
            raise RunKilled
        if key is not None:
            await self._stage_status(key, "running")

    # -- steering ----------------------------------------------------------------------------------

    def _targets(self, key: str | None) -> list[ControlledSession]:
        if key is None:
            return list(self.sessions.values())
        session = self.sessions.get(key)
        return [session] if session is not None else []

    def _deliver(
        self, kind: str, key: str | None, text: str, *, stopped_only: bool = False, mail_id: int | None = None
    ) -> None:
        targets = self._targets(key)
        if key is None and stopped_only:
            targets = [s for s in targets if s.key in self._waiting or s.key in self.stage_paused] or targets
        if not targets:
            self.pending.setdefault(key, []).append((kind, text, mail_id))
            return
        delivered = []
        for session in targets:
            try:
                session.send(kind, text, mail_id)
                delivered.append(session)
            except LoopcraftError as exc:  # e.g. a closed session: the others still get it
                log.warning("run %s: %s not delivered to %s: %s", self.exec.run_id, kind, session.key, exc)
        if delivered:
            self._acknowledge(mail_id, delivered)

    def _acknowledge(self, mail_id: int | None, sessions: list[ControlledSession]) -> None:
        """Consume mail ``mail_id`` once the transcripts it was recorded in are on stable storage."""
        if mail_id is None:
            return
        task = asyncio.ensure_future(self._ack(mail_id, sessions))
        self._acks.add(task)
        task.add_done_callback(self._acks.discard)

    async def _ack(self, mail_id: int, sessions: list[ControlledSession]) -> None:
        try:
            for session in sessions:
                await session.durable()
            await self._consume(mail_id)
        except Exception as exc:  # still pending: the next owner delivers it (once per transcript)
            log.warning("run %s: steering message %d not acknowledged: %s", self.exec.run_id, mail_id, exc)

    async def _consume(self, mail_id: int) -> None:
        await self.exec.journal.consume_mail(mail_id)

    # -- sessions ----------------------------------------------------------------------------------

    def attach(self, key: str, session: TaskSession) -> ControlledSession:
        """Wrap a stage's freshly opened session; queued steering for it is delivered now."""
        controlled = ControlledSession(session, self, key)
        self.sessions[key] = controlled
        queued = self.pending.pop(key, [])
        if None in self.pending and not self.resumable:
            queued += self.pending.pop(None)
        elif None in self.pending and key in self.resumable and key not in self._reattached:
            queued += self.pending[None]  # every stopped stage gets them (e.g. "the budget was raised")
            self._reattached.add(key)
            if self._reattached >= self.resumable:
                del self.pending[None]
        for kind, text, mail_id in queued:
            controlled.send(kind, text, mail_id)
            self._acknowledge(mail_id, [controlled])
        return controlled

    def detach(self, key: str) -> None:
        self.sessions.pop(key, None)

    # -- status ------------------------------------------------------------------------------------

    async def _run_status(self, status: str) -> None:
        ex = self.exec
        await ex.journal.update_run(ex.run_id, status=status)
        ex.emit(RunStatus(ex.run_id, status, ex.workflow.name, None))

    async def _stage_status(self, key: str, status: str) -> None:
        ex = self.exec
        await ex.journal.set_stage_status(ex.run_id, key, status)
        ex.emit(StageStatus(ex.run_id, key, status))


class ControlledSession(DelegatingSession):
    """A stage session under run control: pauses wait, interrupts wait for a resume, kill ends it."""

    def __init__(self, inner: TaskSession, control: RunControl, key: str) -> None:
        super().__init__(inner)
        self.control = control
        self.key = key

    async def run(self, prompt: str | None) -> TaskOutcome:
        await self.control.checkpoint(self.key)
        outcome = await self.inner.run(prompt)
        while outcome.status == "interrupted":
            if self.control.killed:
                raise RunKilled
            await self.control.checkpoint(self.key)  # interrupts come with a pause: wait for resume
            outcome = await self.inner.run(None)
        if outcome.status == "budget_exceeded":
            limit = self.control.exec.current_budget().exceeded()
            if limit is not None:  # the run's (or a nested workflow's), not the stage's own: stop resumably
                await self.control._stage_status(self.key, "budget_exceeded")
                raise WorkflowExit(
                    "budget_exceeded",
                    f"run budget exceeded ({limit}) in stage {self.key.rpartition(':')[2]!r}; "
                    "raise it with `loopcraft resume RUN --budget ...`",
                )
        return outcome

    def spent(self) -> Usage | None:
        """What the stage's agent has spent so far (None when the session cannot tell)."""
        spent = getattr(self.inner, "spent", None)
        return spent() if spent is not None else None

    def send(self, kind: str, text: str, mail_id: int | None = None) -> None:
        """Hand the stage a message; with a mail id, a session that keeps a transcript records it first."""
        deliver = getattr(self.inner, "deliver", None)
        if mail_id is not None and deliver is not None:
            deliver(kind, text, mail_id)
        elif kind == "steer":
            self.inner.steer(text)
        else:
            self.inner.follow_up(text)

    async def durable(self) -> None:
        """Wait until what the stage recorded so far is on stable storage (no-op without a transcript)."""
        durable = getattr(self.inner, "durable", None)
        if durable is not None:
            await durable()
