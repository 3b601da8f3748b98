"""A session process killed with SIGKILL resumes from its JSONL in a new process without
re-calling the model for the turns it had completed (counted in the scripted call log)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from loopcraft.models.scripted import read_call_log
from tests.conftest import make_git_repo

TURNS = 8

DRIVER = """
import asyncio, sys
from pathlib import Path
from loopcraft.agent.loop import Agent, create_session
from loopcraft.agent.permissions import PermissionPolicy
from loopcraft.agent.session import SessionLog
from loopcraft.config import AgentConfig, Config
from loopcraft.models.litellm_client import LiteLLMClient
from loopcraft.models.scripted import Script, register_script

workspace, session_path, turns = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
work = [{"text": f"step {i} " + "." * 24, "tool_calls": [{"name": "ls", "arguments": {"path": ".", "n": i}}]}
        for i in range(turns)]
register_script("crashy", Script.model_validate(
    {"pace": 0.08, "chunk_size": 4, "default": [*work, {"text": "all steps done"}]}))
model = "scripted/crashy"
config = AgentConfig()
if session_path.exists():
    session, prompt = SessionLog.open(session_path), None
else:
    session, prompt = create_session(session_path, workspace=workspace, model=model), "do the steps"
agent = Agent(client=LiteLLMClient(Config()), session=session, workspace=workspace, model=model,
              policy=PermissionPolicy(config, None, mode="yolo"), config=config)
result = asyncio.run(agent.run(prompt))
print(result.status, result.text, result.turns, flush=True)
"""


def _start(driver: Path, repo: Path, session: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(driver), str(repo), str(session), str(TURNS)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _journaled_turns(session: Path) -> int:
    lines = session.read_text().splitlines()[1:]
    entries = []
    for line in lines:
        try:
            entries.append(json.loads(line))
        except ValueError:
            break
    return sum(1 for e in entries if e["type"] == "message" and e["message"]["role"] == "assistant")


@pytest.mark.slow
def test_sigkill_then_resume_without_recalling_completed_turns(tmp_path: Path) -> None:
    repo = make_git_repo(tmp_path / "repo")
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    session = tmp_path / "session.jsonl"
    call_log = tmp_path / "calls.jsonl"
    env = {**os.environ, "LOOPCRAFT_SCRIPTED_CALL_LOG": str(call_log), "PYTHONPATH": str(Path.cwd())}

    first = _start(driver, repo, session, env)
    deadline = time.monotonic() + 60
    while len(read_call_log(call_log)) < 3 and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.05)
    assert first.poll() is None, first.communicate()
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    assert first.returncode == -signal.SIGKILL

    done_before = _journaled_turns(session)
    assert 2 <= done_before < TURNS + 1  # killed mid-run: the 3rd call implies 2 journaled turns

    second = _start(driver, repo, session, env)
    out, err = second.communicate(timeout=90)
    assert second.returncode == 0, err
    assert out.startswith("completed all steps done")

    calls = [c for c in read_call_log(call_log) if c["stage"] == "chat" and c["fault"] is None]
    per_turn = Counter(c["turn"] for c in calls)
    assert sorted(per_turn) == list(range(TURNS + 1))  # every turn answered, the final one too
    for turn in range(done_before):
        assert per_turn[turn] == 1, f"turn {turn} was re-called after the crash: {per_turn}"
    assert len({c["pid"] for c in calls}) == 2
    assert _journaled_turns(session) == TURNS + 1
    statuses = [
        json.loads(line).get("status")
        for line in session.read_text().splitlines()[1:]
        if '"type": "status"' in line
    ]
    assert statuses[-1] == "completed"
