"""The model seam: the one protocol every caller of a model uses."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from loopcraft.models.types import CompletionRequest, CompletionResult, DeltaCallback

if TYPE_CHECKING:
    from loopcraft.config import Config


class ModelClient(Protocol):
    """Streams one completion (with retries and the fallback chain) and returns it whole."""

    async def complete(
        self, request: CompletionRequest, on_delta: DeltaCallback | None = None
    ) -> CompletionResult: ...


def default_client(config: Config) -> ModelClient:
    """The real client: litellm for every provider, the scripted model included."""
    from loopcraft.models.litellm_client import LiteLLMClient

    return LiteLLMClient(config)
