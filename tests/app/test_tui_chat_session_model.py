"""``ChatSession.switch_model`` (the app's ``/model``): checked as a model string only; the
configured ``[models."…"]`` keys are model strings, not extra provider names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from loopcraft.config import load_config
from loopcraft.errors import ModelSpecError
from loopcraft.tui.chat_session import ChatSession


def _session(root: Path) -> ChatSession:
    (root / ".loopcraft").mkdir(exist_ok=True)
    (root / ".loopcraft" / "config.toml").write_text(
        '[models."openai_compatible/local"]\napi_base = "http://127.0.0.1:9/v1"\n'
    )

    def ignore(*_: Any) -> None:
        return None

    return ChatSession(root, load_config(root), "scripted/demo", on_event=ignore, ask=ignore)  # type: ignore[arg-type]


def test_switch_model_accepts_configured_and_known_models(git_repo: Path) -> None:
    session = _session(git_repo)
    session.switch_model("openai_compatible/local:high")
    assert session.model == "openai_compatible/local:high"
    session.switch_model("scripted/other")
    assert session.model == "scripted/other"


@pytest.mark.parametrize("bad", ["local/x", "nosuch/x", "not a model"])
def test_switch_model_refuses_unknown_providers_and_bad_strings(git_repo: Path, bad: str) -> None:
    session = _session(git_repo)
    with pytest.raises(ModelSpecError):
        session.switch_model(bad)
    assert session.model == "scripted/demo"
