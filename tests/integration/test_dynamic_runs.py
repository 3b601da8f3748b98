"""Dynamic runs (issue 13) on the real path: ``loopcraft chat -p`` as a subprocess, the scripted
model through litellm, the chat agent calling ``workflow`` with ``action=parallel`` of three
reviewers and then synthesising; the journal, a SIGKILL mid fan-out and ``loopcraft resume``."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from loopcraft.config import Config
from loopcraft.engine.service import Engine

REVIEWERS = ("review-correctness", "review-tests", "review-security")


def _script(pace: dict[str, float] | None = None) -> dict[str, Any]:
    stages = [{"name": n, "prompt": f"Review the change for {n.split('-')[1]}."} for n in REVIEWERS]
    slow = pace or {}
    return {
        "chunk_size": 4,
        "replies": [
            {
                "match": r"\breview\b",
                "stage": "chat",
                "turns": [
                    {
                        "tool_calls": [
                            {
                                "name": "workflow",
                                "arguments": {
                                    "action": "parallel",
                                    "request": "review my change",
                                    "stages": stages,
                                },
                            }
                        ]
                    },
                    {"text": "Synthesis: the three reviewers approve."},
                ],
            }
        ],
        "stages": {n: [{"text": f"{n}: approve", "pace": slow.get(n, 0)}] for n in REVIEWERS},
    }


def _setup(repo: Path, script: dict[str, Any], calls: Path) -> dict[str, str]:
    (repo / ".loopcraft" / "scripts").mkdir(parents=True, exist_ok=True)
    (repo / ".loopcraft" / "scripts" / "dyn.yaml").write_text(yaml.safe_dump(script))
    return {**os.environ, "LOOPCRAFT_SCRIPTED_CALL_LOG": str(calls), "PYTHONUNBUFFERED": "1"}


def _loopcraft(
    repo: Path, env: dict[str, str], *args: str, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "loopcraft", *args],
        cwd=repo,
        env=env,
        text=True,
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
    )


def _recorded(repo: Path) -> set[tuple[str, int]]:
    """(stage, turn) pairs whose answer is in a stage transcript of a run."""
    found: set[tuple[str, int]] = set()
    for path in (repo / ".loopcraft" / "runs").glob("*/stages/*.jsonl"):
        lines = path.read_text().splitlines()
        try:
            stage = json.loads(lines[0])["stage"]
            entries = [json.loads(line) for line in lines[1:]]
        except (ValueError, KeyError, IndexError):
            continue
        said = [e for e in entries if e.get("type") == "message" and e["message"].get("role") == "assistant"]
        found.update((stage, turn) for turn in range(len(said)))
    return found


def _calls(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


async def _journal(repo: Path) -> tuple[list[Any], list[Any]]:
    engine = await Engine.open(repo, Config())
    try:
        runs = await engine.runs()
        steps = await engine.journal.load_steps(runs[0].id) if runs else []
        return runs, steps
    finally:
        await engine.close()


def test_chat_p_runs_a_parallel_fan_out_as_one_dynamic_run(git_repo: Path, tmp_path: Path) -> None:
    env = _setup(git_repo, _script(), tmp_path / "calls.jsonl")
    done = _loopcraft(
        git_repo,
        env,
        "chat",
        "-p",
        "review my change",
        "--model",
        "scripted/dyn",
        "--permissions",
        "yolo",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)  # stdout holds only the JSON document
    assert data["answer"] == "Synthesis: the three reviewers approve."
    assert data["session_id"] and data["status"] == "completed"
    assert len(data["runs"]) == 1 and data["runs"][0]["status"] == "completed"
    assert data["runs"][0]["workflow"].startswith("dynamic:")
    runs, steps = asyncio.run(_journal(git_repo))
    assert [r.id for r in runs] == [data["runs"][0]["id"]]
    assert runs[0].workflow == "dynamic:" + runs[0].id.rsplit("-", 1)[1]
    tasks = sorted(s.name for s in steps if s.kind == "task")
    assert tasks == sorted(REVIEWERS)
    assert all(s.status == "completed" for s in steps if s.kind == "task")
    # the chat agent read the reviewers' outputs (the tool's result) before it synthesised
    chat_turns = [c for c in _calls(tmp_path / "calls.jsonl") if c["stage"] == "chat"]
    assert len(chat_turns) == 2


def test_sigkill_mid_fan_out_and_resume_repeats_no_completed_model_turn(
    git_repo: Path, tmp_path: Path
) -> None:
    calls = tmp_path / "calls.jsonl"
    env = _setup(git_repo, _script({"review-tests": 1.0, "review-security": 1.0}), calls)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "loopcraft",
            "chat",
            "-p",
            "review it",
            "--model",
            "scripted/dyn",
            "--permissions",
            "yolo",
        ],
        cwd=git_repo,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while ("review-correctness", 0) not in _recorded(git_repo):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the fast reviewer never finished"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    before = _calls(calls)
    recorded = _recorded(git_repo)
    assert ("review-security", 0) not in recorded  # killed mid fan-out
    runs, _ = asyncio.run(_journal(git_repo))
    assert len(runs) == 1 and runs[0].workflow.startswith("dynamic:")
    resumed = _loopcraft(git_repo, env, "resume", runs[0].id)
    assert resumed.returncode == 0, resumed.stderr
    after = _calls(calls)
    done = [(c["stage"], c["turn"]) for c in after if c["stage"] != "chat"]
    again = {(c["stage"], c["turn"]) for c in after[len(before) :]} & recorded
    assert not again, f"model turns repeated after their answer was recorded: {again}"
    assert {(n, 0) for n in REVIEWERS} <= set(done)
    _, steps = asyncio.run(_journal(git_repo))
    assert sorted(s.name for s in steps if s.kind == "task" and s.status == "completed") == sorted(REVIEWERS)


def test_chat_without_a_terminal_refuses_the_tool_in_default_mode(git_repo: Path, tmp_path: Path) -> None:
    env = _setup(git_repo, _script(), tmp_path / "calls.jsonl")
    done = _loopcraft(git_repo, env, "chat", "-p", "review my change", "--model", "scripted/dyn", "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["runs"] == []  # refused: no human to approve it, so no run was started
    runs, _ = asyncio.run(_journal(git_repo))
    assert runs == []


def test_promote_writes_a_workflow_that_lists_and_reruns_the_same_stages(
    git_repo: Path, tmp_path: Path
) -> None:
    calls = tmp_path / "calls.jsonl"
    env = _setup(git_repo, _script(), calls)
    chat = _loopcraft(
        git_repo,
        env,
        "chat",
        "-p",
        "review my change",
        "--model",
        "scripted/dyn",
        "--permissions",
        "yolo",
        "--json",
    )
    assert chat.returncode == 0, chat.stderr
    run_id = json.loads(chat.stdout)["runs"][0]["id"]
    short = run_id.rsplit("-", 1)[1]
    done = _loopcraft(git_repo, env, "promote", short, "triple-review")
    assert done.returncode == 0, done.stderr
    path = git_repo / ".loopcraft" / "workflows" / "triple-review.py"
    source = path.read_text()
    assert "ctx.parallel(" in source and 'request: str = "review my change"' in source
    assert all(f'"{n}"' in source for n in REVIEWERS)
    compile(source, str(path), "exec")
    listed = _loopcraft(git_repo, env, "workflows", "--json")
    assert listed.returncode == 0, listed.stderr
    assert "triple-review" in [w["name"] for w in json.loads(listed.stdout)["workflows"]]
    ran = _loopcraft(
        git_repo,
        env,
        "run",
        "triple-review",
        "--input",
        "request=check the tests",
        "--model",
        "scripted/dyn",
        "--json",
    )
    assert ran.returncode == 0, ran.stderr
    assert sorted(json.loads(ran.stdout)["output"]) == sorted(REVIEWERS)
    runs, _ = asyncio.run(_journal(git_repo))
    newest = runs[0]
    assert newest.workflow == "triple-review"
    steps = asyncio.run(_steps_of(git_repo, newest.id))
    assert sorted(s.name for s in steps if s.kind == "task") == sorted(REVIEWERS)

    refusals = [
        (("promote", short, "Bad Name"), 2, "bad workflow name"),
        (("promote", short, "triple-review"), 2, "--force"),
        (("promote", "nosuchrun", "other"), 4, "unknown run"),
        (("promote", newest.id, "again"), 2, "already a file"),
    ]
    for args, code, words in refusals:
        refused = _loopcraft(git_repo, env, *args)
        assert refused.returncode == code, (args, refused.stderr)
        assert words in refused.stderr and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    forced = _loopcraft(git_repo, env, "promote", short, "triple-review", "--force")
    assert forced.returncode == 0, forced.stderr


async def _steps_of(repo: Path, run_id: str) -> list[Any]:
    engine = await Engine.open(repo, Config())
    try:
        return await engine.journal.load_steps(run_id)
    finally:
        await engine.close()
