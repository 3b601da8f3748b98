"""Issue 19, per-stage grants: ``allow_paths`` makes named protected paths writable for one stage's
file tools and sandboxed shell (nothing else), ``sandbox_network`` lets one stage's shell reach the
network; the grant is recorded on the stage's row and shown in the graph and ``loopcraft show``.
Real stages on a loopback model, real files, real bwrap."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest

from loopcraft import Context, workflow
from loopcraft.config import AgentConfig, Config, ModelOptions
from loopcraft.engine.service import Engine
from loopcraft.engine.tasks import TaskSpec
from loopcraft.errors import LoopcraftError
from loopcraft.headless import graph_lines
from tests.fakes import OpenAIServer, openai_server

__all__ = ["openai_server"]

MODEL = "openai_compatible/test-model"
GRANTED = ".loopcraft/workflows/x.py"
needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")


@workflow(name="granted")
async def granted(ctx: Context, paths: list[str] | None = None, network: bool = False) -> str:
    first = await ctx.task("worker", prompt="Do what you are told", allow_paths=paths)
    second = await ctx.task("online", prompt="Connect", sandbox_network=network)
    return f"{first.text}|{second.text}"


@pytest.fixture
def repo(git_repo: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(git_repo)
    monkeypatch.setenv("FAKE_KEY", "sk-test-0123456789")
    (git_repo / ".loopcraft" / "workflows").mkdir(parents=True)
    (git_repo / GRANTED).write_text("old = 1\n")
    (git_repo / ".loopcraft" / "workflows" / "y.py").write_text("other = 1\n")
    return git_repo


async def run_granted(
    repo: Path,
    server: OpenAIServer,
    worker: list[tuple[str, dict[str, Any]]],
    online: list[tuple[str, dict[str, Any]]],
    **inputs: Any,
) -> tuple[dict[str, list[dict[str, Any]]], Any]:
    """Run ``granted`` with the worker's and the online stage's tool calls; their tool results and the graph."""
    for stage in (worker, online):
        for i, (name, args) in enumerate(stage):
            server.respond(tool_calls=[{"id": f"c{i}", "name": name, "arguments": args}])
        server.respond(text="done")
    config = Config(
        model=MODEL,
        models={MODEL: ModelOptions(api_base=server.base_url, api_key_env="FAKE_KEY")},
        agent=AgentConfig(),
    )
    engine = await Engine.open(repo, config)
    try:
        engine.register(granted)
        info = await engine.run("granted", inputs)
        assert info.status == "completed", info.error
        results = {}
        for name in ("worker", "online"):
            transcript = await engine.stage_transcript(info.id, name)
            results[name] = [e for e in transcript if e.get("type") == "tool_result"]
        graph = await engine.graph(info.id)
    finally:
        await engine.close()
    return results, graph


def _writes() -> list[tuple[str, dict[str, Any]]]:
    return [
        ("write", {"path": GRANTED, "content": "new = 2\n"}),
        ("write", {"path": ".loopcraft/workflows/y.py", "content": "evil = 1\n"}),
    ]


async def test_a_stage_without_the_grant_cannot_write_the_protected_path(
    repo: Path, openai_server: OpenAIServer
) -> None:
    results, graph = await run_granted(repo, openai_server, _writes(), [])
    assert all(r["is_error"] and "protected path" in r["output"] for r in results["worker"])
    assert (repo / GRANTED).read_text() == "old = 1\n"
    assert graph.find("worker").grants == []


async def test_a_granted_stage_writes_that_path_and_nothing_else(
    repo: Path, openai_server: OpenAIServer
) -> None:
    results, graph = await run_granted(repo, openai_server, _writes(), [], paths=[GRANTED])
    granted_write, other_write = results["worker"]
    assert not granted_write["is_error"], granted_write
    assert (repo / GRANTED).read_text() == "new = 2\n"
    assert other_write["is_error"] and "protected path" in other_write["output"]
    assert (repo / ".loopcraft" / "workflows" / "y.py").read_text() == "other = 1\n"
    worker = graph.find("worker")
    assert worker.grants == [GRANTED] and graph.find("online").grants == []
    assert any(line.strip() == f"grants: {GRANTED}" for line in graph_lines(graph))


@needs_bwrap
async def test_the_grant_reaches_the_sandboxed_shell(repo: Path, openai_server: OpenAIServer) -> None:
    shell = [
        ("bash", {"command": f"echo shell = 3 >> {GRANTED}"}),
        ("bash", {"command": "echo evil = 1 >> .loopcraft/workflows/y.py"}),
    ]
    results, _ = await run_granted(repo, openai_server, shell, [], paths=[GRANTED])
    assert not results["worker"][0]["is_error"], results["worker"][0]
    assert (repo / GRANTED).read_text() == "old = 1\nshell = 3\n"
    assert "Read-only file system" in results["worker"][1]["output"]
    assert (repo / ".loopcraft" / "workflows" / "y.py").read_text() == "other = 1\n"


async def _tcp_server() -> tuple[asyncio.Server, int, list[str]]:
    seen: list[str] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append("connected")
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], seen


def _connect(port: int) -> list[tuple[str, dict[str, Any]]]:
    return [("bash", {"command": f"exec 3<>/dev/tcp/127.0.0.1/{port} && echo CONNECTED"})]


@needs_bwrap
@pytest.mark.parametrize("network", [True, False])
async def test_sandbox_network_per_stage(repo: Path, openai_server: OpenAIServer, network: bool) -> None:
    server, port, seen = await _tcp_server()
    try:
        results, graph = await run_granted(repo, openai_server, [], _connect(port), network=network)
    finally:
        server.close()
    output = results["online"][0]["output"]
    assert ("CONNECTED" in output) is network, output
    assert bool(seen) is network
    assert graph.find("online").grants == (["network"] if network else [])


@pytest.mark.parametrize("paths", ["scripts/release.sh", ["../outside"], ["/etc/passwd"], [""]])
def test_a_bad_grant_is_one_line_naming_the_stage(paths: Any) -> None:
    with pytest.raises(LoopcraftError) as err:
        TaskSpec(name="release", allow_paths=paths)
    assert "'release'" in str(err.value) and "allow_paths" in str(err.value)
    assert "\n" not in str(err.value)


def test_grants_list_paths_then_network() -> None:
    spec = TaskSpec(name="s", allow_paths=["./scripts/release.sh"], sandbox_network=True)
    assert spec.grants == ["scripts/release.sh", "network"]
