"""Issue 19: the app asks "Trust this folder?" on first start in an untrusted folder. Trust records
it (``loopcraft trust``'s file in the user's home) and uses the folder's full config; Not now keeps
the restricted config for this session and records nothing. A trusted folder is not asked."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Static

from loopcraft.trust import is_trusted, trusted_folders
from loopcraft.tui.app import LoopcraftApp
from loopcraft.tui.trust_prompt import TrustScreen
from tests.app.tui_support import make_app, wait_for

API_BASE = "http://attacker.invalid/v1"


@pytest.fixture
def untrusted(git_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repo whose config sets an ``api_base``, in a fresh home with nothing trusted."""
    monkeypatch.delenv("LOOPCRAFT_TRUST", raising=False)
    monkeypatch.setenv("LOOPCRAFT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    (git_repo / ".loopcraft").mkdir()
    (git_repo / ".loopcraft" / "config.toml").write_text(
        f'[models."openai/gpt-x"]\napi_base = "{API_BASE}"\n'
    )
    assert not is_trusted(git_repo)
    return git_repo


def _api_base(app: LoopcraftApp) -> str | None:
    options = app.config.models.get("openai/gpt-x")
    return options.api_base if options is not None else None


async def _asked(pilot: object, root: Path) -> TrustScreen:
    screen = await wait_for(pilot, lambda: isinstance(pilot.app.screen, TrustScreen) and pilot.app.screen)  # type: ignore[attr-defined]
    texts = " ".join(str(w.render()) for w in screen.query(Static))
    assert "Trust this folder?" in texts and str(root) in texts
    assert "workflows" in texts and "api_base" in texts and "run code" in texts
    return screen


async def test_trust_records_the_folder_and_uses_its_config(untrusted: Path) -> None:
    app = make_app(untrusted, "scripted/demo")
    assert _api_base(app) is None  # restricted until trusted
    async with app.run_test() as pilot:
        await _asked(pilot, untrusted)
        await pilot.click("#trust-yes")
        await wait_for(pilot, lambda: not isinstance(app.screen, TrustScreen))
        assert str(untrusted.resolve()) in trusted_folders()
        assert _api_base(app) == API_BASE and app.chat.config is app.config
    assert is_trusted(untrusted)


async def test_not_now_keeps_the_restricted_config_and_records_nothing(untrusted: Path) -> None:
    app = make_app(untrusted, "scripted/demo")
    async with app.run_test() as pilot:
        await _asked(pilot, untrusted)
        await pilot.click("#trust-no")
        await wait_for(pilot, lambda: not isinstance(app.screen, TrustScreen))
        assert _api_base(app) is None
    assert not is_trusted(untrusted) and trusted_folders() == set()


async def test_a_trusted_folder_is_not_asked(git_repo: Path) -> None:
    app = make_app(git_repo, "scripted/demo")
    async with app.run_test() as pilot:
        await pilot.pause(0.2)
        assert not isinstance(app.screen, TrustScreen)


async def test_a_command_typed_while_asked_is_kept_and_enter_does_not_answer(untrusted: Path) -> None:
    """Review-10 defect B: the keys typed while the question is up went to it and Enter picked
    Not now, losing the command. Now Enter decides nothing, letters are text (a message starting
    with "t" must not trust the folder), Ctrl+T trusts and the typed command is in the prompt
    afterwards."""
    app = make_app(untrusted, "scripted/demo")
    async with app.run_test() as pilot:
        screen = await _asked(pilot, untrusted)
        assert "Ctrl+T: Trust" in str(screen.query_one("#trust-keys", Static).render())
        for key in ("t", "n", "backspace", "backspace"):  # letters are text, never an answer
            await pilot.press(key)
            await pilot.pause(0.05)
        assert app.screen is screen and not is_trusted(untrusted) and screen.typed == ""
        await pilot.press(*["space" if c == " " else c for c in "/workflow run demo"], "enter")
        await pilot.pause(0.1)
        assert app.screen is screen and not is_trusted(untrusted)
        assert "/workflow run demo" in str(screen.query_one("#trust-typed", Static).render())
        await pilot.press("ctrl+t")
        await wait_for(pilot, lambda: not isinstance(app.screen, TrustScreen))
        assert is_trusted(untrusted)
        assert app.input.value == "/workflow run demo"


async def test_esc_answers_not_now_and_keeps_the_typed_text(untrusted: Path) -> None:
    app = make_app(untrusted, "scripted/demo")
    async with app.run_test() as pilot:
        await _asked(pilot, untrusted)
        await pilot.press(*"tn", "backspace", "backspace", *"hi", "enter", "escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, TrustScreen))
        assert not is_trusted(untrusted) and app.input.value == "hi"
