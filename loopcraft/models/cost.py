"""Usage and dollars: normalize a provider's usage block and price it.

Prices come from litellm's bundled cost map, overridden or filled in by the per-model
``ModelOptions`` prices (dollars per million tokens). ``input_tokens`` counts every
prompt token, cached ones included; cache reads and writes are priced at their own
rates and the rest at the input rate. Scripted models cost nothing unless priced.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from loopcraft.config import ModelOptions
from loopcraft.models.spec import ModelSpec
from loopcraft.models.types import Usage

_PER_MTOK = 1_000_000


@dataclass(frozen=True)
class Prices:
    """Dollars per token."""

    input: float = 0.0
    output: float = 0.0
    cache_read: float | None = None  # None: same as input
    cache_write: float | None = None  # None: same as input


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


def _bundled_prices(spec: ModelSpec) -> dict[str, Any]:
    if spec.provider in ("scripted", "openai_compatible"):
        return {}
    from loopcraft.models.litellm_loader import load_litellm

    litellm = load_litellm()
    for name in (spec.litellm_model, spec.model):
        info = litellm.model_cost.get(name)
        if isinstance(info, dict):
            return info
    return {}


def prices_for(spec: ModelSpec, options: ModelOptions) -> Prices:
    """Per-token prices for ``spec``: config prices first, then litellm's cost map, else 0."""
    bundled = _bundled_prices(spec)

    def pick(configured: float | None, key: str) -> float | None:
        if configured is not None:
            return configured / _PER_MTOK
        value = bundled.get(key)
        return float(value) if isinstance(value, int | float) else None

    return Prices(
        input=pick(options.input_cost_per_mtok, "input_cost_per_token") or 0.0,
        output=pick(options.output_cost_per_mtok, "output_cost_per_token") or 0.0,
        cache_read=pick(options.cache_read_cost_per_mtok, "cache_read_input_token_cost"),
        cache_write=pick(options.cache_write_cost_per_mtok, "cache_creation_input_token_cost"),
    )


def cost_usd(usage: Usage, prices: Prices) -> float:
    """Dollars for ``usage`` at ``prices``."""
    uncached = max(0, usage.input_tokens - usage.cache_read_tokens - usage.cache_write_tokens)
    read_price = prices.input if prices.cache_read is None else prices.cache_read
    write_price = prices.input if prices.cache_write is None else prices.cache_write
    return (
        uncached * prices.input
        + usage.cache_read_tokens * read_price
        + usage.cache_write_tokens * write_price
        + usage.output_tokens * prices.output
    )


def priced(usage: Usage, spec: ModelSpec, options: ModelOptions) -> Usage:
    """``usage`` with its dollar cost filled in."""
    usage.cost_usd = cost_usd(usage, prices_for(spec, options))
    return usage
