"""Usage normalization, prices (bundled map and config overrides) and Anthropic cache markers."""

from __future__ import annotations

import pytest

from loopcraft.config import ModelOptions
from loopcraft.models.caching import MAX_BREAKPOINTS, apply_cache_markers
from loopcraft.models.cost import Prices, cost_usd, prices_for, usage_from_provider
from loopcraft.models.spec import parse_model
from loopcraft.models.types import Usage


def test_usage_from_openai_and_anthropic_shapes() -> None:
    openai = usage_from_provider(
        {"prompt_tokens": 100, "completion_tokens": 20, "prompt_tokens_details": {"cached_tokens": 60}}
    )
    assert (openai.input_tokens, openai.output_tokens, openai.cache_read_tokens) == (100, 20, 60)
    anthropic = usage_from_provider(
        {
            "prompt_tokens": 300,
            "completion_tokens": 5,
            "cache_read_input_tokens": 200,
            "cache_creation_input_tokens": 50,
        }
    )
    assert (anthropic.cache_read_tokens, anthropic.cache_write_tokens) == (200, 50)
    assert usage_from_provider(None) == Usage()


def test_cost_prices_cache_reads_and_writes_separately() -> None:
    usage = Usage(input_tokens=1000, output_tokens=100, cache_read_tokens=400, cache_write_tokens=100)
    prices = Prices(input=1e-6, output=2e-6, cache_read=0.1e-6, cache_write=1.25e-6)
    expected = 500 * 1e-6 + 400 * 0.1e-6 + 100 * 1.25e-6 + 100 * 2e-6
    assert cost_usd(usage, prices) == pytest.approx(expected)
    # Unknown cache prices fall back to the input price.
    assert cost_usd(usage, Prices(input=1e-6, output=0)) == pytest.approx(1000 * 1e-6)


def test_prices_from_bundled_map_and_config_override() -> None:
    spec = parse_model("anthropic/claude-sonnet-4-5:high")
    bundled = prices_for(spec, ModelOptions())
    assert bundled.input > 0 and bundled.output > bundled.input and bundled.cache_read is not None
    overridden = prices_for(spec, ModelOptions(input_cost_per_mtok=1.0))
    assert overridden.input == pytest.approx(1e-6)
    assert overridden.output == bundled.output


def test_scripted_models_are_free_unless_priced() -> None:
    spec = parse_model("scripted/demo")
    assert prices_for(spec, ModelOptions()) == Prices()
    assert prices_for(spec, ModelOptions(output_cost_per_mtok=4.0)).output == pytest.approx(4e-6)


def _markers(messages: list[dict]) -> int:
    return sum(
        1
        for m in messages
        if isinstance(m.get("content"), list)
        for block in m["content"]
        if "cache_control" in block
    )


def test_anthropic_gets_system_and_last_message_breakpoints_without_mutation() -> None:
    messages = [
        {"role": "system", "content": "You are helpful."},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "answer"},
        {"role": "user", "content": "second"},
    ]
    marked = apply_cache_markers(messages, "anthropic")
    assert messages[0]["content"] == "You are helpful."  # input untouched
    assert marked[0]["content"] == [
        {"type": "text", "text": "You are helpful.", "cache_control": {"type": "ephemeral"}}
    ]
    assert marked[-1]["content"][0]["cache_control"] == {"type": "ephemeral"}
    assert marked[1]["content"] == "first"
    assert _markers(marked) == 2


def test_other_providers_unchanged_and_breakpoints_capped() -> None:
    messages = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]
    assert apply_cache_markers(messages, "openai") is messages
    crowded = [
        {
            "role": "user",
            "content": [{"type": "text", "text": str(i), "cache_control": {"type": "ephemeral"}}],
        }
        for i in range(MAX_BREAKPOINTS - 1)
    ] + [{"role": "system", "content": "s"}, {"role": "user", "content": "last"}]
    assert _markers(apply_cache_markers(crowded, "anthropic")) == MAX_BREAKPOINTS
