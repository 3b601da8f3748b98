"""Session transcripts: every entry reaches the OS at once, fsync is group-committed off the loop."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

from loopcraft.agent import session as session_module
from loopcraft.agent.session import SessionError, SessionHeader, SessionLog, flush_all
from tests.integration.test_agent_support import make_agent, scripted_model, tool_call


def header() -> SessionHeader:
    return SessionHeader(id="g", workspace="/w", model="scripted/x")


class FsyncSpy:
    """Records the thread and file of every fsync (and still syncs for real)."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple[int, str]] = []
        self.fail = fail
        self.hook: Any = None
        self._real = os.fsync

    def __call__(self, fd: int) -> None:
        self.calls.append((threading.get_ident(), os.readlink(f"/proc/self/fd/{fd}")))
        if self.hook is not None:
            self.hook()
        if self.fail:
            raise OSError(errno.EIO, "Input/output error")
        self._real(fd)

    def files(self, path: Path) -> int:
        return sum(1 for _, name in self.calls if name == str(path))


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> FsyncSpy:
    flush_all()  # nothing left over from other tests
    fake = FsyncSpy()
    monkeypatch.setattr(session_module.os, "fsync", fake)
    return fake


async def test_append_is_flushed_at_once_and_fsynced_off_the_loop(tmp_path: Path, spy: FsyncSpy) -> None:
    path = tmp_path / "a.jsonl"
    log = SessionLog.create(path, header())
    for index in range(5):
        log.append("message", message={"role": "user", "content": f"m{index}"})
    assert spy.files(path) == 0  # append never waits on the disk
    assert len(path.read_text().splitlines()) == 6  # but every line is already in the file
    await log.wait_durable()
    assert log.synced and spy.files(path) >= 1
    assert all(thread != threading.get_ident() for thread, _ in spy.calls)
    log.close()


async def test_many_sessions_share_group_commits(tmp_path: Path, spy: FsyncSpy) -> None:
    logs = [SessionLog.create(tmp_path / f"s{i}.jsonl", header()) for i in range(4)]
    for _ in range(10):
        for log in logs:
            log.append("status", status="running", reason="")
    for log in logs:
        await log.wait_durable()
    for log in logs:
        assert log.synced
        assert spy.files(log.path) <= 3  # 11 entries each, a handful of fsyncs, not one per entry
        log.close()


def test_sync_blocks_until_durable_on_the_calling_thread(tmp_path: Path, spy: FsyncSpy) -> None:
    log = SessionLog.create(tmp_path / "b.jsonl", header())
    log.append("status", status="running", reason="")
    log.sync()
    assert log.synced
    assert (threading.get_ident(), str(log.path)) in spy.calls
    log.close()


def test_close_leaves_the_final_fsync_to_the_flusher(tmp_path: Path, spy: FsyncSpy) -> None:
    path = tmp_path / "c.jsonl"
    log = SessionLog.create(path, header())
    log.append("usage", sync=False, turn=1, source="model", usage={}, total={})
    log.close()
    with pytest.raises(SessionError, match="closed"):
        log.append("status", status="running", reason="")
    flush_all()
    assert log.synced and log._file.closed and spy.files(path) >= 1
    assert [e["type"] for e in SessionLog.open(path).entries] == ["usage"]


def test_not_durable_sessions_never_fsync(tmp_path: Path, spy: FsyncSpy) -> None:
    log = SessionLog.create(tmp_path / "d.jsonl", header(), durable=False)
    log.append("status", status="running", reason="")
    log.sync()
    log.close()
    flush_all()
    assert spy.calls == [] and log._file.closed


async def test_a_failed_fsync_is_reported_to_whoever_waits(tmp_path: Path, spy: FsyncSpy) -> None:
    log = SessionLog.create(tmp_path / "e.jsonl", header())
    spy.fail = True
    log.append("status", status="running", reason="")
    with pytest.raises(SessionError, match="fsync failed"):
        await log.wait_durable()
    spy.fail = False
    log.close()


def test_entries_survive_sigkill_right_after_append(tmp_path: Path) -> None:
    path = tmp_path / "k.jsonl"
    child = textwrap.dedent(
        f"""
        import os, signal
        from pathlib import Path
        from loopcraft.agent.session import SessionHeader, SessionLog
        log = SessionLog.create(Path({str(path)!r}), SessionHeader(id="k", workspace="/w", model="m"))
        for i in range(50):
            log.append("message", message={{"role": "user", "content": str(i)}})
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run([sys.executable, "-c", child], cwd=Path(__file__).parents[2], timeout=60)
    assert proc.returncode == -signal.SIGKILL
    entries = SessionLog.open(path).entries
    assert [e["message"]["content"] for e in entries] == [str(i) for i in range(50)]


async def test_side_effecting_tool_waits_for_its_start_to_be_durable(tmp_path: Path, spy: FsyncSpy) -> None:
    model = scripted_model([{"tool_calls": [tool_call("write", path="g.txt", content="x")]}, {"text": "ok"}])
    agent = make_agent(tmp_path, model)
    seen: list[tuple[bool, bool]] = []

    def at_fsync() -> None:  # what was on disk, and had the tool run, when the start became durable
        text = agent.session.path.read_text()
        seen.append(('"tool_call_start"' in text, (tmp_path / "g.txt").exists()))

    spy.hook = at_fsync
    result = await agent.run("go")
    assert result.status == "completed" and (tmp_path / "g.txt").read_text() == "x"
    assert (True, False) in seen  # the start was fsynced before the write happened
    agent.session.close()
    assert json.loads(agent.session.path.read_text().splitlines()[0])["type"] == "header"
