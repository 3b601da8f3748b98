"""MCP connectors against real servers: ``mcp-server-time`` from PyPI over stdio, an HTTP server the
test starts with the SDK's own ``MCPServer`` on loopback, and a stdio ``MCPServer`` script that
crashes mid-call or blocks in a mutating tool. Through the engine and the scripted model."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from loopcraft import Context, workflow
from loopcraft.agent.prompts import OUTCOME_UNKNOWN
from loopcraft.config import AgentConfig, Config, McpConfig, McpServerConfig, PermissionRule
from loopcraft.engine.service import Engine
from loopcraft.models.scripted import reset_fault_counters

CRASHY_SERVER = """
import os, sys, time
from pathlib import Path
from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations

server = MCPServer("crashy")
marker = Path(sys.argv[1])

@server.tool()
def crash() -> str:
    os._exit(3)

@server.tool()
def mutate(label: str) -> str:
    with marker.open("a") as f:
        f.write(label + "\\n")
    time.sleep(3600)
    return "never"

@server.tool(annotations=ToolAnnotations(read_only_hint=True))
def peek() -> str:
    return "peeked"

@server.tool(annotations=ToolAnnotations(read_only_hint=True))
def getenv(var: str) -> str:
    return f"{var}={os.environ.get(var, '<unset>')}"

server.run()
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def http_server() -> Iterator[str]:
    """A streamable-HTTP MCP server (the SDK's MCPServer under uvicorn) on loopback; its URL."""
    import uvicorn
    from mcp.server.mcpserver import MCPServer
    from mcp.types import ToolAnnotations

    server = MCPServer("web")

    @server.tool(annotations=ToolAnnotations(read_only_hint=True))
    def add(a: int, b: int) -> str:
        return f"sum is {a + b}"

    @server.tool()
    def forbidden() -> str:
        return "SHOULD-NOT-RUN"

    port = _free_port()
    config = uvicorn.Config(server.streamable_http_app(), host="127.0.0.1", port=port, log_level="error")
    web = uvicorn.Server(config)
    thread = threading.Thread(target=web.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not web.started:
        assert time.monotonic() < deadline, "the HTTP MCP server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/mcp"
    web.should_exit = True
    thread.join(10)


@pytest.fixture
def repo(git_repo: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.chdir(git_repo)
    monkeypatch.setenv("LOOPCRAFT_HOME", str(tmp_path / "home"))
    reset_fault_counters()
    return git_repo


def write_script(repo: Path, script: dict[str, Any]) -> None:
    folder = repo / ".loopcraft" / "scripts"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "t.yaml").write_text(yaml.safe_dump(script))


def call(name: str, **arguments: Any) -> dict[str, Any]:
    return {"name": name, "arguments": arguments}


def time_server() -> McpServerConfig:
    exe = shutil.which("mcp-server-time") or str(Path(sys.executable).parent / "mcp-server-time")
    return McpServerConfig(command=exe, args=["--local-timezone", "UTC"])


@workflow(name="connect")
async def connect(ctx: Context) -> str:
    return (await ctx.task("work", prompt="use the connectors")).text


def results(transcript: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in transcript if e.get("type") == "tool_result"}


async def test_stdio_and_http_servers_deny_rule_and_crash(
    repo: Path, tmp_path: Path, http_server: str
) -> None:
    crashy = tmp_path / "crashy.py"
    crashy.write_text(CRASHY_SERVER)
    write_script(
        repo,
        {
            "stages": {
                "work": [
                    {
                        "tool_calls": [
                            call("mcp__time__get_current_time", timezone="Europe/Paris"),
                            call("mcp__web__add", a=2, b=3),
                            call("mcp__web__forbidden"),
                        ]
                    },
                    {"tool_calls": [call("mcp__crashy__crash")]},
                    {"tool_calls": [call("mcp__web__add", a=40, b=2)]},
                    {"text": "connectors used"},
                ]
            }
        },
    )
    config = Config(
        model="scripted/t",
        agent=AgentConfig(permissions=[PermissionRule(tool="mcp__web__forbidden", action="deny")]),
        mcp=McpConfig(
            servers={
                "time": time_server(),
                "web": McpServerConfig(url=http_server),
                "crashy": McpServerConfig(command=sys.executable, args=[str(crashy), str(tmp_path / "m")]),
                "off": McpServerConfig(command="does-not-exist", enabled=False),
            }
        ),
    )
    engine = await Engine.open(repo, config)
    engine.register(connect)
    info = await engine.run("connect", {})
    assert info.status == "completed", info.error
    assert info.output == "connectors used"
    transcript = await engine.stage_transcript(info.id, "work")
    listed = next(e for e in transcript if e.get("type") == "mcp_tools")
    names = {t["name"]: t["read_only"] for t in listed["tools"]}
    assert {"mcp__time__get_current_time", "mcp__web__add", "mcp__crashy__crash"} <= set(names)
    assert names["mcp__web__add"] is True and names["mcp__crashy__crash"] is False
    assert not any(n.startswith("mcp__off__") for n in names)
    outputs = [e for e in transcript if e.get("type") == "tool_result"]
    time_result = outputs[0]
    assert not time_result["is_error"] and "Europe/Paris" in time_result["output"]
    assert outputs[1]["output"] == "sum is 5" and not outputs[1]["is_error"]
    assert outputs[2]["is_error"] and "permission denied" in outputs[2]["output"]
    assert "SHOULD-NOT-RUN" not in json.dumps(transcript)
    crash = outputs[3]
    assert crash["is_error"] and "MCP server 'crashy'" in crash["output"], crash
    assert outputs[4]["output"] == "sum is 42"  # the session went on after the crash
    await engine.close()


async def test_unused_servers_never_start_and_tools_filter(repo: Path, tmp_path: Path) -> None:
    marker = tmp_path / "started"
    script = tmp_path / "touch.py"
    script.write_text(f"open({str(marker)!r}, 'w').close()\n" + CRASHY_SERVER)
    write_script(repo, {"stages": {"work": [{"text": "no connectors needed"}]}})

    @workflow(name="narrow")
    async def narrow(ctx: Context) -> str:
        return (await ctx.task("work", prompt="p", tools=["read", "ls"])).text

    config = Config(
        model="scripted/t",
        mcp=McpConfig(servers={"crashy": McpServerConfig(command=sys.executable, args=[str(script), "x"])}),
    )
    engine = await Engine.open(repo, config)
    engine.register(narrow)
    info = await engine.run("narrow", {})
    assert info.status == "completed", info.error
    assert not marker.exists()  # no tool of the server was selected: it was never started
    await engine.close()


DRIVER = """
import asyncio, sys
from pathlib import Path
from loopcraft.config import Config, McpConfig, McpServerConfig
from loopcraft.engine.agent_runner import AgentTaskRunner
from loopcraft.engine.tasks import TaskRequest
from loopcraft.models.scripted import Script, register_script

workspace, session, server, marker = (Path(a) for a in sys.argv[1:5])
register_script("mut", Script.model_validate({"stages": {"work": [
    {"tool_calls": [{"name": "mcp__crashy__mutate", "arguments": {"label": "once"}}]},
    {"text": "resumed and answered"},
]}}))
config = Config(model="scripted/mut", mcp=McpConfig(servers={
    "crashy": McpServerConfig(command=sys.executable, args=[str(server), str(marker)])}))

async def main():
    runner = AgentTaskRunner(config)
    request = TaskRequest(run_id="r", key="work", name="work", workspace=workspace, session_path=session,
                          model="scripted/mut", fallback_models=[])
    task = await runner.open(request)
    outcome = await task.run(None if task.started else "mutate once")
    print(outcome.status, outcome.text, flush=True)
    task.close()
    await asyncio.sleep(0.5)

asyncio.run(main())
"""


def test_sigkill_during_mutating_mcp_tool_is_not_rerun(repo: Path, tmp_path: Path) -> None:
    server, marker, session = tmp_path / "crashy.py", tmp_path / "marker", tmp_path / "work.jsonl"
    server.write_text(CRASHY_SERVER)
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    args = [sys.executable, str(driver), str(repo), str(session), str(server), str(marker)]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    first = subprocess.Popen(
        args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    deadline = time.monotonic() + 60
    while not (marker.is_file() and marker.read_text()):
        assert first.poll() is None, first.communicate()
        assert time.monotonic() < deadline, "the mutating tool never started"
        time.sleep(0.05)
    os.killpg(first.pid, signal.SIGKILL)  # the agent and its MCP server die with the tool running
    first.wait(30)
    second = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr
    assert "completed resumed and answered" in second.stdout
    assert marker.read_text() == "once\n"  # not run again
    entries = [json.loads(line) for line in session.read_text().splitlines()[1:]]
    result = next(e for e in entries if e.get("type") == "tool_result")
    assert result["name"] == "mcp__crashy__mutate" and result["output"] == OUTCOME_UNKNOWN
    assert sum(e.get("type") == "mcp_tools" for e in entries) == 1  # the tool list is read once


def test_untrusted_repo_config_cannot_add_mcp_servers(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from loopcraft.config import load_config

    monkeypatch.delenv("LOOPCRAFT_TRUST", raising=False)
    (repo / ".loopcraft").mkdir(exist_ok=True)
    (repo / ".loopcraft" / "config.toml").write_text(
        '[mcp.servers.evil]\ncommand = "sh"\nargs = ["-c", "id"]\n'
    )
    config = load_config(repo, environ={})
    assert config.mcp.servers == {}
    assert "mcp" in config.untrusted_ignored


def test_mcp_env_values_are_secret_and_bad_config_is_one_line() -> None:
    from pydantic import ValidationError

    config = Config(mcp=McpConfig(servers={"gh": McpServerConfig(command="x", env=["GH_PAT"], url=None)}))
    assert "GH_PAT" in config.agent.secret_env
    with pytest.raises(ValidationError, match="exactly one of"):
        McpServerConfig(command="x", url="http://127.0.0.1/mcp")
    with pytest.raises(ValidationError, match="not an environment variable name"):
        McpServerConfig(command="x", env=["ghp_abc=1"])


@workflow(name="envcheck")
async def envcheck(ctx: Context) -> str:
    return (await ctx.task("work", prompt="check the environment")).text


async def test_stdio_server_gets_only_named_secrets_and_values_are_redacted(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MCP_GIVEN_TOKEN", "given-secret-value-123")
    monkeypatch.setenv("OTHER_API_KEY", "other-secret-value-456")
    server = tmp_path / "crashy.py"
    server.write_text(CRASHY_SERVER)
    write_script(
        repo,
        {
            "stages": {
                "work": [
                    {
                        "tool_calls": [
                            call("mcp__box__getenv", var="MCP_GIVEN_TOKEN"),
                            call("mcp__box__getenv", var="OTHER_API_KEY"),
                        ]
                    },
                    {"text": "checked"},
                ]
            }
        },
    )
    box = McpServerConfig(command=sys.executable, args=[str(server), "x"], env=["MCP_GIVEN_TOKEN"])
    engine = await Engine.open(repo, Config(model="scripted/t", mcp=McpConfig(servers={"box": box})))
    engine.register(envcheck)
    info = await engine.run("envcheck", {})
    assert info.status == "completed", info.error
    transcript = await engine.stage_transcript(info.id, "work")
    outputs = [e["output"] for e in transcript if e.get("type") == "tool_result"]
    assert outputs == ["MCP_GIVEN_TOKEN=[redacted:MCP_GIVEN_TOKEN]", "OTHER_API_KEY=<unset>"]
    assert "given-secret-value-123" not in json.dumps(transcript)
    await engine.close()


def test_headless_skills_and_mcp_list(repo: Path, tmp_path: Path) -> None:
    skill = repo / ".loopcraft" / "skills" / "lint" / "SKILL.md"
    skill.parent.mkdir(parents=True)
    skill.write_text("---\nname: lint\ndescription: how we lint\n---\nbody\n")
    bad = repo / ".agents" / "skills" / "bad" / "SKILL.md"
    bad.parent.mkdir(parents=True)
    bad.write_text("no front matter\n")
    exe = time_server().command
    (repo / ".loopcraft" / "config.toml").write_text(
        f'[mcp.servers.time]\ncommand = "{exe}"\n[mcp.servers.gone]\ncommand = "does-not-exist-xyz"\n'
    )
    env = {**os.environ, "LOOPCRAFT_TRUST": "1"}
    run = [sys.executable, "-m", "loopcraft"]
    listed = subprocess.run([*run, "skills", "--json"], cwd=repo, env=env, capture_output=True, text=True)
    assert listed.returncode == 0, listed.stderr
    data = json.loads(listed.stdout)
    assert [s["name"] for s in data["skills"]] == ["lint"]
    assert data["problems"][0]["path"] == str(bad) and "front matter" in data["problems"][0]["problem"]
    mcp = subprocess.run(
        [*run, "mcp", "list"], cwd=repo, env=env, capture_output=True, text=True, timeout=120
    )
    assert mcp.returncode == 0, mcp.stderr
    assert (
        "time  stdio  ok  2 tools" in mcp.stdout and "mcp__time__get_current_time (read-only)" in mcp.stdout
    )
    assert "gone  stdio  failed" in mcp.stdout and "does-not-exist-xyz" in mcp.stdout


async def test_a_call_that_times_out_is_a_tool_error_naming_the_server(repo: Path, tmp_path: Path) -> None:
    server = tmp_path / "crashy.py"
    server.write_text(CRASHY_SERVER)
    write_script(
        repo,
        {
            "stages": {
                "work": [
                    {"tool_calls": [call("mcp__slow__mutate", label="slow")]},
                    {"tool_calls": [call("mcp__slow__peek")]},
                    {"text": "went on"},
                ]
            }
        },
    )
    slow = McpServerConfig(command=sys.executable, args=[str(server), str(tmp_path / "m")], timeout=2)
    engine = await Engine.open(repo, Config(model="scripted/t", mcp=McpConfig(servers={"slow": slow})))
    engine.register(connect)
    info = await engine.run("connect", {})
    assert info.status == "completed", info.error
    outputs = [e for e in await engine.stage_transcript(info.id, "work") if e.get("type") == "tool_result"]
    assert (
        outputs[0]["is_error"]
        and outputs[0]["output"] == "MCP server 'slow' timed out after 2s running mutate"
    )
    assert outputs[1]["output"] == "peeked"  # the server is still usable after a timed-out call
    await engine.close()


def test_results_map_text_images_and_errors() -> None:
    from mcp.types import CallToolResult, ImageContent, TextContent

    from loopcraft.agent.mcp import to_tool_result

    image = ImageContent(data="aGVsbG8gd29ybGQh", mime_type="image/png")
    result = to_tool_result(CallToolResult(content=[TextContent(text="chart:"), image], is_error=False))
    assert result.output == "chart:\n[image image/png, about 12 bytes, not shown]" and not result.is_error
    failed = to_tool_result(CallToolResult(content=[TextContent(text="no such repo")], is_error=True))
    assert failed.is_error and failed.output == "no such repo"
