"""Model strings: ``provider/model[:effort]`` parsed into a :class:`ModelSpec`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from loopcraft.errors import ModelSpecError

Effort = Literal["off", "minimal", "low", "medium", "high", "max"]
EFFORTS: tuple[str, ...] = ("off", "minimal", "low", "medium", "high", "max")

# Providers litellm knows that loopcraft accepts without extra configuration, plus ours.
KNOWN_PROVIDERS = frozenset(
    {
        "openai",
        "anthropic",
        "gemini",
        "vertex_ai",
        "azure",
        "bedrock",
        "ollama",
        "ollama_chat",
        "openrouter",
        "groq",
        "mistral",
        "deepseek",
        "xai",
        "together_ai",
        "fireworks_ai",
        "cohere",
        "perplexity",
        "huggingface",
        "databricks",
        "cerebras",
        "lm_studio",
        "hosted_vllm",
        "openai_compatible",
        "scripted",
    }
)

_SPEC = re.compile(r"^(?P<provider>[a-z0-9_\-]+)/(?P<model>[^\s:][^\s]*?)(?::(?P<effort>[a-z]+))?$")


@dataclass(frozen=True)
class ModelSpec:
    provider: str
    model: str
    effort: Effort | None = None

    @property
    def litellm_model(self) -> str:
        """The model string litellm receives (``openai_compatible`` maps to ``openai``)."""
        provider = "openai" if self.provider == "openai_compatible" else self.provider
        return f"{provider}/{self.model}"

    @property
    def base(self) -> str:
        """``provider/model`` without the effort."""
        return f"{self.provider}/{self.model}"

    def __str__(self) -> str:
        return f"{self.base}:{self.effort}" if self.effort else self.base


def parse_model(text: str, extra_providers: frozenset[str] = frozenset()) -> ModelSpec:
    """Parse ``provider/model[:effort]``; raises :class:`ModelSpecError` with the fix."""
    text = text.strip()
    match = _SPEC.match(text)
    if not match:
        raise ModelSpecError(
            f"invalid model string {text!r}: expected provider/model[:effort], e.g. openai/gpt-5.5:high"
        )
    provider, model, effort = match["provider"], match["model"], match["effort"]
    if provider not in KNOWN_PROVIDERS and provider not in extra_providers:
        raise ModelSpecError(
            f"unknown provider {provider!r} in model {text!r}: use one of "
            f"{', '.join(sorted(KNOWN_PROVIDERS))}, or openai_compatible/<model> with api_base set under [models] in config.toml"
        )
    if effort is not None and effort not in EFFORTS:
        raise ModelSpecError(f"invalid effort {effort!r} in model {text!r}: use one of {', '.join(EFFORTS)}")
    return ModelSpec(provider, model, effort)  # type: ignore[arg-type]
