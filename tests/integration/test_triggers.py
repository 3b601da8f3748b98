"""Triggers end to end with real processes, a real journal, real git and real time (kept short):
schedules, file watches, git hooks, webhooks, the durable inbox, the serve lease and crashes."""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from loopcraft.triggers.webhooks import signature
from tests.cli_process import spawn_loopcraft

QUICK = """
from loopcraft import Context, workflow


@workflow(description="returns its input at once")
async def quick(ctx: Context, target: str = "") -> str:
    return target
"""

SLOW = """
import asyncio

from loopcraft import Context, workflow


@workflow(description="takes a while, in steps (each a safe point for kill)")
async def slow(ctx: Context, target: str = "") -> str:
    for i in range(15):
        await ctx.tool(f"tick-{i}", lambda: None)
        await asyncio.sleep(0.1)
    return target
"""


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1", "LOOPCRAFT_TRUST": "1"}


def _repo(git_repo: Path, triggers: str, *workflows: tuple[str, str]) -> Path:
    folder = git_repo / ".loopcraft" / "workflows"
    folder.mkdir(parents=True, exist_ok=True)
    for name, source in workflows or (("quick", QUICK),):
        (folder / f"{name}.py").write_text(source)
    (git_repo / ".loopcraft" / "triggers.toml").write_text(triggers)
    return git_repo


def lc(repo: Path, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "loopcraft", *args],
        cwd=repo,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def db(repo: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    path = repo / ".loopcraft" / "loopcraft.db"
    if not path.exists():
        return []
    conn = sqlite3.connect(path, timeout=10)
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "inbox_events" not in tables:
            return []
        return list(conn.execute(sql, params).fetchall())
    finally:
        conn.close()


def wait_for(check: Callable[[], Any], timeout: float = 60, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class Serve:
    """A ``loopcraft serve`` process whose output lines are read as they come."""

    def __init__(self, repo: Path, *args: str) -> None:
        self.proc = spawn_loopcraft(repo, _env(), "serve", *args)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._pump, daemon=True)
        self._reader.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def read(self) -> list[str]:
        return list(self.lines)

    def wait_line(self, needle: str, timeout: float = 60) -> str:
        def found() -> str | None:
            if self.proc.poll() is not None and needle not in "\n".join(self.read()):
                raise AssertionError(f"serve exited: {self.read()} {self.proc.stderr.read()}")  # type: ignore[union-attr]
            return next((line for line in self.read() if needle in line), None)

        return str(wait_for(found, timeout, f"serve to print {needle!r} (got {self.lines})"))

    def stop(self, sig: int = signal.SIGTERM) -> int:
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=60)
        self._reader.join(timeout=10)
        return code


def _runs(repo: Path) -> list[tuple[str, str, str]]:
    path = repo / ".loopcraft" / "loopcraft.db"
    conn = sqlite3.connect(path, timeout=10)
    try:
        return list(conn.execute("SELECT id, status, inputs FROM runs ORDER BY created"))
    finally:
        conn.close()


def test_every_trigger_fires_once_per_slot_and_each_fire_is_one_run(git_repo: Path) -> None:
    repo = _repo(git_repo, '[[trigger]]\nworkflow = "quick"\nevery = "1s"\nname = "tick"\n')
    serve = Serve(repo)
    serve.wait_line("trigger(s): tick")
    started = time.time()
    wait_for(
        lambda: len(db(repo, "SELECT run_id FROM inbox_dispatch WHERE status = 'started'")) >= 3,
        what="3 runs",
    )
    assert serve.stop() == 0
    elapsed = time.time() - started
    events = db(repo, "SELECT json_extract(payload, '$.scheduled') FROM inbox_events ORDER BY created")
    slots = sorted(time.mktime(time.strptime(e[0], "%Y-%m-%dT%H:%M:%SZ")) for e in events)
    assert 3 <= len(slots) <= elapsed + 2
    assert [b - a for a, b in itertools.pairwise(slots)] == [1.0] * (len(slots) - 1)  # no gap, no double
    dispatched = db(repo, "SELECT event_id, run_id FROM inbox_dispatch WHERE status = 'started'")
    runs = {r[0]: r[1] for r in _runs(repo)}
    assert len({d[1] for d in dispatched}) == len(dispatched) >= len(slots) - 1
    assert all(runs[d[1]] == "completed" for d in dispatched[:3])


def test_file_writes_are_debounced_into_one_run(git_repo: Path) -> None:
    repo = _repo(
        git_repo,
        '[[trigger]]\nworkflow = "quick"\nfiles = ["src/**/*.py"]\ndebounce = 0.5\nname = "src"\n'
        'inputs = { target = "{paths}" }\n',
    )
    (repo / ".gitignore").write_text("src/ignored.py\n")
    (repo / "src" / "pkg").mkdir(parents=True)
    serve = Serve(repo)
    serve.wait_line("watching files")
    for i in range(10):
        (repo / "src" / "pkg" / "mod.py").write_text(f"x = {i}\n")
    (repo / "src" / "ignored.py").write_text("ignored\n")
    (repo / "notes.txt").write_text("not matched\n")
    serve.wait_line("-> run")
    assert serve.stop() == 0
    events = db(repo, "SELECT name, payload FROM inbox_events")
    assert [(e[0], json.loads(e[1])["paths"]) for e in events] == [("files.src", ["src/pkg/mod.py"])]
    runs = _runs(repo)
    assert len(runs) == 1 and json.loads(runs[0][2]) == {"target": "src/pkg/mod.py"}


def test_git_commit_with_hooks_records_an_event_and_serve_once_starts_one_run(git_repo: Path) -> None:
    repo = _repo(
        git_repo,
        '[[trigger]]\nworkflow = "quick"\ngit = "post-commit"\ninputs = { target = "{commit}~1..{commit}" }\n',
    )
    hooks = repo / ".git" / "hooks"
    (hooks / "post-commit").write_text('#!/bin/sh\necho mine >> "$(git rev-parse --git-dir)/mine.log"\n')
    (hooks / "post-commit").chmod(0o755)
    done = lc(repo, "hooks", "install")
    assert done.returncode == 0 and "existing hook runs first" in done.stdout
    (repo / "a.txt").write_text("a\n")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "add", "a.txt"], check=True)
    subprocess.run([*git, "commit", "-qm", "add a"], check=True)
    commit = subprocess.run(
        [*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()
    assert (repo / ".git" / "mine.log").read_text() == "mine\n"  # the chained hook ran
    events = db(repo, "SELECT name, payload, status FROM inbox_events")
    assert len(events) == 1 and events[0][0] == "git.post-commit" and events[0][2] == "pending"
    assert json.loads(events[0][1])["commit"] == commit and json.loads(events[0][1])["paths"] == ["a.txt"]
    once = lc(repo, "serve", "--once")
    assert once.returncode == 0, once.stderr
    runs = _runs(repo)
    assert len(runs) == 1 and runs[0][1] == "completed"
    assert json.loads(runs[0][2]) == {"target": f"{commit}~1..{commit}"}
    assert lc(repo, "serve", "--once").returncode == 0 and len(_runs(repo)) == 1  # nothing twice
    assert lc(repo, "hooks", "uninstall").returncode == 0
    assert (hooks / "post-commit").read_text().startswith("#!/bin/sh\necho mine")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _post(url: str, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_signed_webhook_starts_a_run_unsigned_gets_401_and_records_nothing(
    git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI_HOOK_SECRET", "s3cret-value")
    repo = _repo(
        git_repo,
        '[[trigger]]\nworkflow = "quick"\nwebhook = "ci-failed"\nsecret_env = "CI_HOOK_SECRET"\n'
        'inputs = { target = "{payload.job}" }\n',
    )
    port = _free_port()
    serve = Serve(repo, "--http", f"127.0.0.1:{port}")
    serve.wait_line("webhooks at")
    url = f"http://127.0.0.1:{port}/hooks/ci-failed"
    body = b'{"job": "lint"}'
    assert _post(url, body, {"Content-Type": "application/json"}) == 401
    assert _post(url, body, {"X-Hub-Signature-256": signature("wrong", body)}) == 401
    assert _post(url, b"x" * 1_000_001, {"X-Hub-Signature-256": signature("s3cret-value", b"")}) == 413
    assert db(repo, "SELECT id FROM inbox_events") == []
    assert _post(url, body, {"X-Hub-Signature-256": signature("s3cret-value", body)}) == 202
    serve.wait_line("-> run")
    assert serve.stop() == 0
    wait_for(lambda: _runs(repo) and _runs(repo)[0][1] != "running", what="the run to end")
    assert [json.loads(r[2]) for r in _runs(repo)] == [{"target": "lint"}]
    text = (repo / ".loopcraft" / "loopcraft.db").read_bytes()
    assert b"s3cret-value" not in text


def test_two_serves_on_one_repo_fire_each_schedule_once(git_repo: Path) -> None:
    repo = _repo(git_repo, '[[trigger]]\nworkflow = "quick"\nevery = "1s"\nname = "tick"\n')
    first, second = Serve(repo), Serve(repo)
    lines = [first.wait_line("serve:"), second.wait_line("serve:")]
    assert sum("standby" in line for line in lines) == 1
    wait_for(
        lambda: len(db(repo, "SELECT run_id FROM inbox_dispatch WHERE status = 'started'")) >= 3,
        what="3 runs",
    )
    assert first.stop() == 0 and second.stop() == 0
    scheduled = [e[0] for e in db(repo, "SELECT json_extract(payload, '$.scheduled') FROM inbox_events")]
    assert len(scheduled) == len(set(scheduled))
    per_event = db(
        repo, "SELECT event_id, COUNT(*) FROM inbox_dispatch GROUP BY event_id HAVING COUNT(*) > 1"
    )
    assert per_event == []
    assert len(_runs(repo)) == len(db(repo, "SELECT run_id FROM inbox_dispatch WHERE status = 'started'"))


def test_serve_sigkilled_with_events_queued_loses_none_and_duplicates_none(git_repo: Path) -> None:
    repo = _repo(
        git_repo,
        'max_concurrent_runs = 1\n[[trigger]]\nworkflow = "slow"\nwebhook = "job"\noverlap = "queue"\n'
        'inputs = { target = "{payload.n}" }\n',
        ("slow", SLOW),
    )
    for n in range(4):
        assert lc(repo, "event", "job", "--payload", json.dumps({"n": str(n)})).returncode == 0
    serve = Serve(repo)
    serve.wait_line("-> run")
    serve.stop(signal.SIGKILL)
    once = lc(repo, "serve", "--once", timeout=120)
    assert once.returncode == 0, once.stderr
    dispatched = db(repo, "SELECT event_id, run_id, status FROM inbox_dispatch")
    events = db(repo, "SELECT id, status FROM inbox_events")
    assert len(events) == 4 and all(e[1] == "done" for e in events)
    assert sorted(d[0] for d in dispatched) == sorted(e[0] for e in events)  # one outcome per event
    runs = _runs(repo)
    assert len(runs) == 4 and all(r[1] == "completed" for r in runs)
    assert sorted(json.loads(r[2])["target"] for r in runs) == ["0", "1", "2", "3"]


def test_overlap_skip_skips_while_a_run_is_active(git_repo: Path) -> None:
    repo = _repo(
        git_repo,
        '[[trigger]]\nworkflow = "slow"\nwebhook = "job"\noverlap = "skip"\n',
        ("slow", SLOW),
    )
    for n in range(3):
        assert lc(repo, "event", "job", "--dedupe", f"k{n}").returncode == 0
    assert lc(repo, "event", "job", "--dedupe", "k0").stdout.count("already recorded") == 1
    once = lc(repo, "serve", "--once")
    assert once.returncode == 0, once.stderr
    outcomes = db(repo, "SELECT status, reason FROM inbox_dispatch ORDER BY created")
    assert [o[0] for o in outcomes] == ["started", "skipped", "skipped"]
    assert all('overlap = "skip"' in (o[1] or "") for o in outcomes[1:])
    assert len(_runs(repo)) == 1


@pytest.mark.parametrize(
    ("toml", "problem"),
    [
        ('[[trigger]]\nworkflow = "nope"\nevery = "1s"\n', "unknown workflow"),
        ('[[trigger]]\nworkflow = "quick"\ncron = "61 * * * *"\n', "bad cron expression"),
        (
            '[[trigger]]\nworkflow = "quick"\ncron = "0 9 * * *"\ntimezone = "Mars/Base"\n',
            "unknown time zone",
        ),
        ('[[trigger]]\nworkflow = "quick"\nevery = "1s"\ninputs = { nope = "x" }\n', "unknown input 'nope'"),
        ('[[trigger]]\nworkflow = "quick"\nevery = "soon"\n', "bad interval"),
        ('[[trigger]]\nworkflow = "quick"\n', "give exactly one of"),
    ],
)
def test_a_bad_trigger_is_one_line_naming_the_file_and_nothing_is_recorded(
    git_repo: Path, toml: str, problem: str
) -> None:
    repo = _repo(git_repo, toml)
    done = lc(repo, "serve", "--once")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and problem in lines[0] and "triggers.toml" in lines[0], done.stderr
    assert db(repo, "SELECT id FROM inbox_events") == []


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["job", "--payload", "{not json"], "not JSON"),
        (["job", "--payload", "[1, 2]"], "JSON object"),
        (["bad name!"], "bad event name"),
    ],
)
def test_a_bad_payload_is_one_line_and_nothing_is_recorded(
    git_repo: Path, args: list[str], problem: str
) -> None:
    done = lc(git_repo, "event", *args)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and problem in done.stderr
    assert db(git_repo, "SELECT id FROM inbox_events") == []


def test_an_untrusted_repo_ignores_its_triggers_file_with_one_line(git_repo: Path) -> None:
    repo = _repo(git_repo, '[[trigger]]\nworkflow = "hello"\nevery = "1s"\n')
    env = {k: v for k, v in _env().items() if k != "LOOPCRAFT_TRUST"}
    done = subprocess.run(
        [sys.executable, "-m", "loopcraft", "triggers"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0
    assert "triggers.toml was ignored" in done.stdout and "no triggers" in done.stdout


DECLARED = """
from loopcraft import Context, on_webhook, workflow


@workflow(triggers=[on_webhook("deploy", inputs={"target": "{payload.env}"}, overlap="skip")])
async def deployed(ctx: Context, target: str) -> str:
    return "checked " + target
"""


def test_a_trigger_declared_on_the_workflow_starts_it_and_show_names_the_source(git_repo: Path) -> None:
    repo = _repo(git_repo, "", ("deployed", DECLARED))
    listed = lc(repo, "triggers", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [(t["name"], t["event"]) for t in json.loads(listed.stdout)] == [("deployed.webhook", "deploy")]
    assert lc(repo, "event", "deploy", "--payload", '{"env": "prod"}').returncode == 0
    assert lc(repo, "serve", "--once").returncode == 0
    (run_id, status, _), *rest = _runs(repo)
    assert status == "completed" and rest == []
    shown = lc(repo, "show", run_id, "--json")
    assert json.loads(shown.stdout)["source"]["trigger"] == "deployed.webhook"
    assert json.loads(shown.stdout)["run"]["output"] == "checked prod"
    listed_runs = json.loads(lc(repo, "runs", "--json").stdout)
    assert [r["source"]["trigger"] for r in listed_runs] == ["deployed.webhook"]
    assert "<- trigger deployed.webhook" in lc(repo, "runs").stdout
    inbox = json.loads(lc(repo, "inbox", "--json").stdout)
    assert [(r["run_id"], r["inbox"]) for r in inbox] == [(run_id, "archived")]
    events = json.loads(lc(repo, "events", "--json").stdout)
    assert events[0]["outcomes"][0]["run_id"] == run_id


def test_a_workflow_trigger_whose_inputs_do_not_fit_is_one_line(git_repo: Path) -> None:
    bad = DECLARED.replace('{"target": "{payload.env}"}', '{"nope": "x"}')
    repo = _repo(git_repo, "", ("deployed", bad))
    done = lc(repo, "serve", "--once")
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "missing input 'target'" in done.stderr and "deployed.py" in done.stderr


@pytest.mark.parametrize(("catchup", "expected"), [("all", 5), ("one", 1)])
def test_fires_missed_while_no_serve_ran_follow_catchup(git_repo: Path, catchup: str, expected: int) -> None:
    repo = _repo(
        git_repo, f'[[trigger]]\nworkflow = "quick"\nevery = "1h"\nname = "hourly"\ncatchup = "{catchup}"\n'
    )
    assert lc(repo, "serve", "--once").returncode == 0  # first start: the schedule starts now, nothing due
    assert db(repo, "SELECT id FROM inbox_events") == []
    conn = sqlite3.connect(repo / ".loopcraft" / "loopcraft.db")
    with conn:
        conn.execute("UPDATE trigger_state SET last_fire = last_fire - 5 * 3600 - 1")  # down for 5 hours
    conn.close()
    assert lc(repo, "serve", "--once").returncode == 0
    scheduled = db(repo, "SELECT json_extract(payload, '$.scheduled') FROM inbox_events")
    assert len(scheduled) == expected == len(_runs(repo))
    assert lc(repo, "serve", "--once").returncode == 0 and len(_runs(repo)) == expected  # not again


def test_overlap_cancel_previous_kills_the_live_run_and_starts_the_new_one(git_repo: Path) -> None:
    repo = _repo(
        git_repo,
        '[[trigger]]\nworkflow = "slow"\nwebhook = "job"\noverlap = "cancel_previous"\n',
        ("slow", SLOW),
    )
    for n in range(2):
        assert lc(repo, "event", "job", "--dedupe", f"k{n}").returncode == 0
    assert lc(repo, "serve", "--once").returncode == 0
    assert sorted(r[1] for r in _runs(repo)) == ["completed", "killed"]
