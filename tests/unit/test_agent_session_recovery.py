"""Reading a damaged transcript: a torn last line is cut, a bad line before it is an error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loopcraft.agent.session import SessionError, SessionHeader, SessionLog, discard_unbegun, list_sessions


def _session(path: Path, *contents: str) -> None:
    log = SessionLog.create(path, SessionHeader(id="s1", workspace="/w", model="scripted/x"))
    for text in contents:
        log.append("message", message={"role": "user", "content": text})
    log.close()


def test_garbage_after_the_last_newline_is_cut_and_the_rest_kept(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    _session(path, "one", "two")
    intact = path.read_bytes()
    with path.open("ab") as fh:
        fh.write(b"\0\0\0\0\0\0")  # what a power cut can leave where the last entry was
    log = SessionLog.open(path)
    assert [e["message"]["content"] for e in log.entries] == ["one", "two"]
    assert path.read_bytes() == intact
    log.append("status", status="completed", reason="")
    log.close()
    assert [e["type"] for e in SessionLog.open(path).entries] == ["message", "message", "status"]


def test_a_bad_complete_last_line_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    _session(path, "one")
    intact = path.read_bytes()
    with path.open("ab") as fh:
        fh.write(b'{"type": "mess\n')
    assert len(SessionLog.open(path).entries) == 1
    assert path.read_bytes() == intact


def test_an_unterminated_last_entry_is_cut_so_appends_stay_on_their_own_line(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    _session(path, "one")
    with path.open("ab") as fh:
        fh.write(json.dumps({"type": "status", "status": "running"}).encode())  # no newline yet
    log = SessionLog.open(path)
    assert len(log.entries) == 1
    log.append("status", status="completed", reason="")
    log.close()
    assert [e["type"] for e in SessionLog.open(path).entries] == ["message", "status"]


@pytest.mark.parametrize("bad", [b'{"type": "mess', b"[1, 2]", b""])
def test_a_bad_line_in_the_middle_raises_and_nothing_is_truncated(tmp_path: Path, bad: bytes) -> None:
    path = tmp_path / "s.jsonl"
    _session(path, "one", "two", "three")
    lines = path.read_bytes().split(b"\n")
    lines[2] = bad  # the entry "two" (line 3) is damaged; "three" follows it
    damaged = b"\n".join(lines)
    path.write_bytes(damaged)
    with pytest.raises(SessionError) as caught:
        SessionLog.open(path)
    message = str(caught.value)
    assert "\n" not in message
    assert str(path) in message and "line 3" in message and "fix or delete line 3" in message
    assert path.read_bytes() == damaged


def test_a_damaged_header_line_is_reported_by_number(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    _session(path, "one")
    damaged = b"{oops\n" + path.read_bytes().split(b"\n", 1)[1]
    path.write_bytes(damaged)
    with pytest.raises(SessionError, match="line 1 "):
        SessionLog.open(path)
    assert path.read_bytes() == damaged


def test_list_sessions_skips_a_damaged_transcript(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.jsonl", tmp_path / "bad.jsonl"
    _session(good, "hello")
    _session(bad, "one", "two")
    lines = bad.read_bytes().split(b"\n")
    lines[1] = b"not json"
    bad.write_bytes(b"\n".join(lines))
    assert [s.path for s in list_sessions(tmp_path)] == [good]


@pytest.mark.parametrize("stub", [b"", b'{"type": "header", "id": "s1", "work'])
def test_a_stub_left_by_a_kill_at_creation_is_discarded(tmp_path: Path, stub: bytes) -> None:
    path = tmp_path / "s.jsonl"
    path.write_bytes(stub)
    assert discard_unbegun(path) and not path.exists()
    assert not discard_unbegun(path)  # nothing there: nothing to do


def test_a_begun_session_is_never_discarded(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    _session(path)
    before = path.read_bytes()
    assert not discard_unbegun(path)
    assert path.read_bytes() == before
