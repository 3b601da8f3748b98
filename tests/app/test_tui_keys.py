"""Pilot tests of every key the app binds (App and Screen bindings, and the input line's
own keys), each checked for what it does: quitting (Ctrl+Q, Ctrl+C, /quit), F2-F5 focus,
Ctrl+B, Tab / Shift+Tab, Alt+Enter and Ctrl+J, and the key-hint line against the bindings."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Tree

from loopcraft.tui.app import LoopcraftApp
from loopcraft.tui.chat import AssistantMessage, UserMessage
from loopcraft.tui.panes.prompts import PendingPrompt, PromptCard, PromptsPane
from loopcraft.tui.prompt_input import PromptInput
from loopcraft.tui.statusbar import hint_text
from tests.app.screen_support import screen_text
from tests.app.tui_support import make_app, scripted, wait_for

SIZE = (120, 40)

# Every key LoopcraftApp binds, with the action it must run; each is pressed by a test below
# (escape: test_tui_chat.py::test_escape_interrupts_and_enter_steers_and_alt_enter_queues).
APP_KEYS = {
    "escape": "interrupt",
    "ctrl+c": "interrupt_or_quit",
    "ctrl+q": "quit",
    "f1": "show_keys",
    "ctrl+p": "command_palette",
    "ctrl+b": "toggle_side",
    "f2": "focus_pane('runs')",
    "f3": "focus_pane('graph')",
    "f4": "focus_pane('prompts')",
    "f5": "focus_pane('input')",
}
INPUT_KEYS = {
    "enter": "submit",
    "shift+enter": "newline",
    "ctrl+j": "newline",
    "up": "history_previous",
    "down": "history_next",
    "alt+enter": "queue",
    "tab": "accept_suggestion",
}
# hint-line key names as the binding key strings they stand for
HINT_KEYS = {
    "Alt+Enter": "alt+enter",
    "Tab": "tab",
    "Ctrl+J": "ctrl+j",
    "Esc": "escape",
    "F2": "f2",
    "F3": "f3",
    "F4": "f4",
    "Ctrl+P": "ctrl+p",
    "F1": "f1",
}


def _keys(bindings: list[Binding | tuple[str, ...]]) -> dict[str, str]:
    found: dict[str, str] = {}
    for binding in bindings:
        assert isinstance(binding, Binding)
        for key in binding.key.split(","):
            found[key.strip()] = binding.action
    return found


def test_every_declared_binding_is_listed_here() -> None:
    """A new or changed binding fails here until a test for it is added."""
    assert _keys(LoopcraftApp.BINDINGS) == APP_KEYS
    assert _keys(PromptInput.BINDINGS) == INPUT_KEYS
    screen = _keys(Screen.BINDINGS)
    assert screen["tab"] == "app.focus_next" and screen["shift+tab"] == "app.focus_previous"
    ctrl_c = next(b for b in LoopcraftApp.BINDINGS if isinstance(b, Binding) and b.key == "ctrl+c")
    assert ctrl_c.priority  # Ctrl+C is the app's even where a focused widget binds it (copy)


def test_hint_line_names_only_bound_keys() -> None:
    hints = hint_text().plain + hint_text(attached=True).plain
    bound = {**APP_KEYS, **INPUT_KEYS}
    for label, key in HINT_KEYS.items():
        if label in hints:
            assert key in bound, label
    # Alt+Enter queues a follow-up; Ctrl+J (Shift+Enter where the terminal sends it) adds a line
    assert (
        INPUT_KEYS["alt+enter"] == "queue" and INPUT_KEYS["ctrl+j"] == INPUT_KEYS["shift+enter"] == "newline"
    )
    assert "Alt+Enter" in hints and "Ctrl+J" in hints
    assert "Ctrl+J" in hint_text().plain and "Ctrl+J" in hint_text(attached=True).plain
    assert "Esc" in hint_text(attached=True).plain  # Esc goes back to the chat from a transcript


@pytest.mark.parametrize("keys", [("ctrl+q",), ("ctrl+c", "ctrl+c")])
async def test_ctrl_q_and_ctrl_c_twice_quit_even_while_typing(git_repo: Path, keys: tuple[str, ...]) -> None:
    app = make_app(git_repo, "scripted/demo")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*"half a message")
        assert app.is_running and app.focused is app.input
        await pilot.press(*keys)
        await pilot.pause()
        assert not app.is_running
    assert app.return_code == 0


async def test_ctrl_c_interrupts_the_running_turn_then_a_second_press_quits(git_repo: Path) -> None:
    turns = [{"text": "slow " * 200, "pace": 0.05}, {"text": "next"}]
    app = make_app(git_repo, scripted("tui-keys-ctrl-c", turns, chunk_size=2))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*"start", "enter")
        await wait_for(pilot, lambda: app.chat.running and app.query(AssistantMessage))
        await pilot.press("ctrl+c")
        result = await app.chat.wait()
        assert result is not None and result.status == "interrupted"
        assert app.is_running  # one press interrupts; it does not quit
        app._quit_armed_at -= 3  # a press more than two seconds ago no longer counts
        await pilot.press("ctrl+c")
        await pilot.pause()
        assert app.is_running
        await pilot.press("ctrl+c")  # the second press within two seconds quits
        await wait_for(pilot, lambda: not app.is_running)


async def test_ctrl_c_copies_a_selection_in_the_prompt(git_repo: Path) -> None:
    app = make_app(git_repo, "scripted/demo")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*"copy me")
        app.input.select_all()
        await pilot.press("ctrl+c", "ctrl+c")
        await pilot.pause()
        assert app.is_running and app.clipboard == "copy me"


async def test_slash_quit_closes_the_chat_session_and_exits(git_repo: Path) -> None:
    app = make_app(git_repo, scripted("tui-keys-quit", [{"text": "hello back"}]))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*"hello", "enter")
        await wait_for(pilot, lambda: app.chat.agent is not None)
        await app.chat.wait()
        assert app.is_running
        await pilot.press(*"/quit", "enter")
        await wait_for(pilot, lambda: not app.is_running)
        assert app.chat.agent is None and not app.chat.running
    assert app.return_code == 0


async def test_f2_f3_f5_focus_their_pane_and_show_the_side(git_repo: Path) -> None:
    app = make_app(git_repo, "scripted/demo")
    async with app.run_test(size=SIZE) as pilot:
        side = app.query_one("#side")
        assert side.has_class("visible")  # the first screen shows the panes
        await pilot.press("ctrl+b")
        await pilot.pause()
        assert not side.has_class("visible") and side.region.width == 0
        await pilot.press("f2")
        await pilot.pause()
        assert isinstance(app.focused, DataTable) and app.focused.id == "runs-table"
        assert side.has_class("visible") and side.region.width > 0
        assert "Runs" in screen_text(app)
        await pilot.press("f3")
        assert isinstance(app.focused, Tree) and app.focused.id == "graph-tree"
        await pilot.press("f5")
        assert app.focused is app.input
        assert side.has_class("visible")  # F5 returns to the input without hiding the panes
        await pilot.press("ctrl+b")
        await pilot.pause()
        assert not side.has_class("visible")
        await pilot.press("f3")  # a pane key brings hidden panes back
        await pilot.pause()
        assert side.has_class("visible") and isinstance(app.focused, Tree)


async def test_f4_focuses_the_oldest_prompt(git_repo: Path) -> None:
    app = make_app(git_repo, "scripted/demo")
    async with app.run_test(size=SIZE) as pilot:
        pane = app.query_one(PromptsPane)
        await pane.add(PendingPrompt("p1", "run-1", "root/0:prompt:ok", "confirm", "Ship it?"))
        await pane.add(PendingPrompt("p2", "run-1", "root/1:prompt:name", "input", "Name it:"))
        await pilot.pause()
        await pilot.press("f4")
        await pilot.pause()
        first = app.query(PromptCard)[0]
        assert first.prompt.prompt_id == "p1" and app.focused is first
        assert app.query_one("#side").has_class("visible")
        assert "Prompts (2 pending)" in screen_text(app)


async def test_ctrl_b_shows_and_hides_the_side_panes(git_repo: Path) -> None:
    app = make_app(git_repo, "scripted/demo")
    async with app.run_test(size=SIZE) as pilot:
        chat = app.chat_view
        shown = chat.region.width
        assert "Stages" in screen_text(app)  # shown from the first screen
        await pilot.press("ctrl+b")
        await pilot.pause()
        assert not app.query_one("#side").has_class("visible")
        assert chat.region.width > shown and "Stages" not in screen_text(app)
        assert app.focused is app.input  # toggling the panes does not steal the input
        await pilot.press("ctrl+b")
        await pilot.pause()
        assert chat.region.width == shown and "Stages" in screen_text(app)


async def test_tab_without_a_suggestion_stays_in_the_input_and_shift_tab_moves(git_repo: Path) -> None:
    app = make_app(git_repo, "scripted/demo")
    async with app.run_test(size=SIZE) as pilot:
        assert app.focused is app.input
        await pilot.press("tab")  # nothing to complete: the prompt keeps the focus
        assert app.focused is app.input and app.input.value == ""
        await pilot.press(*"hello", "tab")
        assert app.focused is app.input and app.input.value == "hello"
        await pilot.press("shift+tab")
        assert app.focused is not app.input and app.focused is not None
        await pilot.press("f5")
        assert app.focused is app.input


async def test_alt_enter_and_tab_queue_follow_ups(git_repo: Path) -> None:
    turns = [{"text": "slow " * 150, "pace": 0.02}, {"text": "first follow-up answered"}, {"text": "second"}]
    app = make_app(git_repo, scripted("tui-keys-queue", turns, chunk_size=2))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*"start", "enter")
        await wait_for(pilot, lambda: app.chat.running)
        await pilot.press(*"one", "alt+enter")
        assert app.input.value == ""
        await pilot.press(*"two", "tab")  # Tab with nothing to complete queues too, while the agent works
        assert app.input.value == ""

        def queued() -> list[UserMessage]:
            return [m for m in app.query(UserMessage) if m.text in ("one", "two")]

        await wait_for(pilot, lambda: len(queued()) == 2)
        assert all(m.queued for m in queued()) and app.chat.queued == ["one", "two"]
        assert app.status.info.queued == 2
        await app.chat.wait()
        await wait_for(pilot, lambda: not any(m.queued for m in queued()))
        await wait_for(pilot, lambda: "first follow-up answered" in screen_text(app))
