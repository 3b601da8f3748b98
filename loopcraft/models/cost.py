"""Usage and dollars: normalize a provider's usage block and price it with litellm's own cost
functions, so tiered prices (gpt-5.5 above 272k input tokens, gemini-2.5-pro above 200k),
cache reads and cache writes (Anthropic's 1-hour writes included) are priced as the provider bills.

Prices set in config (``[models.X] input_cost_per_mtok`` …, dollars per million tokens) are
registered with litellm (``litellm.register_model``) under a key of their own, on top of the
bundled entry: a configured price replaces that price and its tiers; a configured input price
with no cache price of its own also prices cache reads and writes. ``input_tokens`` counts every
prompt token, cached ones included. A model litellm cannot price (and an unpriced scripted or
``openai_compatible`` model) costs nothing.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from loopcraft.config import ModelOptions
from loopcraft.models.spec import ModelSpec
from loopcraft.models.types import Usage

_PER_MTOK = 1_000_000
_REGISTERED_PREFIX = "loopcraft-priced"

# Config field -> the litellm cost-map key it sets (its tiers start with the same key).
_CONFIG_KEYS = (
    ("input_cost_per_mtok", "input_cost_per_token"),
    ("output_cost_per_mtok", "output_cost_per_token"),
    ("cache_read_cost_per_mtok", "cache_read_input_token_cost"),
    ("cache_write_cost_per_mtok", "cache_creation_input_token_cost"),
)


def _get(obj: Any, key: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj.get(key)
    return getattr(obj, key, None)


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) else 0


def usage_from_provider(raw: Any) -> Usage:
    """Our :class:`Usage` from a litellm/OpenAI usage object or dict (cost left at 0)."""
    details = _get(raw, "prompt_tokens_details")
    cache_read = _int(_get(raw, "cache_read_input_tokens")) or _int(_get(details, "cached_tokens"))
    cache_write = _int(_get(raw, "cache_creation_input_tokens")) or _int(
        _get(details, "cache_creation_tokens")
    )
    return Usage(
        input_tokens=_int(_get(raw, "prompt_tokens")),
        output_tokens=_int(_get(raw, "completion_tokens")),
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
    )


def _configured(options: ModelOptions) -> dict[str, float]:
    """The cost-map entries the config sets, in dollars per token."""
    out: dict[str, float] = {}
    for field, key in _CONFIG_KEYS:
        value = getattr(options, field)
        if value is not None:
            out[key] = value / _PER_MTOK
    return out


def _bundled_entry(litellm: Any, spec: ModelSpec) -> dict[str, Any]:
    if spec.provider in ("scripted", "openai_compatible"):
        return {}
    for name in (spec.litellm_model, spec.model):
        info = litellm.model_cost.get(name)
        if isinstance(info, dict):
            return dict(info)
    return {}


def _registered_model(litellm: Any, spec: ModelSpec, prices: dict[str, float]) -> str:
    """Register ``spec``'s bundled entry with the config's ``prices`` on top; returns its key."""
    entry = _bundled_entry(litellm, spec)
    for key in prices:  # a configured price replaces the bundled one and its tiers
        entry = {k: v for k, v in entry.items() if not k.startswith(key)}
    entry.update(prices)
    if "input_cost_per_token" in prices:
        for key in ("cache_read_input_token_cost", "cache_creation_input_token_cost"):
            entry.setdefault(key, prices["input_cost_per_token"])
    entry.setdefault("litellm_provider", _pricing_provider(spec))
    entry.setdefault("mode", "chat")
    digest = hashlib.sha256(json.dumps(entry, sort_keys=True, default=str).encode()).hexdigest()[:12]
    name = f"{_REGISTERED_PREFIX}-{digest}/{spec.model}"
    if name not in litellm.model_cost:
        litellm.register_model({name: entry})
    return name


def _pricing_provider(spec: ModelSpec) -> str:
    return "openai" if spec.provider in ("scripted", "openai_compatible") else spec.provider


def _litellm_usage(litellm: Any, usage: Usage) -> Any:
    from litellm.types.utils import PromptTokensDetailsWrapper

    return litellm.Usage(
        prompt_tokens=usage.input_tokens,
        completion_tokens=usage.output_tokens,
        total_tokens=usage.total_tokens,
        prompt_tokens_details=PromptTokensDetailsWrapper(cached_tokens=usage.cache_read_tokens),
        cache_read_input_tokens=usage.cache_read_tokens,
        cache_creation_input_tokens=usage.cache_write_tokens,
    )


def cost_usd(usage: Usage, spec: ModelSpec, options: ModelOptions, raw: Any = None) -> float:
    """Dollars for ``usage`` of ``spec`` by litellm's cost functions (config prices registered first).

    ``raw`` is the provider's usage object when there is one: litellm reads details from it that
    :class:`Usage` does not keep (Anthropic's 5-minute and 1-hour cache writes)."""
    prices = _configured(options)
    if not prices and spec.provider in ("scripted", "openai_compatible"):
        return 0.0
    from loopcraft.models.litellm_loader import load_litellm

    litellm = load_litellm()
    model = _registered_model(litellm, spec, prices) if prices else spec.model
    usage_object = raw if isinstance(raw, litellm.Usage) else _litellm_usage(litellm, usage)
    try:
        prompt, completion = litellm.cost_per_token(
            model=model, custom_llm_provider=_pricing_provider(spec), usage_object=usage_object
        )
    except Exception:  # litellm has no price for this model: unknown cost is no cost
        return 0.0
    return float(prompt) + float(completion)


def priced(usage: Usage, spec: ModelSpec, options: ModelOptions, raw: Any = None) -> Usage:
    """``usage`` with its dollar cost filled in."""
    usage.cost_usd = cost_usd(usage, spec, options, raw)
    return usage
