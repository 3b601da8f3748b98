"""The app's configuration is validated right after its first frame (``loopcraft`` passes no
config, only a preview read without pydantic): the validated values then apply, and a bad
configuration ends the app with its one-line error, which ``run_app`` raises; the preview
follows the same layers (user < repo, limited when untrusted < env < flag). And nothing
before the first frame imports pydantic (fresh interpreter)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from loopcraft.config import Config
from loopcraft.config_preview import ConfigPreview, preview_config
from loopcraft.errors import ConfigError
from loopcraft.trust import trust
from loopcraft.tui.app import LoopcraftApp
from tests.app.tui_support import wait_for
from tests.cli_process import run_python


def _repo_config(root: Path, text: str) -> None:
    (root / ".loopcraft").mkdir(exist_ok=True)
    (root / ".loopcraft" / "config.toml").write_text(text)


async def test_the_validated_config_replaces_the_preview_after_the_first_frame(git_repo: Path) -> None:
    trust(git_repo)
    _repo_config(
        git_repo, 'theme = "loopcraft-light"\nmodel = "scripted/other"\n[agent]\npermission_mode = "plan"\n'
    )
    app = LoopcraftApp(git_repo, None, background=False, preview=ConfigPreview())
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.first_paint_at is not None)
        await pilot.pause()
        assert isinstance(app.config, Config) and app.chat.config is app.config
        assert app.theme == "loopcraft-light"
        assert app.chat.model == "scripted/other"
        assert app.chat.permission_mode == "plan"
    assert app.startup_error is None


async def test_a_bad_config_ends_the_app_with_its_error(git_repo: Path) -> None:
    trust(git_repo)
    _repo_config(git_repo, "[agent]\nmax_turns = -1\n")
    app = LoopcraftApp(git_repo, None, background=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.startup_error is not None)
        await pilot.pause()
    assert isinstance(app.startup_error, ConfigError)
    assert str(app.startup_error).startswith("config error: ")
    assert "agent.max_turns" in str(app.startup_error)
    assert app.return_code == app.startup_error.exit_code


def test_the_preview_follows_the_config_layers(git_repo: Path, tmp_path: Path) -> None:
    home = Path(os.environ["LOOPCRAFT_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text('theme = "textual-dark"\nmodel = "scripted/user"\n')
    assert preview_config(git_repo, None, {}) == ConfigPreview("textual-dark", "scripted/user", "default")
    _repo_config(git_repo, 'model = "scripted/repo"\n[agent]\npermission_mode = "yolo"\n')
    untrusted = preview_config(git_repo, None, {})
    assert untrusted.model == "scripted/repo"  # a harmless key
    assert untrusted.permission_mode == "default"  # not harmless: an untrusted folder cannot set it
    trusted = preview_config(git_repo, None, {"LOOPCRAFT_TRUST": "1"})
    assert trusted.permission_mode == "yolo"
    env = {"LOOPCRAFT_TRUST": "1", "LOOPCRAFT_MODEL": "scripted/env", "LOOPCRAFT_THEME": "loopcraft-light"}
    assert preview_config(git_repo, None, env) == ConfigPreview("loopcraft-light", "scripted/env", "yolo")
    assert preview_config(git_repo, "scripted/flag", env).model == "scripted/flag"
    _repo_config(git_repo, "not toml [")
    assert preview_config(git_repo, None, {}).model == "scripted/user"  # left to the validation


@pytest.mark.parametrize("module", ["pydantic", "loopcraft.config", "git", "tomlkit"])
def test_nothing_before_the_first_frame_imports(module: str, tmp_path: Path) -> None:
    probe = (
        "import sys\n"
        "from loopcraft.config_preview import preview_config\n"
        "from loopcraft.paths import repo_root\n"
        "preview_config(repo_root(), None)\n"
        "from loopcraft.tui.app import run_app\n"
        f"print({module!r} in sys.modules)\n"
    )
    done = run_python(probe, cwd=tmp_path, timeout=60)
    assert done.stdout.strip() == "False", done.stderr[-2000:]
