"""Configuration precedence and one-line errors for bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from loopcraft.config import load_config, user_config_path
from loopcraft.errors import ConfigError


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_defaults_without_any_file(tmp_path: Path) -> None:
    config = load_config(tmp_path, environ={})
    assert config.model is None
    assert config.agent.max_turns == 100
    assert config.theme == "loopcraft-dark"


def test_precedence_flag_over_env_over_repo_over_user(tmp_path: Path) -> None:
    _write(user_config_path(), 'model = "openai/user"\ntheme = "user-theme"\n[agent]\nmax_turns = 7\n')
    _write(tmp_path / ".loopcraft" / "config.toml", 'model = "openai/repo"\n[agent]\nmax_tool_calls = 9\n')
    env = {"LOOPCRAFT_MODEL": "openai/env", "LOOPCRAFT_AGENT__MAX_TURNS": "11"}

    assert load_config(tmp_path, environ={}).model == "openai/repo"
    config = load_config(tmp_path, environ=env)
    assert config.model == "openai/env"
    assert config.agent.max_turns == 11  # env beats user
    assert config.agent.max_tool_calls == 9  # repo kept when env does not set it
    assert config.theme == "user-theme"  # user kept when nothing overrides it
    assert load_config(tmp_path, flags={"model": "openai/flag"}, environ=env).model == "openai/flag"


def test_bad_value_names_file_key_and_problem(tmp_path: Path) -> None:
    repo_file = tmp_path / ".loopcraft" / "config.toml"
    _write(repo_file, "[agent]\nmax_turns = 'many'\n")
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path, environ={})
    message = str(err.value)
    assert str(repo_file) in message and "agent.max_turns" in message and "whole number" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("[agent]\nmax_turnz = 3\n", r"config\.toml: agent\.max_turnz: unknown key"),
        ("model = \n", r"config\.toml: not valid TOML"),
        ('model = "nonsense"\n', r"config\.toml: model: invalid model string 'nonsense'"),
        (
            'model = "openai/gpt-5.5"\nfallback_models = ["openai/x", "bogus/y"]\n',
            r"config\.toml: fallback_models\.1: unknown provider 'bogus'",
        ),
    ],
)
def test_bad_file_is_one_line_naming_file_and_key(tmp_path: Path, text: str, pattern: str) -> None:
    _write(tmp_path / ".loopcraft" / "config.toml", text)
    with pytest.raises(ConfigError, match=pattern) as err:
        load_config(tmp_path, environ={})
    assert "\n" not in str(err.value)


def test_bad_env_value_names_the_environment(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"environment variable LOOPCRAFT_AGENT__MAX_TURNS: agent\.max_turns"
    ):
        load_config(tmp_path, environ={"LOOPCRAFT_AGENT__MAX_TURNS": "-1"})


def test_model_options_fall_back_to_base_model(tmp_path: Path) -> None:
    _write(tmp_path / ".loopcraft" / "config.toml", '[models."openai/x"]\ncontext_window = 1000\n')
    config = load_config(tmp_path, environ={})
    assert config.model_options("openai/x:high").context_window == 1000
    assert config.model_options("openai/other").context_window is None


def test_model_options_keep_a_tag_that_is_not_an_effort(tmp_path: Path) -> None:
    _write(
        tmp_path / ".loopcraft" / "config.toml", '[models."ollama/llama3:latest"]\ncontext_window = 32000\n'
    )
    config = load_config(tmp_path, environ={})
    assert config.model_options("ollama/llama3:latest:HIGH").context_window == 32000
    assert config.model_options("ollama/llama3").context_window is None


def test_bad_model_in_the_environment_names_the_environment(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"environment variable LOOPCRAFT_MODEL: model: unknown provider"):
        load_config(tmp_path, environ={"LOOPCRAFT_MODEL": "opnai/gpt-5.5:high"})
