"""Default model resolution precedence and API key presence."""

from __future__ import annotations

import socket

import pytest

from loopcraft.config import Config
from loopcraft.errors import ModelSpecError
from loopcraft.models import resolve
from loopcraft.models.resolve import DEMO_NOTICE, api_key_status, resolve_model
from tests.conftest import one_line_error

NO_PROBE = {"LOOPCRAFT_NO_OLLAMA_PROBE": "1"}


def test_precedence_flag_stage_config_env() -> None:
    env = {**NO_PROBE, "LOOPCRAFT_MODEL": "openai/e", "OPENAI_API_KEY": "k"}
    cfg = Config(model="openai/c")
    assert resolve_model("openai/f", "openai/s", cfg, env).model == "openai/f"
    assert resolve_model(None, "openai/s:high", cfg, env) == resolve.ResolvedModel("openai/s:high", "stage")
    assert resolve_model(None, None, cfg, env).source == "config"
    assert resolve_model(None, None, Config(), env).model == "openai/e"


def test_detected_from_keys_in_order() -> None:
    env = {**NO_PROBE, "OPENAI_API_KEY": "x", "GEMINI_API_KEY": "y"}
    assert resolve_model(environ=env).model == "openai/gpt-5.5"
    env["ANTHROPIC_API_KEY"] = "z"
    got = resolve_model(environ=env)
    assert (got.model, got.source, got.notice) == (
        "anthropic/claude-sonnet-4-5",
        "detected:ANTHROPIC_API_KEY",
        None,
    )


def test_demo_fallback_with_notice() -> None:
    got = resolve_model(environ=NO_PROBE)
    assert (got.model, got.source, got.notice) == ("scripted/demo", "demo", DEMO_NOTICE)


@pytest.mark.parametrize("variable", ["OLLAMA_HOST", "OLLAMA_API_BASE"])
def test_ollama_detected_where_its_variables_say(variable: str) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    try:
        port = listener.getsockname()[1]
        address = f"127.0.0.1:{port}" if variable == "OLLAMA_HOST" else f"http://127.0.0.1:{port}"
        assert resolve_model(environ={variable: address}).model == "ollama/qwen2.5-coder"
    finally:
        listener.close()
    assert resolve_model(environ={variable: address}).model == "scripted/demo"  # nothing there now


def test_bad_strings_raise_one_line_errors() -> None:
    assert "provider/model" in one_line_error(
        ModelSpecError, lambda: resolve_model("not a model", environ=NO_PROBE)
    )
    with pytest.raises(ModelSpecError, match="unknown provider 'nope'"):
        resolve_model(None, None, Config(model="nope/x"), NO_PROBE)


def test_api_key_status_reports_presence_only() -> None:
    status = api_key_status({"OPENAI_API_KEY": "sk-secret", "GEMINI_API_KEY": ""})
    assert status == {"ANTHROPIC_API_KEY": False, "OPENAI_API_KEY": True, "GEMINI_API_KEY": False}
    assert "sk-secret" not in repr(status)
