"""Model strings: ``provider/model[:effort]`` parsed into a :class:`ModelSpec`."""

from __future__ import annotations

import dataclasses
import difflib
import re
from dataclasses import dataclass
from typing import Literal

from loopcraft.errors import ModelSpecError
from loopcraft.models.providers import KNOWN_PROVIDERS

Effort = Literal["off", "minimal", "low", "medium", "high", "max"]
EFFORTS: tuple[str, ...] = ("off", "minimal", "low", "medium", "high", "max")

_SPEC = re.compile(r"^(?P<provider>[a-z0-9_\-]+)/(?P<model>[^\s:][^\s]*)$")


def split_effort(model: str) -> tuple[str, Effort | None]:
    """``model`` without a trailing ``:effort`` and the effort (case-insensitive); any other
    ``:tag`` (``llama3:latest``, ``…:free``, ``…-v1:0``) stays part of the model name."""
    name, sep, tag = model.rpartition(":")
    if sep and name and tag.lower() in EFFORTS:
        return name, tag.lower()  # type: ignore[return-value]
    return model, None


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
    provider = match["provider"]
    model, effort = split_effort(match["model"])
    if provider not in KNOWN_PROVIDERS and provider not in extra_providers:
        close = difflib.get_close_matches(provider, sorted(KNOWN_PROVIDERS), n=3)
        hint = f"did you mean {' or '.join(close)}? " if close else ""
        raise ModelSpecError(
            f"unknown provider {provider!r} in model {text!r}: {hint}use a provider litellm knows "
            "(https://docs.litellm.ai/docs/providers), or openai_compatible/<model> with api_base "
            "set under [models] in config.toml"
        )
    return ModelSpec(provider, model, effort)


def with_effort(spec: ModelSpec, effort: Effort | None) -> ModelSpec:
    """``spec`` with ``effort`` when its string gave none (the model string's own effort wins)."""
    return spec if spec.effort is not None or effort is None else dataclasses.replace(spec, effort=effort)


def model_with_effort(model: str, effort: str | None) -> str:
    """``model`` with a separately given ``effort`` (a stage's ``effort=``), when its own string
    gives none; a word that is not an effort raises :class:`ModelSpecError`."""
    if effort is None:
        return model
    if effort.lower() not in EFFORTS:
        raise ModelSpecError(f"invalid effort {effort!r}: use one of {', '.join(EFFORTS)}")
    return str(with_effort(parse_model(model), effort.lower()))  # type: ignore[arg-type]
