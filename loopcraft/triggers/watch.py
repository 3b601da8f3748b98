"""The file watcher of ``serve``: changes under the repo (never ``.git/``, ``.loopcraft/`` or
``.gitignore``d paths) matched against each files trigger's globs, debounced per trigger (one
event once its paths have been quiet for ``debounce`` seconds)."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pathspec

from loopcraft.triggers.spec import Trigger

Record = Callable[[str, dict[str, Any], str, str | None], str]
_SKIP_DIRS = (".git", ".loopcraft")


def relevant(root: Path, paths: set[str]) -> list[str]:
    """The changed paths, relative to ``root``, minus ``.git/``, ``.loopcraft/`` and ignored ones."""
    rels: list[str] = []
    for raw in paths:
        try:
            rel = Path(raw).resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            continue
        if rel.split("/", 1)[0] in _SKIP_DIRS:
            continue
        rels.append(rel)
    if not rels or not (root / ".git").exists():
        return sorted(rels)
    done = subprocess.run(
        ["git", "check-ignore", "--stdin", "--no-index"],
        cwd=root,
        input="\n".join(rels) + "\n",
        capture_output=True,
        text=True,
        check=False,
    )
    ignored = set(done.stdout.splitlines())
    return sorted(r for r in rels if r not in ignored)


class Debouncer:
    """Collects a trigger's matching paths and records one event after a quiet ``debounce``."""

    def __init__(self, trig: Trigger, record: Record) -> None:
        self.trig = trig
        self.spec = pathspec.PathSpec.from_lines("gitwildmatch", trig.spec.split())
        self.record = record
        self.paths: set[str] = set()
        self.timer: asyncio.TimerHandle | None = None

    def feed(self, paths: list[str]) -> None:
        matched = [p for p in paths if self.spec.match_file(p)]
        if not matched:
            return
        self.paths.update(matched)
        if self.timer is not None:
            self.timer.cancel()
        self.timer = asyncio.get_running_loop().call_later(self.trig.debounce, self.flush)

    def flush(self) -> None:
        paths, self.paths, self.timer = sorted(self.paths), set(), None
        if paths:
            self.record(self.trig.event, {"paths": paths, "trigger": self.trig.name}, "files", None)


async def watch_files(
    root: Path, triggers: list[Trigger], record: Record, stop: asyncio.Event, ready: Callable[[], None]
) -> None:
    """Watch ``root`` until ``stop``; pending debounced changes are recorded when stopping.
    ``ready`` is called once the watch is in place (the watcher exists after the first step)."""
    from watchfiles import awatch

    debouncers = [Debouncer(t, record) for t in triggers]
    asyncio.get_running_loop().call_soon(ready)
    try:
        async for changes in awatch(root, stop_event=stop, debounce=50, step=20, recursive=True):
            paths = relevant(root, {path for _, path in changes})
            for debouncer in debouncers:
                debouncer.feed(paths)
    finally:
        for debouncer in debouncers:
            if debouncer.timer is not None:
                debouncer.timer.cancel()
                debouncer.flush()
