"""What the trigger commands print: ``loopcraft event`` (record one event, fast, no engine),
``loopcraft triggers``, ``loopcraft events`` and ``loopcraft inbox`` (tables or ``--json``)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

from loopcraft.config import Config
from loopcraft.engine.service import Engine, db_path
from loopcraft.jsonout import dumps, iso_utc
from loopcraft.paths import ensure_state_dir
from loopcraft.triggers.inbox import Inbox, check_event_name, parse_payload
from loopcraft.triggers.load import load_triggers
from loopcraft.triggers.schedule import next_fire

_ATTENTION = ("failed", "blocked", "needs_human", "awaiting_input", "budget_exceeded", "crashed")


def _git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)
    return done.stdout.strip() if done.returncode == 0 else ""


def git_payload(root: Path, hook: str) -> tuple[dict[str, Any], str | None]:
    """What a git hook's event carries: the commit, its branch and changed paths; and a dedupe key."""
    commit = _git(root, "rev-parse", "HEAD")
    paths = _git(root, "diff-tree", "--root", "--no-commit-id", "--name-only", "-r", "HEAD").splitlines()
    payload = {
        "hook": hook,
        "commit": commit,
        "branch": _git(root, "rev-parse", "--abbrev-ref", "HEAD"),
        "paths": paths,
    }
    dedupe = f"git.{hook}:{commit}" if hook == "post-commit" and commit else None
    return payload, dedupe


def record_event(
    root: Path, name: str, payload_text: str | None, dedupe: str | None, git_hook: str | None
) -> str:
    """``loopcraft event``: the line to print; raises a one-line error before recording anything."""
    check_event_name(name)
    payload = parse_payload(payload_text)
    if git_hook:
        extra, git_dedupe = git_payload(root, git_hook)
        payload = {**extra, **payload}
        dedupe = dedupe or git_dedupe
    ensure_state_dir(root)
    inbox = Inbox(db_path(root))
    try:
        event_id, new = inbox.record(name, payload, source="hook" if git_hook else "cli", dedupe_key=dedupe)
    finally:
        inbox.close()
    if not new:
        return f"event {name} with dedupe key {dedupe!r} was already recorded as {event_id}; nothing new"
    return f"event {event_id} recorded ({name}); `loopcraft serve` turns it into a run"


async def trigger_rows(root: Path, config: Config) -> tuple[list[dict[str, Any]], list[str]]:
    """Each trigger with its next fire, last event and last run (and the load notes)."""
    async with await Engine.open(root, config) as engine:
        found = load_triggers(root, engine.workflows())
        inbox = Inbox(db_path(root))
        try:
            rows = []
            now = time.time()
            for trig in found.triggers:
                last = inbox.last_event(trig.event)
                dispatch = inbox.last_dispatch(trig.name)
                status = None
                if dispatch and dispatch.run_id and dispatch.status != "skipped":
                    status = (await engine.get_run(dispatch.run_id)).status
                rows.append(
                    {
                        "name": trig.name,
                        "kind": trig.kind,
                        "spec": trig.spec,
                        "workflow": trig.workflow,
                        "event": trig.event,
                        "next_fire": iso_utc(next_fire(trig, now))
                        if trig.kind in ("cron", "every")
                        else None,
                        "last_event": last.id if last else None,
                        "last_event_at": iso_utc(last.created) if last else None,
                        "last_run": dispatch.run_id if dispatch else None,
                        "last_run_status": status or (dispatch.status if dispatch else None),
                        "overlap": trig.overlap,
                        "source": trig.source,
                    }
                )
        finally:
            inbox.close()
    return rows, found.notes


async def print_triggers(root: Path, config: Config, *, as_json: bool) -> None:
    rows, notes = await trigger_rows(root, config)
    for note in notes:
        print(note)
    if as_json:
        print(dumps(rows))
        return
    print("\n".join(trigger_lines(rows)))


def trigger_lines(rows: list[dict[str, Any]]) -> list[str]:
    """The triggers table (``loopcraft triggers``, the app's ``/triggers``)."""
    if not rows:
        return ["no triggers: declare them in .loopcraft/triggers.toml or with @workflow(triggers=[...])"]
    lines = [f"{'TRIGGER':<28} {'WHEN':<24} {'WORKFLOW':<16} {'NEXT FIRE':<21} LAST RUN"]
    for r in rows:
        when = f"{r['kind']} {r['spec']}"
        last = f"{r['last_run']} {r['last_run_status']}" if r["last_run"] else (r["last_run_status"] or "-")
        lines.append(f"{r['name']:<28} {when:<24} {r['workflow']:<16} {r['next_fire'] or '-':<21} {last}")
    return lines


def event_rows(root: Path, limit: int) -> list[dict[str, Any]]:
    inbox = Inbox(db_path(root))
    try:
        rows = []
        for ev in inbox.events(limit):
            outcomes = [
                {"trigger": d.trigger, "status": d.status, "run_id": d.run_id, "reason": d.reason}
                for d in inbox.dispatches(ev.id)
            ]
            rows.append(
                {
                    "id": ev.id,
                    "name": ev.name,
                    "source": ev.source,
                    "created": iso_utc(ev.created),
                    "status": ev.status,
                    "reason": ev.reason,
                    "dedupe_key": ev.dedupe_key,
                    "payload": ev.payload,
                    "outcomes": outcomes,
                }
            )
        return rows
    finally:
        inbox.close()


def print_events(root: Path, *, as_json: bool, limit: int) -> None:
    ensure_state_dir(root)
    rows = event_rows(root, limit)
    if as_json:
        print(dumps(rows))
        return
    if not rows:
        print("no events yet: `loopcraft event NAME` records one")
        return
    print(f"{'EVENT':<30} {'NAME':<22} {'SOURCE':<9} {'STATUS':<8} OUTCOME")
    for r in rows:
        outcome = "; ".join(
            f"{o['trigger']}: run {o['run_id']}"
            if o["status"] != "skipped"
            else f"{o['trigger']}: skipped ({o['reason']})"
            for o in r["outcomes"]
        ) or (r["reason"] or "waiting for `loopcraft serve`")
        print(f"{r['id']:<30} {r['name']:<22} {r['source']:<9} {r['status']:<8} {outcome}")


def _has_findings(output: Any) -> bool:
    return isinstance(output, dict) and bool(output.get("findings"))


async def inbox_rows(root: Path, config: Config) -> list[dict[str, Any]]:
    """Runs started by triggers: those needing attention (a gate, findings, a failure) first."""
    async with await Engine.open(root, config) as engine:
        inbox = Inbox(db_path(root))
        try:
            rows = []
            for d in reversed(inbox.dispatches()):
                if not d.run_id or d.status == "skipped":
                    continue
                info = await engine.get_run(d.run_id)
                if info.status in ("running", "pending", "paused"):
                    state = "running"
                elif info.status in _ATTENTION or _has_findings(info.output):
                    state = "attention"
                else:
                    state = "archived"
                rows.append(
                    {
                        "run_id": info.id,
                        "workflow": info.workflow,
                        "status": info.status,
                        "inbox": state,
                        "trigger": d.trigger,
                        "event": d.event_id,
                        "created": iso_utc(info.created),
                    }
                )
        finally:
            inbox.close()
    order = {"attention": 0, "running": 1, "archived": 2}
    return sorted(rows, key=lambda r: order[r["inbox"]])


async def print_inbox(root: Path, config: Config, *, as_json: bool) -> None:
    rows = await inbox_rows(root, config)
    if as_json:
        print(dumps(rows))
        return
    print("\n".join(inbox_lines(rows)))


def inbox_lines(rows: list[dict[str, Any]]) -> list[str]:
    """The inbox table (``loopcraft inbox``, the app's ``/inbox``)."""
    if not rows:
        return ["the inbox is empty: runs started by triggers land here"]
    lines = [f"{'INBOX':<10} {'RUN':<22} {'WORKFLOW':<16} {'STATUS':<16} TRIGGER"]
    for r in rows:
        lines.append(
            f"{r['inbox']:<10} {r['run_id']:<22} {r['workflow']:<16} {r['status']:<16} {r['trigger']}"
        )
    return lines
