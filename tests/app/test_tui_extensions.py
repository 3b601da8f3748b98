"""The app's /skills, /memory and /mcp commands (pilot): what the chat agent was given, and a skill
loaded with /skills NAME reaching the next message."""

from __future__ import annotations

from pathlib import Path

from tests.app.tui_support import chat_texts, make_app, scripted


async def test_skills_memory_and_mcp_commands(git_repo: Path) -> None:
    skill = git_repo / ".loopcraft" / "skills" / "lint" / "SKILL.md"
    skill.parent.mkdir(parents=True)
    skill.write_text("---\nname: lint\ndescription: how we lint\n---\nRUN-MAKE-LINT-BODY\n")
    (git_repo / "AGENTS.md").write_text("be brief\n")
    (git_repo / ".loopcraft" / "config.toml").write_text('[mcp.servers.tools]\ncommand = "does-not-exist"\n')
    app = make_app(git_repo, scripted("tui-ext", [{"text": "ok"}]))
    async with app.run_test(size=(120, 40)) as pilot:
        await app.run_command("/skills")
        assert "lint  how we lint  (.loopcraft/skills)" in chat_texts(app)[-1]
        await app.run_command("/memory")
        assert "AGENTS.md" in chat_texts(app)[-1]
        await app.run_command("/mcp")
        assert "tools  stopped" in chat_texts(app)[-1]
        await app.run_command("/skills nope")
        assert "unknown skill 'nope'" in chat_texts(app)[-1]
        await app.run_command("/skills lint")
        await pilot.press(*"go", "enter")
        await app.chat.wait()
        assert app.chat.agent is not None
        prompt = next(m for m in app.chat.agent.messages if m["role"] == "user")
        assert "RUN-MAKE-LINT-BODY" in prompt["content"] and prompt["content"].endswith("go")
        await app.run_command("/mcp")
        assert "tools  failed" in chat_texts(app)[-1]  # started with the first message, and failed
