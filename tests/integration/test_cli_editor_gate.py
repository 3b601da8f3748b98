"""The editor gate (``ctx.ui.editor``) across real processes: ``loopcraft run`` stops at it (no
terminal) or waits for it (``--gates wait``); ``loopcraft prompts`` lists it, ``loopcraft answer``
gives a multi-line text, and the text reaches the workflow exactly as typed; ``--gates ask`` opens
``$EDITOR`` on the default text, and with no editor stops the run as needing input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

TEXT = "Title: fix the parser\n\n  - keep  two spaces\n\t- a tab, ünïcode ✓\n\ntrailing line\n"

WORKFLOW = """
from loopcraft import Context, workflow


@workflow(name="notes")
async def notes(ctx: Context) -> dict:
    body = await ctx.ui.editor("Write the release notes", default="draft notes")
    return {"body": body, "lines": len(body.splitlines())}
"""


def _cli(repo: Path, db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "loopcraft", *args],
        cwd=repo,
        env={**os.environ, "LOOPCRAFT_DB": str(db)},
        text=True,
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )


@pytest.fixture
def repo(git_repo: Path) -> Path:
    (git_repo / ".loopcraft" / "workflows").mkdir(parents=True)
    (git_repo / ".loopcraft" / "workflows" / "notes.py").write_text(WORKFLOW)
    return git_repo


def test_editor_gate_answered_with_loopcraft_answer_then_resumed(repo: Path, tmp_path: Path) -> None:
    db = tmp_path / "journal.db"
    started = _cli(repo, db, "run", "notes", "--json")  # no terminal: the gate stops the run
    assert started.returncode == 5, started.stderr
    run_id = json.loads(started.stdout)["id"]
    (prompt,) = json.loads(_cli(repo, db, "prompts", "--run", run_id, "--json").stdout)
    assert (prompt["kind"], prompt["question"]) == ("editor", "Write the release notes")
    answered = _cli(repo, db, "answer", run_id, prompt["id"], TEXT, "--json")
    assert answered.returncode == 0, answered.stderr
    assert json.loads(answered.stdout)["answer"] == TEXT
    done = _cli(repo, db, "resume", run_id, "--json")
    assert done.returncode == 0, done.stderr
    final = json.loads(done.stdout)
    assert final["status"] == "completed" and final["output"] == {"body": TEXT, "lines": 6}


def test_editor_gate_answered_while_the_owner_waits(repo: Path, tmp_path: Path) -> None:
    db = tmp_path / "journal.db"
    owner = subprocess.Popen(
        [sys.executable, "-m", "loopcraft", "run", "notes", "--gates", "wait", "--json"],
        cwd=repo,
        env={**os.environ, "LOOPCRAFT_DB": str(db)},
        text=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        prompts: list[dict[str, Any]] = []
        while not prompts and time.monotonic() < deadline and owner.poll() is None:
            listed = _cli(repo, db, "prompts", "--json")
            prompts = json.loads(listed.stdout) if listed.returncode == 0 else []
        assert prompts, "the owner never asked"
        # the run id may be shortened to a unique prefix; the only pending prompt needs no id
        answered = _cli(repo, db, "answer", prompts[0]["run_id"][:17], TEXT)
        assert answered.returncode == 0, answered.stderr
        out, err = owner.communicate(timeout=60)
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()
    assert owner.returncode == 0, err
    assert json.loads(out)["output"] == {"body": TEXT, "lines": 6}


EDITOR_SCRIPT = """import sys
from pathlib import Path

path = Path(sys.argv[1])
path.write_text("edited: " + path.read_text(encoding="utf-8").upper(), encoding="utf-8")
"""


def _no_editor_env(db: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("VISUAL", "EDITOR")}
    return {**env, "LOOPCRAFT_DB": str(db)}


def test_editor_gate_asked_in_the_editor_on_the_default_text(repo: Path, tmp_path: Path) -> None:
    db = tmp_path / "journal.db"
    script = tmp_path / "fake_editor.py"
    script.write_text(EDITOR_SCRIPT)
    env = {**_no_editor_env(db), "EDITOR": f"{sys.executable} {script}"}
    done = subprocess.run(
        [sys.executable, "-m", "loopcraft", "run", "notes", "--gates", "ask", "--json"],
        cwd=repo,
        env=env,
        text=True,
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "Write the release notes" in done.stderr
    assert json.loads(done.stdout)["output"] == {"body": "edited: DRAFT NOTES\n", "lines": 1}


def test_editor_gate_without_an_editor_stops_as_needing_input(repo: Path, tmp_path: Path) -> None:
    db = tmp_path / "journal.db"
    stopped = subprocess.run(
        [sys.executable, "-m", "loopcraft", "run", "notes", "--gates", "ask", "--json"],
        cwd=repo,
        env=_no_editor_env(db),
        text=True,
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert stopped.returncode == 5, stopped.stderr
    assert stopped.stderr.count("no editor: set $VISUAL or $EDITOR") == 1
    assert json.loads(stopped.stdout)["status"] == "needs_human"
    run_id = json.loads(stopped.stdout)["id"]
    answered = _cli(repo, db, "answer", run_id, TEXT)
    assert answered.returncode == 0, answered.stderr
    done = _cli(repo, db, "resume", run_id, "--json")
    assert json.loads(done.stdout)["output"] == {"body": TEXT, "lines": 6}
