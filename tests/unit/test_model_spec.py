"""Model strings: provider/model[:effort]."""

from __future__ import annotations

import pytest

from loopcraft.errors import ModelSpecError
from loopcraft.models.reasoning import reasoning_params
from loopcraft.models.spec import model_with_effort, parse_model
from tests.conftest import one_line_error


@pytest.mark.parametrize(
    ("text", "provider", "model", "effort"),
    [
        ("openai/gpt-5.5:high", "openai", "gpt-5.5", "high"),
        ("anthropic/claude-haiku-4-5:off", "anthropic", "claude-haiku-4-5", "off"),
        ("ollama/qwen2.5-coder", "ollama", "qwen2.5-coder", None),
        ("openrouter/meta/llama-3:low", "openrouter", "meta/llama-3", "low"),
        ("scripted/demo", "scripted", "demo", None),
        ("ollama/llama3:latest", "ollama", "llama3:latest", None),
        ("ollama/llama3:latest:high", "ollama", "llama3:latest", "high"),
        (
            "openrouter/meta-llama/llama-3.3-70b-instruct:free",
            "openrouter",
            "meta-llama/llama-3.3-70b-instruct:free",
            None,
        ),
        (
            "bedrock/anthropic.claude-3-sonnet-20240229-v1:0",
            "bedrock",
            "anthropic.claude-3-sonnet-20240229-v1:0",
            None,
        ),
        ("nvidia_nim/meta/llama3-70b-instruct", "nvidia_nim", "meta/llama3-70b-instruct", None),
        ("litellm_proxy/my-model", "litellm_proxy", "my-model", None),
        ("dashscope/qwen-max", "dashscope", "qwen-max", None),
    ],
)
def test_parse_valid(text: str, provider: str, model: str, effort: str | None) -> None:
    spec = parse_model(text)
    assert (spec.provider, spec.model, spec.effort) == (provider, model, effort)
    assert str(spec) == text


@pytest.mark.parametrize("suffix", ["HIGH", "High", "high"])
def test_effort_suffix_is_case_insensitive(suffix: str) -> None:
    spec = parse_model(f"openai/gpt-4o:{suffix}")
    assert (spec.model, spec.effort, str(spec)) == ("gpt-4o", "high", "openai/gpt-4o:high")


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("gpt-4", "expected provider/model"),
        ("openai/", "expected provider/model"),
        ("nosuch/model", "unknown provider 'nosuch'"),
        ("opnai/gpt-5:high", "did you mean openai"),
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


def test_an_effort_given_on_its_own_joins_a_model_without_one() -> None:
    assert model_with_effort("ollama/llama3:latest", "HIGH") == "ollama/llama3:latest:high"
    assert model_with_effort("openai/gpt-5.5:low", "high") == "openai/gpt-5.5:low"  # the string's own wins
    assert model_with_effort("openai/gpt-5.5", None) == "openai/gpt-5.5"
    assert "invalid effort 'huge'" in one_line_error(
        ModelSpecError, lambda: model_with_effort("openai/x", "huge")
    )
