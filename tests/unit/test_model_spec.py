"""Model strings: provider/model[:effort]."""

from __future__ import annotations

import pytest

from loopcraft.errors import ModelSpecError
from loopcraft.models.reasoning import reasoning_params
from loopcraft.models.spec import parse_model
from tests.conftest import one_line_error


@pytest.mark.parametrize(
    ("text", "provider", "model", "effort"),
    [
        ("openai/gpt-5.5:high", "openai", "gpt-5.5", "high"),
        ("anthropic/claude-haiku-4-5:off", "anthropic", "claude-haiku-4-5", "off"),
        ("ollama/qwen2.5-coder", "ollama", "qwen2.5-coder", None),
        ("openrouter/meta/llama-3:low", "openrouter", "meta/llama-3", "low"),
        ("scripted/demo", "scripted", "demo", None),
    ],
)
def test_parse_valid(text: str, provider: str, model: str, effort: str | None) -> None:
    spec = parse_model(text)
    assert (spec.provider, spec.model, spec.effort) == (provider, model, effort)
    assert str(spec) == text


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("gpt-4", "expected provider/model"),
        ("openai/", "expected provider/model"),
        ("nosuch/model", "unknown provider 'nosuch'"),
        ("openai/gpt-5:turbo", "invalid effort 'turbo'"),
    ],
)
def test_parse_invalid_is_one_clear_line(text: str, needle: str) -> None:
    assert needle in one_line_error(ModelSpecError, lambda: parse_model(text))


def test_effort_maps_to_reasoning_params() -> None:
    assert reasoning_params(parse_model("openai/o3:high")) == {"reasoning_effort": "high"}
    assert reasoning_params(parse_model("openai/o3:max")) == {"reasoning_effort": "high"}
    assert reasoning_params(parse_model("anthropic/claude-sonnet-4-5:max"))["thinking"]["type"] == "enabled"
    assert reasoning_params(parse_model("openai/o3")) == {}
    assert reasoning_params(parse_model("scripted/demo:high")) == {}
