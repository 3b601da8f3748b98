"""Effort per model family, the output cap with the thinking budget inside it, folding streamed
reasoning state, replayable tool arguments, overloaded errors and library warnings to the log."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from loopcraft.models.errors import classify, short_message
from loopcraft.models.reasoning import (
    ReasoningState,
    fit_window,
    output_limit,
    reasoning_params,
    request_max_tokens,
)
from loopcraft.models.retry import RETRYABLE
from loopcraft.models.spec import parse_model
from loopcraft.models.types import ToolCall

INFO: dict[str, dict[str, Any]] = {
    "openai/gpt-5.5": {
        "max_output_tokens": 128000,
        "supports_none_reasoning_effort": True,
        "supports_xhigh_reasoning_effort": True,
        "supports_minimal_reasoning_effort": False,
    },
    "openai/gpt-5": {"max_output_tokens": 128000, "supports_minimal_reasoning_effort": True},
    "anthropic/claude-sonnet-4-5": {"max_output_tokens": 64000, "max_input_tokens": 200000},
}


def _info(model: str) -> dict[str, Any]:
    return INFO.get(model, {})


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("openai/gpt-5.5:off", {"reasoning_effort": "none"}),
        ("openai/gpt-5.5:minimal", {"reasoning_effort": "low"}),
        ("openai/gpt-5.5:max", {"reasoning_effort": "xhigh"}),
        ("openai/gpt-5.5:high", {"reasoning_effort": "high"}),
        ("openai/gpt-5:off", {"reasoning_effort": "minimal"}),
        ("openai/gpt-5:max", {"reasoning_effort": "high"}),
        ("openai/gpt-5.5", {}),
        ("anthropic/claude-sonnet-4-5:off", {"thinking": {"type": "disabled"}}),
        ("anthropic/claude-sonnet-4-5:high", {"thinking": {"type": "enabled", "budget_tokens": 16384}}),
        ("anthropic/claude-sonnet-4-5:max", {"thinking": {"type": "enabled", "budget_tokens": 32000}}),
        ("gemini/gemini-2.5-pro:max", {"reasoning_effort": "high"}),
        ("gemini/gemini-2.5-pro:off", {}),
        ("scripted/demo:high", {}),
    ],
)
def test_effort_per_family(model: str, expected: dict[str, Any]) -> None:
    spec = parse_model(model)
    assert reasoning_params(spec, output_limit(spec, None, _info), _info) == expected


def test_output_limit_holds_the_thinking_budget() -> None:
    spec = parse_model("anthropic/claude-sonnet-4-5:max")
    assert output_limit(spec, None, _info) == 64000
    small = output_limit(spec, 4000, _info)
    params = reasoning_params(spec, small, _info)
    assert params["thinking"]["budget_tokens"] < request_max_tokens(spec, small, params)  # type: ignore[operator]
    assert output_limit(parse_model("anthropic/unknown-model"), None, _info) == 8192
    assert output_limit(parse_model("scripted/demo"), None, _info) is None
    assert output_limit(parse_model("openai/gpt-5.5"), None, _info) is None  # the provider's default
    assert output_limit(parse_model("openai/gpt-5.5"), 5000, _info) == 5000


def test_output_cap_leaves_room_for_the_prompt() -> None:
    spec = parse_model("anthropic/claude-sonnet-4-5")
    assert fit_window(64000, spec, 3 * 1000, None, _info) == 64000
    assert fit_window(64000, spec, 3 * 180_000, None, _info) == 20000
    assert fit_window(64000, spec, 3 * 250_000, None, _info) == 2048  # overflow: the provider says so


def test_thinking_pieces_fold_into_signed_blocks() -> None:
    state = ReasoningState()
    state.add_thinking([{"type": "thinking", "thinking": "a"}])
    state.add_thinking([{"type": "thinking", "thinking": "b"}])
    state.add_thinking([{"type": "thinking", "thinking": "", "signature": "s1"}])
    state.add_thinking([{"type": "redacted_thinking", "data": "xyz"}])
    state.add_thinking([{"type": "thinking", "thinking": "c", "signature": "s2"}])
    assert state.fields()["thinking_blocks"] == [
        {"type": "thinking", "thinking": "ab", "signature": "s1"},
        {"type": "redacted_thinking", "data": "xyz"},
        {"type": "thinking", "thinking": "c", "signature": "s2"},
    ]


def test_unparseable_arguments_replay_as_an_object_that_says_so() -> None:
    call = ToolCall("c1", "write", '{"path": "a", "content": "unterminated')
    replay = call.replayable(truncated=True)
    assert "output limit" in replay.arguments
    with pytest.raises(ValueError):
        replay.parsed()
    good = ToolCall("c2", "ls", '{"path": "."}')
    assert good.replayable() is good


class _Overloaded(Exception):
    status_code = 529


def test_529_is_overloaded_and_retryable() -> None:
    assert classify(_Overloaded('b\'{"type":"error"}\'')) == "overloaded"
    assert classify(RuntimeError("AnthropicException - Overloaded")) == "overloaded"
    assert "overloaded" in RETRYABLE


def test_error_text_is_decoded() -> None:
    text = short_message(RuntimeError('b\'{"message": "caf\\xc3\\xa9 down"}\''))
    assert "b'" not in text and "café down" in text


def test_library_warnings_go_to_the_log_not_stderr() -> None:
    code = (
        "import warnings\n"
        "from loopcraft.models.litellm_loader import load_litellm\n"
        "load_litellm()\n"
        "warnings.warn_explicit('Pydantic serializer warnings', UserWarning, '/x/site-packages/pydantic/main.py', 1)\n"
        "warnings.warn_explicit('user visible', UserWarning, '/x/mine.py', 1)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "Pydantic serializer" not in done.stderr + done.stdout
    assert "user visible" in done.stderr


def test_a_json_error_body_reads_as_its_message() -> None:
    exc = RuntimeError(
        'AnthropicException - {"type":"error","error":{"type":"invalid_request_error","message":"bad turn"}}'
    )
    assert short_message(exc) == "invalid_request_error: bad turn"
