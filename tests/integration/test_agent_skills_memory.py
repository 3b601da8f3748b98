"""Skills and project memory through the engine, the real agent and the scripted model on the litellm
path: discovery order and precedence, malformed SKILL.md reported and skipped, progressive disclosure
(a body reaches the model only after the ``skill`` tool), ``skills=[...]`` preloading, an unknown skill
failing the stage before any model call, and AGENTS.md in the system prompt exactly once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from loopcraft import Context, workflow
from loopcraft.agent.memory import load_memory
from loopcraft.agent.skills import discover_skills
from loopcraft.config import Config
from loopcraft.engine.service import Engine
from loopcraft.models.litellm_client import LiteLLMClient
from loopcraft.models.scripted import read_call_log, reset_fault_counters
from loopcraft.models.types import CompletionRequest, CompletionResult, DeltaCallback

BODY = "Always run `make lint` before committing; the secret phrase is PURPLE-OCTOPUS."


class RecordingClient:
    """The real litellm client, keeping every request it was given."""

    def __init__(self, config: Config) -> None:
        self.inner = LiteLLMClient(config)
        self.requests: list[CompletionRequest] = []

    async def complete(
        self, request: CompletionRequest, on_delta: DeltaCallback | None = None
    ) -> CompletionResult:
        self.requests.append(request)
        return await self.inner.complete(request, on_delta)


def write_skill(folder: Path, dirname: str, text: str) -> Path:
    path = folder / dirname / "SKILL.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def skill_md(name: str, description: str, body: str = BODY) -> str:
    return f"---\nname: {name}\ndescription: {description}\n---\n{body}\n"


def write_script(repo: Path, script: dict[str, Any]) -> None:
    folder = repo / ".loopcraft" / "scripts"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "t.yaml").write_text(yaml.safe_dump(script))


@pytest.fixture
def repo(git_repo: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.chdir(git_repo)
    monkeypatch.setenv("LOOPCRAFT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LOOPCRAFT_SCRIPTED_CALL_LOG", str(tmp_path / "calls.jsonl"))
    reset_fault_counters()
    return git_repo


def test_discovery_order_precedence_and_errors(repo: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    write_skill(repo / ".loopcraft/skills", "lint", skill_md("lint", "project lint rules"))
    write_skill(home / "skills", "lint", skill_md("lint", "user lint rules"))
    write_skill(home / "skills", "deploy", skill_md("deploy", "user deploy steps"))
    write_skill(repo / ".claude/skills", "deploy", skill_md("deploy", "claude deploy steps"))
    write_skill(repo / ".claude/skills", "review", skill_md("review", "claude review checklist"))
    write_skill(repo / ".agents/skills", "review", skill_md("review", "agents review"))
    write_skill(repo / ".agents/skills", "docs", skill_md("docs", "agents docs style"))
    bad_yaml = write_skill(repo / ".loopcraft/skills", "broken", "---\nname: [oops\n---\nbody\n")
    no_desc = write_skill(repo / ".agents/skills", "nodesc", "---\nname: nodesc\n---\nbody\n")
    no_front = write_skill(repo / ".claude/skills", "plain", "# just markdown\n")

    found = discover_skills(repo)
    assert [(s.name, s.description) for s in found.skills.values()] == [
        ("lint", "project lint rules"),
        ("deploy", "user deploy steps"),
        ("review", "claude review checklist"),
        ("docs", "agents docs style"),
    ]
    problems = {p.path: p.problem for p in found.problems}
    assert set(problems) == {bad_yaml, no_desc, no_front}
    assert "not valid YAML" in problems[bad_yaml]
    assert "`description` is required" in problems[no_desc]
    assert "no YAML front matter" in problems[no_front]
    assert all("\n" not in p.line() and str(p.path) in p.line() for p in found.problems)
    assert sorted(s.description for s in found.shadowed) == [
        "agents review",
        "claude deploy steps",
        "user lint rules",
    ]


@workflow(name="skilled")
async def skilled(ctx: Context) -> str:
    return (await ctx.task("work", prompt="Do the work")).text


async def test_progressive_disclosure_body_only_after_skill_tool(repo: Path) -> None:
    skill = write_skill(repo / ".loopcraft/skills", "lint", skill_md("lint", "how this project lints"))
    (skill.parent / "checklist.md").write_text("1. lint\n")
    write_skill(repo / ".claude/skills", "broken", "---\nname: broken\n---\n")
    write_script(
        repo,
        {
            "stages": {
                "work": [
                    {
                        "text": "Loading the skill.",
                        "tool_calls": [{"name": "skill", "arguments": {"name": "lint"}}],
                    },
                    {
                        "tool_calls": [
                            {"name": "skill", "arguments": {"name": "lint", "file": "checklist.md"}}
                        ]
                    },
                    {"text": "Done with the skill."},
                ]
            }
        },
    )
    config = Config(model="scripted/t")
    client = RecordingClient(config)
    engine = await Engine.open(repo, config, client=client)
    engine.register(skilled)
    info = await engine.run("skilled", {})
    assert info.status == "completed", info.error
    first, second, third = client.requests
    system = first.messages[0]["content"]
    assert "- lint: how this project lints" in system
    assert "broken" not in system  # a malformed skill is skipped, the stage still runs
    assert "skill" in [t["function"]["name"] for t in first.tools]
    assert BODY not in json.dumps(first.messages)  # only the name and description before the call
    tool_message = second.messages[-1]
    assert tool_message["role"] == "tool" and BODY in tool_message["content"]
    assert "- checklist.md  (.loopcraft/skills/lint/checklist.md)" in tool_message["content"]
    assert second.tools == first.tools  # tool definitions never change inside a session
    assert third.messages[-1]["content"] == "1. lint\n"  # a skill's other file, through the skill tool
    await engine.close()


@workflow(name="preloaded")
async def preloaded(ctx: Context) -> str:
    return (await ctx.task("work", prompt="Do the work", skills=["lint"])).text


async def test_skills_preloaded_into_the_first_prompt(repo: Path) -> None:
    write_skill(repo / ".loopcraft/skills", "lint", skill_md("lint", "how this project lints"))
    write_script(repo, {"stages": {"work": [{"text": "Done."}]}})
    config = Config(model="scripted/t")
    client = RecordingClient(config)
    engine = await Engine.open(repo, config, client=client)
    engine.register(preloaded)
    info = await engine.run("preloaded", {})
    assert info.status == "completed", info.error
    (request,) = client.requests
    prompt = request.messages[1]["content"]
    assert request.messages[1]["role"] == "user" and BODY in prompt and prompt.endswith("Do the work")
    assert BODY not in request.messages[0]["content"]
    await engine.close()


async def test_unknown_skill_fails_the_stage_before_any_model_call(repo: Path, tmp_path: Path) -> None:
    write_skill(repo / ".loopcraft/skills", "other", skill_md("other", "something else"))
    write_script(repo, {"stages": {"work": [{"text": "Done."}]}})
    engine = await Engine.open(repo, Config(model="scripted/t"))
    engine.register(preloaded)
    info = await engine.run("preloaded", {})
    assert info.status == "failed"
    assert "unknown skill 'lint'" in (info.error or "") and "other" in (info.error or "")
    assert read_call_log(tmp_path / "calls.jsonl") == []
    await engine.close()


@workflow(name="remember")
async def remember(ctx: Context) -> dict[str, str]:
    a = await ctx.task("with", prompt="one")
    b = await ctx.task("without", prompt="two", memory=False)
    return {"a": a.text, "b": b.text}


async def test_agents_md_reaches_stage_system_prompt_once(repo: Path) -> None:
    (repo / "AGENTS.md").write_text("Use tabs, never spaces. MEMORY-MARKER-1\n")
    (repo / "CLAUDE.md").write_text("CLAUDE-MARKER: ignored where AGENTS.md exists\n")
    write_script(repo, {"default": [{"text": "ok"}]})
    config = Config(model="scripted/t")
    client = RecordingClient(config)
    engine = await Engine.open(repo, config, client=client)
    engine.register(remember)
    info = await engine.run("remember", {})
    assert info.status == "completed", info.error
    with_memory, without = client.requests
    text = json.dumps(with_memory.messages)
    assert text.count("MEMORY-MARKER-1") == 1 and "CLAUDE-MARKER" not in text
    assert "MEMORY-MARKER-1" in with_memory.messages[0]["content"]
    assert "MEMORY-MARKER-1" not in json.dumps(without.messages)
    await engine.close()


def test_memory_walks_root_to_cwd_and_falls_back_to_claude_md(repo: Path) -> None:
    sub = repo / "pkg" / "inner"
    sub.mkdir(parents=True)
    (repo / "CLAUDE.md").write_text("root claude\n")
    (repo / "pkg" / "AGENTS.md").write_text("pkg agents\n")
    (repo / "pkg" / "CLAUDE.md").write_text("pkg claude\n")
    found = load_memory(repo, ["AGENTS.md", "CLAUDE.md"], cwd=sub)
    assert [m.text.strip() for m in found] == ["root claude", "pkg agents"]
    assert [m.text.strip() for m in load_memory(repo, ["CLAUDE.md"], cwd=sub)] == [
        "root claude",
        "pkg claude",
    ]


async def test_agents_md_reaches_the_chat_agent_system_prompt_once(repo: Path) -> None:
    from loopcraft.tui.chat_session import ChatSession

    (repo / "AGENTS.md").write_text("Chat memory: MEMORY-MARKER-2\n")
    write_skill(repo / ".loopcraft/skills", "lint", skill_md("lint", "how this project lints"))
    write_script(repo, {"default": [{"text": "hello"}]})
    config = Config(model="scripted/t")
    client = RecordingClient(config)

    async def ignore(event: Any) -> None:
        return None

    async def refuse(request: Any) -> Any:
        return "reject"

    chat = ChatSession(repo, config, "scripted/t", on_event=ignore, ask=refuse, client=client)
    chat.send("hi")
    result = await chat.wait()
    assert result is not None and result.text == "hello"
    (request,) = client.requests
    assert json.dumps(request.messages).count("MEMORY-MARKER-2") == 1
    assert "MEMORY-MARKER-2" in request.messages[0]["content"]
    assert "- lint: how this project lints" in request.messages[0]["content"]
    assert [m.path.name for m in chat.extensions.memory] == ["AGENTS.md"]
    await chat.new()
