"""Run ownership: one owner per run, claimed atomically, kept alive by a heartbeat, and fenced.

An owner id is ``host:pid:nonce`` (unique per execution, so two engines in one process are
two owners). A claim succeeds only when the run has no live owner: none recorded, the same
owner, an expired lease, or (on this host) an owner process that no longer exists. The
claim is one conditional UPDATE (and, for a dead owner, a second one conditional on that
owner), so two processes resuming the same run cannot both win and no transaction is held on
the connection every run of the process shares. A :class:`Lease` whose renewal found another owner is *lost*: journal writes
call :meth:`Lease.ensure` (which re-checks against the journal once the local expiry has
passed) and transcript writes call :meth:`Lease.check`; a stage agent's mutating tool first awaits
:meth:`Lease.verify` (which reads the journal's owner); all three raise :class:`LeaseLost`.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass

from loopcraft.engine.journal import Journal, RunRow
from loopcraft.errors import LoopcraftError

log = logging.getLogger(__name__)


class LeaseLost(LoopcraftError):
    """This process no longer owns the run: it must stop writing."""

    exit_code = 8


class RunBusy(LoopcraftError):
    """Another live process owns the run."""

    exit_code = 8


def new_owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def owner_alive(owner: str | None) -> bool:
    """Whether the owning process still exists (decidable on this host only; else assume it does)."""
    if not owner:
        return False
    parts = owner.split(":")
    if len(parts) < 2 or not parts[1].isdigit():
        return False
    if parts[0] != socket.gethostname():
        return True
    try:
        os.kill(int(parts[1]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def owner_pid(owner: str | None) -> int | None:
    parts = (owner or "").split(":")
    return int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else None


def held(row: RunRow, now: float | None = None) -> bool:
    """Whether the run has a live owner: an unexpired lease held by a process that still exists."""
    now = time.time() if now is None else now
    return bool(row.owner) and (row.lease_expires or 0) > now and owner_alive(row.owner)


@dataclass
class Lease:
    """This process's claim on one run."""

    journal: Journal
    run_id: str
    owner: str
    seconds: float
    expires: float = 0.0
    lost: bool = False

    async def claim(self, *, status: str = "running") -> None:
        """Take the run (atomically); raises :class:`RunBusy` naming the current owner."""
        now = time.time()
        expires = now + self.seconds
        claimed = await self.journal.claim_run(
            self.run_id, self.owner, now=now, expires=expires, status=status
        )
        if not claimed:
            row = await self.journal.get_run(self.run_id)
            if row is None:
                raise LoopcraftError(f"unknown run {self.run_id!r}")
            if held(row, now) or not await self.journal.claim_run(
                self.run_id, self.owner, now=now, expires=expires, status=status, take_from=row.owner
            ):
                row = await self.journal.get_run(self.run_id) or row
                raise RunBusy(
                    f"run {self.run_id} is being run by {row.owner} (lease until "
                    f"{time.strftime('%H:%M:%S', time.localtime(row.lease_expires or now))}); "
                    "wait for it, or stop it with `loopcraft kill`"
                )
        self.expires = expires
        self.lost = False

    async def renew(self) -> bool:
        """Extend the lease if no other owner has taken the run; False (and lost) otherwise.

        The journal decides (a conditional update), so a process stalled past its expiry (a slow
        import, a suspended laptop) keeps the run as long as nobody claimed it meanwhile."""
        if self.lost:
            return False
        now = time.time()
        expires = now + self.seconds
        ok = await self.journal.update_run_if_owner(
            self.run_id, self.owner, heartbeat_at=now, lease_expires=expires
        )
        if ok:
            self.expires = expires
        else:
            self.lost = True
            log.warning("run %s: lease lost to another owner", self.run_id)
        return ok

    def check(self) -> None:
        """Raise :class:`LeaseLost` once this process lost the run or its lease ran out (sync writers:
        a process stalled past its lease must not write until :meth:`ensure` renewed it)."""
        if self.lost:
            raise LeaseLost(f"run {self.run_id}: this process lost its lease; another process owns the run")
        if self.expires and time.time() >= self.expires:
            raise LeaseLost(f"run {self.run_id}: this process's lease ran out; renew it before writing")

    async def ensure(self) -> None:
        """Before a journal write: past the local expiry, re-check (and renew) against the journal."""
        if not self.lost and time.time() >= self.expires:
            await self.renew()
        self.check()

    async def verify(self) -> None:
        """Before a side effect outside the journal (a stage's mutating tool): confirm with the journal
        that no other process took the run over, then :meth:`ensure`; raises :class:`LeaseLost`."""
        if not self.lost:
            row = await self.journal.get_run(self.run_id)
            if row is None or row.owner != self.owner:
                self.lost = True
                log.warning("run %s: taken over by %s", self.run_id, row.owner if row else "nobody")
        await self.ensure()

    async def release(self, **fields: object) -> bool:
        """Write final fields and give the run up (only if still held)."""
        return await self.journal.update_run_if_owner(self.run_id, self.owner, lease_expires=None, **fields)
