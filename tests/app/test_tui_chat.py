"""Pilot tests of the chat: the agent on the scripted model through litellm, tool calls
updating in place, inline permission prompts, steering, queueing, interrupting, and
every chat slash command."""

from __future__ import annotations

import time
import tomllib
from pathlib import Path

from loopcraft.config import user_config_path
from loopcraft.tui.chat import AssistantMessage, Notice, PermissionPrompt, ToolBlock, UserMessage
from tests.app.tui_support import chat_texts, make_app, scripted, wait_for

EDIT_TURNS = [
    {
        "text": "I'll fix the README.",
        "tool_calls": [
            {
                "name": "edit",
                "arguments": {"path": "README.md", "old_string": "# sample", "new_string": "# fixed"},
            }
        ],
    },
    {"tool_calls": [{"name": "bash", "arguments": {"command": "cat README.md"}}]},
    {"text": "Done: **README** fixed."},
]


async def _answer(pilot, app, key: str, index: int = 0) -> PermissionPrompt:
    prompt = await wait_for(
        pilot, lambda: len(app.query(PermissionPrompt)) > index and app.query(PermissionPrompt)[index]
    )
    await wait_for(pilot, lambda: app.focused is prompt)
    prompt.shown_at = time.monotonic()  # the grace period starts now, however slow the machine
    await pilot.press(key)  # inside the grace period: ignored
    assert prompt.answer is None
    await pilot.pause(0.55)
    await pilot.press(key)
    await wait_for(pilot, lambda: prompt.answer is not None)
    return prompt


async def test_chat_edits_with_permission_and_shows_diff(git_repo: Path) -> None:
    app = make_app(git_repo, scripted("tui-chat-edit", EDIT_TURNS))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press(*"fix the readme", "enter")
        first = await _answer(pilot, app, "a")
        assert first.answer == "allow_once" and first.tool == "edit"
        second = await _answer(pilot, app, "r", index=1)
        assert second.answer == "reject"
        await app.chat.wait()
        await pilot.pause(0.2)
        blocks = app.chat_view.blocks()
        tools = [b for b in blocks if isinstance(b, ToolBlock)]
        assert [t.status for t in tools] == ["ok", "error"]
        assert "@@" in str(tools[0]._output.render()) or not tools[0].collapsed
        assert (git_repo / "README.md").read_text().startswith("# fixed")
        answers = [b for b in blocks if isinstance(b, AssistantMessage)]
        assert answers[-1].text == "Done: **README** fixed."
        assert isinstance(blocks[0], UserMessage) and blocks[0].text == "fix the readme"
        assert app.status.info.state == "idle" and app.status.info.tokens > 0
        assert app.focused is app.input


async def test_always_allow_and_yolo_mode_skip_the_prompt(git_repo: Path) -> None:
    turns = [
        {"tool_calls": [{"name": "bash", "arguments": {"command": "echo one"}}]},
        {"tool_calls": [{"name": "bash", "arguments": {"command": "echo one"}}]},
        {"text": "ok"},
    ]
    app = make_app(git_repo, scripted("tui-chat-always", turns))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press(*"run it", "enter")
        prompt = await _answer(pilot, app, "A")
        assert prompt.answer == "allow_always"
        await app.chat.wait()
        assert len(app.query(PermissionPrompt)) == 1  # the second identical call was allowed
        await app.run_command("/permissions yolo")
        assert app.chat.permission_mode == "yolo" and app.status.info.permission_mode == "yolo"
        await app.run_command("/permissions")
        assert chat_texts(app)[-1] == "permission mode: yolo"


async def test_unknown_command_and_bad_arguments_show_usage_inline(git_repo: Path) -> None:
    app = make_app(git_repo, "scripted/demo")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press(*"/frobnicate", "enter")
        await pilot.press(*"/permissions maybe", "enter")
        await pilot.press(*"/workflow run", "enter")
        await pilot.pause(0.1)
        errors = [b for b in app.chat_view.blocks() if isinstance(b, Notice) and b.kind == "error"]
        assert [e.text for e in errors][:2] == [
            "unknown command /frobnicate; type /help for the list",
            "invalid value 'maybe' for /permissions; usage: /permissions [default|accept-edits|plan|yolo]",
        ]
        assert len(errors) == 3


async def test_help_completion_and_history(git_repo: Path) -> None:
    app = make_app(git_repo, "scripted/demo")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press(*"/he")
        await wait_for(pilot, lambda: app.input._suggestion == "/help")
        await pilot.press("tab", "enter")
        await pilot.pause(0.1)
        assert "/workflow run NAME [key=value ...]" in chat_texts(app)[-1]
        await pilot.press(*"/cost", "enter", "up")
        assert app.input.value == "/cost"
        await pilot.press("up")
        assert app.input.value == "/help"
        await pilot.press("down", "down")
        assert app.input.value == ""


async def test_theme_switches_and_is_remembered(git_repo: Path) -> None:
    app = make_app(git_repo, "scripted/demo")
    async with app.run_test(size=(120, 40)) as pilot:
        assert app.theme == "loopcraft-dark"
        await pilot.press(*"/theme loopcraft-light", "enter")
        await pilot.pause(0.1)
        assert app.theme == "loopcraft-light"
        assert tomllib.loads(user_config_path().read_text())["theme"] == "loopcraft-light"
        await app.run_command("/theme nope")
        assert "unknown theme 'nope'" in chat_texts(app)[-1]
    again = make_app(git_repo, "scripted/demo")
    async with again.run_test(size=(120, 40)):
        assert again.theme == "loopcraft-light"


async def test_model_cost_new_and_sessions(git_repo: Path) -> None:
    model = scripted("tui-chat-plain", [{"text": "first answer"}, {"text": "second answer"}])
    app = make_app(git_repo, model)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press(*"hello there", "enter")
        await app.chat.wait()
        await app.run_command("/cost")
        assert chat_texts(app)[-1].startswith("chat: ")
        await app.run_command("/model not a model")
        assert "wrong number of arguments" in chat_texts(app)[-1]
        await app.run_command("/model nope/x")
        assert "unknown provider 'nope'" in chat_texts(app)[-1]
        await app.run_command("/model scripted/other")
        assert app.chat.model == "scripted/other" and app.status.info.model == "scripted/other"
        first_id = app.chat.session.header.id
        await app.run_command("/new")
        assert app.chat.agent is None and chat_texts(app) == ["new chat session"]
        await app.run_command("/sessions")
        assert first_id in chat_texts(app)[-1] and "hello there" in chat_texts(app)[-1]
        await app.run_command(f"/sessions {first_id}")
        assert app.chat.agent is not None and len(app.chat.agent.messages) >= 3
        await app.run_command("/sessions nosuch")
        assert "no session matching 'nosuch'" in chat_texts(app)[-1]


async def test_compact_when_idle(git_repo: Path) -> None:
    app = make_app(git_repo, scripted("tui-chat-compact", [{"text": "hi"}]))
    async with app.run_test(size=(120, 40)):
        await app.run_command("/compact")
        assert chat_texts(app)[-1] == "nothing to compact"


async def test_escape_interrupts_and_enter_steers_and_alt_enter_queues(git_repo: Path) -> None:
    slow = {"pace": 0.05}
    turns = [
        {"text": "thinking " * 8, **slow},
        {"text": "after steer"},
        {"text": "follow-up done"},
        {"text": "x " * 200, **slow},
    ]
    app = make_app(git_repo, scripted("tui-chat-steer", turns, chunk_size=2))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press(*"start", "enter")
        await wait_for(pilot, lambda: app.query(AssistantMessage))
        await pilot.press(*"steer this", "enter")
        assert "steering" in chat_texts(app)[-1]
        app.input.value = "and then this"
        app.input.action_queue()
        await pilot.pause(0.05)
        queued = next(m for m in app.query(UserMessage) if m.text == "and then this")
        assert queued.queued
        await app.chat.wait()
        await wait_for(pilot, lambda: not queued.queued)
        assert app.chat.queued == []
        await pilot.press(*"go long", "enter")
        await wait_for(pilot, lambda: len(app.query(AssistantMessage)) >= 4)
        await pilot.press("escape")
        result = await app.chat.wait()
        assert result is not None and result.status == "interrupted"
        await pilot.pause(0.1)
        assert any("interrupted" in t for t in chat_texts(app))


async def test_long_conversations_stay_windowed_and_keep_unanswered_prompts(git_repo: Path) -> None:
    app = make_app(git_repo, "scripted/demo")
    async with app.run_test(size=(120, 40)) as pilot:
        view = app.chat_view
        prompt = PermissionPrompt("bash", "rm -rf build", "needs approval")
        await view.add(prompt)
        for index in range(1_000):
            await view.add(UserMessage(f"q{index}") if index % 2 == 0 else AssistantMessage(f"**a{index}**"))
        await view.settle()
        await pilot.pause()
        mounted = view.blocks()
        assert len(mounted) <= view.max_blocks + view.prune_step
        assert prompt in mounted and prompt.is_mounted  # an unanswered prompt is never pruned
        assert getattr(mounted[-1], "text", "") == "**a999**"
        assert view.pruned == 1_001 - len(mounted)
        assert f"({view.pruned} earlier blocks hidden" in str(view.children[0].render())
        long = "A paragraph.\n\n" * 400  # one streamed answer, cut into cheap pieces as it grows
        for start in range(0, len(long), 50):
            await app.renderer.handle(
                type("E", (), {"kind": "text_delta", "text": long[start : start + 50]})()
            )
        await app.renderer.handle(type("E", (), {"kind": "turn_end"})())
        await view.settle()
        pieces = [b for b in view.blocks() if isinstance(b, AssistantMessage)][-3:]
        assert all(len(p.text) < 2 * AssistantMessage.CHUNK_CHARS for p in pieces)
        assert pieces[-1].has_class("continued")
