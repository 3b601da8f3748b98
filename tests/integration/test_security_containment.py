"""Issue 19: an agent inside a loop can't escape its workspace, plant code or leak keys. Each test
drives a real stage on a loopback OpenAI-compatible model, with real files, real git and real bwrap."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from loopcraft import Context, workflow
from loopcraft.config import AgentConfig, Config, ModelOptions, PermissionMode, PermissionRule
from loopcraft.engine.service import Engine
from tests.fakes import OpenAIServer, openai_server

__all__ = ["openai_server"]

MODEL = "openai_compatible/test-model"
KEY = "sk-live-0123456789abcdef"
needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")


@workflow(name="one-stage")
async def one_stage(ctx: Context, mode: str = "yolo") -> str:
    return (await ctx.task("probe", prompt="Do what you are told", permissions=mode)).text


@pytest.fixture
def repo(git_repo: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(git_repo)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-fedcba9876543210")
    monkeypatch.setenv("FAKE_KEY", KEY)
    return git_repo


async def run_calls(
    repo: Path,
    server: OpenAIServer,
    calls: list[tuple[str, dict[str, Any]]],
    mode: PermissionMode = "yolo",
    **agent: Any,
) -> list[dict[str, Any]]:
    """Run one stage that makes ``calls`` (one per turn) and answers "done"; its tool results."""
    for i, (name, args) in enumerate(calls):
        server.respond(tool_calls=[{"id": f"c{i}", "name": name, "arguments": args}])
    server.respond(text="done")
    config = Config(
        model=MODEL,
        models={MODEL: ModelOptions(api_base=server.base_url, api_key_env="FAKE_KEY")},
        agent=AgentConfig(**agent),
    )
    engine = await Engine.open(repo, config)
    try:
        engine.register(one_stage)
        info = await engine.run("one-stage", {"mode": mode})
        assert info.status == "completed", info.error
        transcript = await engine.stage_transcript(info.id, "probe")
    finally:
        await engine.close()
    return [e for e in transcript if e.get("type") == "tool_result"]


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=False)


# --- finding 1: planting code loopcraft or git runs later ----------------------------------------


async def test_file_tools_cannot_plant_code_in_git_or_loopcraft(
    repo: Path, openai_server: OpenAIServer
) -> None:
    marker = repo.parent / "MARKER"
    planted = f'[core]\n\tfsmonitor = "touch {marker}; false"\n'
    results = await run_calls(
        repo,
        openai_server,
        [
            ("write", {"path": ".git/config", "content": planted}),
            ("write", {"path": ".git/hooks/pre-commit", "content": "#!/bin/sh\ntouch MARKER\n"}),
            ("write", {"path": ".loopcraft/workflows/evil.py", "content": "import os\n"}),
            ("write", {"path": ".loopcraft/config.toml", "content": 'agent.permission_mode = "yolo"\n'}),
            ("edit", {"path": ".git/HEAD", "old": "main", "new": "evil"}),
        ],
        mode="accept-edits",
    )
    assert all(r["is_error"] and "protected path" in r["output"] for r in results), results
    assert _git(repo, "status").returncode == 0
    assert not marker.exists()
    assert not (repo / ".loopcraft" / "workflows" / "evil.py").exists()
    assert not (repo / ".loopcraft" / "config.toml").exists()


async def test_allow_paths_grants_a_protected_path(repo: Path, openai_server: OpenAIServer) -> None:
    results = await run_calls(
        repo,
        openai_server,
        [("write", {"path": ".loopcraft/workflows/mine.py", "content": "x = 1\n"})],
        mode="accept-edits",
        allow_paths=[".loopcraft/workflows/**"],
    )
    assert not results[0]["is_error"], results
    assert (repo / ".loopcraft" / "workflows" / "mine.py").read_text() == "x = 1\n"


# --- finding 2: keys reach the shell, the journal, transcripts and the model ---------------------


async def test_env_in_a_stage_leaks_no_key_anywhere(repo: Path, openai_server: OpenAIServer) -> None:
    (repo / "notes.txt").write_text(f"the key is {KEY}\n")
    results = await run_calls(
        repo,
        openai_server,
        [("bash", {"command": "env; echo typed:$FAKE_KEY"}), ("bash", {"command": "cat notes.txt"})],
    )
    assert "OPENAI_API_KEY" not in results[0]["output"]
    assert "typed:\n" in results[0]["output"] + "\n"
    assert "[redacted:" in results[1]["output"]
    hits = [
        p
        for p in (repo / ".loopcraft").rglob("*")
        if p.is_file() and (KEY.encode() in p.read_bytes() or b"sk-ant-fedcba9876543210" in p.read_bytes())
    ]
    assert hits == []
    assert all(KEY not in json.dumps(body) for body in openai_server.requests)
    assert len(openai_server.requests) == 3


# --- the OS sandbox -------------------------------------------------------------------------------


@needs_bwrap
async def test_sandbox_refuses_writes_outside_git_and_network(
    repo: Path, openai_server: OpenAIServer
) -> None:
    outside = Path("/var/tmp") / f"loopcraft-outside-{os.getpid()}-{time.monotonic_ns()}"
    port = openai_server.base_url.split(":")[2].split("/")[0]
    results = await run_calls(
        repo,
        openai_server,
        [
            ("bash", {"command": f"touch {outside}"}),
            ("bash", {"command": "echo '[core]' >> .git/config"}),
            ("bash", {"command": f"exec 3<>/dev/tcp/127.0.0.1/{port} && echo CONNECTED"}),
            ("bash", {"command": "echo fine > inside.txt"}),
        ],
    )
    assert not outside.exists()
    assert "Read-only file system" in results[0]["output"]
    assert "Read-only file system" in results[1]["output"]
    assert "[core]\n" not in (repo / ".git" / "config").read_text().split("[core]", 1)[1]
    assert results[2]["is_error"] and "CONNECTED" not in results[2]["output"]
    assert (repo / "inside.txt").read_text() == "fine\n"


async def test_sandbox_required_refuses_when_none_works(
    repo: Path, openai_server: OpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loopcraft.agent import sandbox

    monkeypatch.setattr(sandbox, "bwrap_path", lambda: None)
    results = await run_calls(
        repo, openai_server, [("bash", {"command": "touch made.txt"})], sandbox_required=True
    )
    assert results[0]["is_error"] and "sandbox_required" in results[0]["output"]
    assert not (repo / "made.txt").exists()


# --- finding 4: grep follows symlinks out of the workspace ---------------------------------------


async def test_grep_does_not_follow_a_symlink_out(repo: Path, openai_server: OpenAIServer) -> None:
    (repo / "link").symlink_to("/etc/passwd")
    results = await run_calls(
        repo, openai_server, [("grep", {"pattern": "root:"}), ("find", {"pattern": "*"})]
    )
    assert "root:x" not in results[0]["output"] and "link:" not in results[0]["output"]
    assert "link" not in results[1]["output"].split()


# --- finding 5: destructive variants ----------------------------------------------------------------


async def test_git_clean_variant_needs_approval_and_keeps_the_journal(
    repo: Path, openai_server: OpenAIServer
) -> None:
    (repo / "scratch.txt").write_text("x")
    results = await run_calls(
        repo,
        openai_server,
        [("bash", {"command": "git clean -d -f -x"}), ("bash", {"command": "git -C . reset --hard"})],
    )
    assert all(r["is_error"] and "destructive" in r["output"] for r in results), results
    assert (repo / "scratch.txt").exists()
    assert (repo / ".loopcraft" / "loopcraft.db").exists()


# --- finding 6: rule bypasses ----------------------------------------------------------------------


async def test_rule_bypasses_are_refused(repo: Path, openai_server: OpenAIServer) -> None:
    (repo / "secrets").mkdir()
    (repo / "alias").symlink_to("secrets")
    rules = [
        PermissionRule(tool="bash", pattern="pytest*", action="allow"),
        PermissionRule(tool="write", pattern="secrets/*", action="deny"),
    ]
    results = await run_calls(
        repo,
        openai_server,
        [
            ("bash", {"command": "pytest --version; touch MARKER"}),
            ("write", {"path": "x/../secrets/key.txt", "content": "1"}),
            ("write", {"path": str(repo / "secrets" / "key.txt"), "content": "1"}),
            ("write", {"path": "alias/key.txt", "content": "1"}),
        ],
        mode="accept-edits",
        permissions=rules,
    )
    assert all(r["is_error"] for r in results), results
    assert not (repo / "MARKER").exists()
    assert not (repo / "secrets" / "key.txt").exists()


# --- finding 7: a FIFO hangs the run -----------------------------------------------------------------


async def test_reading_a_fifo_is_a_tool_error_within_a_second(
    repo: Path, openai_server: OpenAIServer
) -> None:
    os.mkfifo(repo / "pipe")
    started = time.monotonic()
    results = await run_calls(
        repo, openai_server, [("read", {"path": "pipe"}), ("write", {"path": "pipe", "content": "x"})]
    )
    assert time.monotonic() - started < 10
    assert all(r["is_error"] and "not a regular file" in r["output"] for r in results), results


# --- finding 8: file modes -------------------------------------------------------------------------


async def test_state_is_private_and_agent_files_keep_their_mode(
    repo: Path, openai_server: OpenAIServer
) -> None:
    old = os.umask(0o022)
    try:
        (repo / "script.sh").write_text("#!/bin/sh\n")
        (repo / "script.sh").chmod(0o755)
        results = await run_calls(
            repo,
            openai_server,
            [
                ("write", {"path": "new.txt", "content": "x"}),
                ("write", {"path": "script.sh", "content": "y"}),
            ],
        )
    finally:
        os.umask(old)
    assert not any(r["is_error"] for r in results), results
    state = repo / ".loopcraft"
    assert state.stat().st_mode & 0o777 == 0o700
    assert (state / "loopcraft.db").stat().st_mode & 0o777 == 0o600
    sessions = [p for p in (state / "runs").rglob("*.jsonl")]
    assert sessions and all(p.stat().st_mode & 0o777 == 0o600 for p in sessions)
    assert (repo / "new.txt").stat().st_mode & 0o777 == 0o644
    assert (repo / "script.sh").stat().st_mode & 0o777 == 0o755
