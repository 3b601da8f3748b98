"""Shared fixtures: every test runs offline, with its own loopcraft home and no API keys."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

_KEY_VARS = (
    "ANTHROPIC_API_KEY",
    "OPENAI_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "OPENROUTER_API_KEY",
    "MISTRAL_API_KEY",
    "GROQ_API_KEY",
    "DEEPSEEK_API_KEY",
    "XAI_API_KEY",
)


@pytest.fixture(autouse=True)
def _offline_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No real keys, no user config, no stray LOOPCRAFT_* settings, no Ollama probe."""
    for var in _KEY_VARS:
        monkeypatch.delenv(var, raising=False)
    for var in list(os.environ):
        if var.startswith("LOOPCRAFT_"):
            monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("LOOPCRAFT_HOME", str(tmp_path_factory.mktemp("home")))
    monkeypatch.setenv("LOOPCRAFT_NO_OLLAMA_PROBE", "1")
    monkeypatch.setenv("LOOPCRAFT_TRUST", "1")  # test repos are trusted; the trust tests unset it


def make_git_repo(path: Path) -> Path:
    """A real git repository with one commit."""
    path.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True, env=env)
    (path / "README.md").write_text("# sample\n")
    subprocess.run(["git", "-C", str(path), "add", "-A"], check=True, env=env)
    subprocess.run(["git", "-C", str(path), "commit", "-qm", "init"], check=True, env=env)
    return path


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    """A fresh real git repository in a temp dir (the cwd is not changed)."""
    return make_git_repo(tmp_path / "repo")


def one_line_error(error: type[Exception], call: Callable[[], object]) -> str:
    """The message of the ``error`` that ``call()`` raises, checked to be a single line."""
    with pytest.raises(error) as err:
        call()
    message = str(err.value)
    assert "\n" not in message, message
    return message
