"""Pilot tests of the prompt as a chat input (issue 10 item 5, issue 21 item 3): commands echoed
before their output, Tab completion (trailing space, workflow input keys, no focus jump), a
multi-line prompt (Enter sends, Shift+Enter / Ctrl+J add a line, a paste keeps every line),
history kept across restarts, the Ctrl+P palette, the F1 / ``?`` key panel (the single source of
``/help keys`` and the README's key table) and the spinner while a model call runs."""

from __future__ import annotations

import stat
from pathlib import Path

from textual import events
from textual.command import CommandPalette

from loopcraft.tui.chat import CommandEcho, Notice, UserMessage
from loopcraft.tui.keys import KeyPanel, key_table, keys_text, markdown_table
from loopcraft.tui.prompt_input import history_path
from tests.app.screen_support import screen_text
from tests.app.tui_support import chat_texts, make_app, scripted, wait_for

SIZE = (120, 40)
README = Path(__file__).resolve().parents[2] / "README.md"


async def test_a_command_is_echoed_dimmed_before_its_output(git_repo: Path) -> None:
    app = make_app(git_repo, "scripted/demo")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*"/cost", "enter")
        await wait_for(pilot, lambda: len(app.chat_view.blocks()) >= 2)
        echo, output = app.chat_view.blocks()[:2]
        assert isinstance(echo, CommandEcho) and echo.text == "/cost" and echo.has_class("command-echo")
        assert isinstance(output, Notice) and output.text.startswith("chat: ")
        await pilot.press(*"hello", "enter")  # a chat message is a user message, not an echo
        await wait_for(pilot, lambda: any(isinstance(b, UserMessage) for b in app.chat_view.blocks()))
        assert [b.text for b in app.chat_view.blocks() if isinstance(b, CommandEcho)] == ["/cost"]


async def test_tab_completes_with_a_trailing_space_and_workflow_input_keys(git_repo: Path) -> None:
    app = make_app(git_repo, "scripted/demo")
    async with app.run_test(size=SIZE) as pilot:
        await app.open_workflows()
        await pilot.press(*"/he")
        await wait_for(pilot, lambda: app.input.suggestion == "lp")
        await pilot.press("tab")
        assert app.input.value == "/help " and app.focused is app.input
        app.input.value = ""
        await pilot.press(*"/workflow run de")
        await wait_for(pilot, lambda: bool(app.input.suggestion))  # suggestions come from a worker
        await pilot.press("tab")
        assert app.input.value == "/workflow run demo "
        await pilot.press(*"to")
        await wait_for(pilot, lambda: bool(app.input.suggestion))
        await pilot.press("tab")
        assert app.input.value == "/workflow run demo topic="  # no space: the value comes next
        await pilot.press(*"docs", "tab")  # nothing more to complete: Tab stays in the prompt
        assert app.focused is app.input and app.input.value == "/workflow run demo topic=docs"


async def test_multi_line_prompt_enter_sends_ctrl_j_and_shift_enter_add_lines(git_repo: Path) -> None:
    app = make_app(git_repo, scripted("tui-prompt-lines", [{"text": "ok"}, {"text": "ok again"}]))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: not app._typing_ahead())  # at launch Ctrl+J is a line-mode Enter
        await pilot.press(*"one", "ctrl+j", *"two", "shift+enter", *"three")
        assert app.input.value == "one\ntwo\nthree" and app.input.document.line_count == 3
        await wait_for(pilot, lambda: app.input.size.height == 3)  # the prompt grows to show every line
        await pilot.press("enter")
        message = await wait_for(pilot, lambda: app.query(UserMessage) and app.query(UserMessage)[0])
        assert message.text == "one\ntwo\nthree" and app.input.value == ""
        await app.chat.wait()
        traceback = 'Traceback (most recent call last):\n  File "x.py", line 1\nValueError: boom'
        app.post_message(events.Paste(traceback))  # as the terminal driver delivers a paste
        await wait_for(pilot, lambda: app.input.value == traceback)
        await pilot.press("enter")
        await wait_for(pilot, lambda: len(app.query(UserMessage)) == 2)
        assert app.query(UserMessage)[1].text == traceback  # every pasted line reached the chat
        await app.chat.wait()
        assert app.chat.agent is not None
        users = [m["content"] for m in app.chat.agent.messages if m.get("role") == "user"]
        assert traceback in users


async def test_history_is_kept_across_restarts_in_a_private_file(git_repo: Path) -> None:
    first = make_app(git_repo, "scripted/demo")
    async with first.run_test(size=SIZE) as pilot:
        await pilot.press(*"/cost", "enter", *"line a", "ctrl+j", *"line b", "enter")
        await wait_for(pilot, lambda: first.query(UserMessage))
    path = history_path()
    assert path.is_file() and stat.S_IMODE(path.stat().st_mode) == 0o600
    again = make_app(git_repo, "scripted/demo")
    async with again.run_test(size=SIZE) as pilot:
        await pilot.press("up")
        assert again.input.value == "line a\nline b"  # a multi-line entry comes back whole
        await pilot.press("up")  # the cursor is on the last line: Up moves it to the first
        assert again.input.value == "line a\nline b" and again.input.cursor_location[0] == 0
        await pilot.press("up")
        assert again.input.value == "/cost"
        await pilot.press("down")
        assert again.input.value == "line a\nline b"
        await pilot.press("down")  # the cursor is on the entry's last line: back to the draft
        assert again.input.value == ""


async def test_ctrl_p_palette_lists_slash_commands_and_runs_them(git_repo: Path) -> None:
    app = make_app(git_repo, "scripted/demo")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette))
        await pilot.press(*"/cost")
        await wait_for(pilot, lambda: "show tokens and cost" in _palette_text(app))
        await pilot.press("enter")
        await wait_for(pilot, lambda: not isinstance(app.screen, CommandPalette))
        await wait_for(pilot, lambda: any(t.startswith("chat: ") for t in chat_texts(app)))
        # a command that takes arguments is put in the prompt, ready for them
        await pilot.press("ctrl+p", *"workflow run")
        await wait_for(pilot, lambda: "start a workflow run" in _palette_text(app))
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.input.value == "/workflow run ")
        assert app.focused is app.input


def _palette_text(app) -> str:
    from textual.command import CommandList

    options = app.screen.query_one(CommandList)
    return " ".join(str(options.get_option_at_index(i).prompt) for i in range(options.option_count))


async def test_f1_and_question_mark_open_the_key_panel_built_from_the_bindings(git_repo: Path) -> None:
    app = make_app(git_repo, "scripted/demo")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f1")
        panel = await wait_for(pilot, lambda: isinstance(app.screen, KeyPanel) and app.screen)
        table = panel.query_one("#key-table")
        await wait_for(pilot, lambda: table.region.width > 60 and table.region.height > 10)  # on screen
        shown = screen_text(app)
        for row in key_table():  # every row of the table, as the panel draws it
            assert row.keys in shown and row.does.split()[0] in shown, row
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, KeyPanel))
        await pilot.press("?")  # on an empty prompt: the keys
        await wait_for(pilot, lambda: isinstance(app.screen, KeyPanel))
        await pilot.press("f1")
        await wait_for(pilot, lambda: not isinstance(app.screen, KeyPanel))
        await pilot.press(*"why?")  # in a prompt with text, ? is just a character
        assert app.input.value == "why?" and not isinstance(app.screen, KeyPanel)
        app.input.value = ""
        await pilot.press(*"/help keys", "enter")
        await wait_for(pilot, lambda: chat_texts(app)[-1].startswith("keys:"))
        assert chat_texts(app)[-1] == "keys:\n" + keys_text()


def test_every_binding_with_a_meaning_is_in_the_key_table_and_the_readme() -> None:
    from loopcraft.tui.app import LoopcraftApp
    from loopcraft.tui.prompt_input import PromptInput

    table = key_table()
    described = {r.does for r in table}
    for binding in [*LoopcraftApp.BINDINGS, *PromptInput.BINDINGS]:
        assert binding.tooltip in described, binding.key  # type: ignore[union-attr]
    assert markdown_table(table) in README.read_text(), (
        "the README's key table differs from the bindings: regenerate it with "
        ".venv/bin/python -m loopcraft.tui.keys"
    )


async def test_a_spinner_shows_elapsed_time_and_tokens_while_a_model_call_runs(git_repo: Path) -> None:
    turns = [{"text": "word " * 120, "pace": 0.03}]
    app = make_app(git_repo, scripted("tui-prompt-spinner", turns, chunk_size=3))
    async with app.run_test(size=SIZE) as pilot:
        assert app.status.info.activity == ""
        await pilot.press(*"go", "enter")
        await wait_for(
            pilot, lambda: "tok" in app.status.info.activity and "~0 tok" not in app.status.info.activity
        )
        assert "s · ~" in app.status.info.activity
        assert app.status.info.activity in str(app.status.render())
        await app.chat.wait()
        await wait_for(pilot, lambda: app.status.info.activity == "")
