"""Usage normalization, prices (bundled map and config overrides) and Anthropic cache markers."""

from __future__ import annotations

import pytest

from loopcraft.config import ModelOptions
from loopcraft.models.caching import MAX_BREAKPOINTS, apply_cache_markers
from loopcraft.models.cost import cost_usd, usage_from_provider
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


def test_config_prices_cache_reads_and_writes_separately() -> None:
    usage = Usage(input_tokens=1000, output_tokens=100, cache_read_tokens=400, cache_write_tokens=100)
    options = ModelOptions(
        input_cost_per_mtok=1.0,
        output_cost_per_mtok=2.0,
        cache_read_cost_per_mtok=0.1,
        cache_write_cost_per_mtok=1.25,
    )
    expected = 500 * 1e-6 + 400 * 0.1e-6 + 100 * 1.25e-6 + 100 * 2e-6
    assert cost_usd(usage, parse_model("openai_compatible/local"), options) == pytest.approx(expected)
    # Unknown cache prices fall back to the input price.
    only_input = ModelOptions(input_cost_per_mtok=1.0)
    assert cost_usd(usage, parse_model("openai_compatible/local"), only_input) == pytest.approx(1000 * 1e-6)


def test_gpt_5_5_above_272k_input_tokens_is_priced_at_the_upper_tier() -> None:
    # litellm 1.106's bundled map: $5/M input, $30/M output; above 272k: $10/M and $45/M (cache reads $1/M)
    spec = parse_model("openai/gpt-5.5:high")
    long = cost_usd(Usage(input_tokens=300_000, output_tokens=1_000), spec, ModelOptions())
    assert long == pytest.approx(300_000 * 10e-6 + 1_000 * 45e-6)
    short = cost_usd(Usage(input_tokens=100_000, output_tokens=1_000), spec, ModelOptions())
    assert short == pytest.approx(100_000 * 5e-6 + 1_000 * 30e-6)
    cached = cost_usd(
        Usage(input_tokens=300_000, output_tokens=0, cache_read_tokens=200_000), spec, ModelOptions()
    )
    assert cached == pytest.approx(100_000 * 10e-6 + 200_000 * 1e-6)


def test_gemini_2_5_pro_above_200k_and_anthropic_cache_reads_and_writes() -> None:
    gemini = cost_usd(
        Usage(input_tokens=300_000, output_tokens=1_000), parse_model("gemini/gemini-2.5-pro"), ModelOptions()
    )
    assert gemini == pytest.approx(300_000 * 2.5e-6 + 1_000 * 15e-6)
    usage = Usage(input_tokens=10_000, output_tokens=1_000, cache_read_tokens=5_000, cache_write_tokens=2_000)
    claude = cost_usd(usage, parse_model("anthropic/claude-sonnet-4-5"), ModelOptions())
    assert claude == pytest.approx(3_000 * 3e-6 + 5_000 * 0.3e-6 + 2_000 * 3.75e-6 + 1_000 * 15e-6)


def test_a_configured_price_replaces_the_bundled_one_and_its_tiers() -> None:
    spec = parse_model("openai/gpt-5.5")
    options = ModelOptions(input_cost_per_mtok=1.0)
    cost = cost_usd(Usage(input_tokens=300_000, output_tokens=1_000), spec, options)
    assert cost == pytest.approx(300_000 * 1e-6 + 1_000 * 45e-6)  # output keeps its bundled tier
    # registering a price for one config leaves the bundled price alone for the others
    assert cost_usd(Usage(input_tokens=1_000), spec, ModelOptions()) == pytest.approx(1_000 * 5e-6)


def test_scripted_models_are_free_unless_priced() -> None:
    spec = parse_model("scripted/demo")
    usage = Usage(input_tokens=1_000, output_tokens=1_000)
    assert cost_usd(usage, spec, ModelOptions()) == 0.0
    assert cost_usd(usage, spec, ModelOptions(output_cost_per_mtok=4.0)) == pytest.approx(1_000 * 4e-6)


def test_a_model_litellm_cannot_price_costs_nothing() -> None:
    assert cost_usd(Usage(input_tokens=1_000), parse_model("openai/no-such-model-xyz"), ModelOptions()) == 0.0


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


def test_anthropic_one_hour_cache_writes_are_priced_from_the_provider_usage() -> None:
    from litellm.types.utils import CacheCreationTokenDetails, PromptTokensDetailsWrapper
    from litellm.types.utils import Usage as LitellmUsage

    details = CacheCreationTokenDetails(ephemeral_5m_input_tokens=0, ephemeral_1h_input_tokens=2_000)
    raw = LitellmUsage(
        prompt_tokens=3_000,
        completion_tokens=0,
        total_tokens=3_000,
        cache_creation_input_tokens=2_000,
        prompt_tokens_details=PromptTokensDetailsWrapper(
            cached_tokens=0, cache_creation_token_details=details
        ),
    )
    spec = parse_model("anthropic/claude-sonnet-4-5")
    cost = cost_usd(usage_from_provider(raw), spec, ModelOptions(), raw)
    assert cost == pytest.approx(1_000 * 3e-6 + 2_000 * 6e-6)  # 1-hour writes at $6/M, not $3.75/M
