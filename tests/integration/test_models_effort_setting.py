"""Effort as its own setting: ``effort = "high"`` in a ``[models."X"]`` entry reaches the request
(through litellm to the loopback server); the model string's own ``:effort`` wins over it."""

from __future__ import annotations

from pathlib import Path

import pytest

from loopcraft.config import Config, ModelOptions
from loopcraft.models.litellm_client import LiteLLMClient
from loopcraft.models.types import CompletionRequest
from tests.fakes import OpenAIServer, openai_server

__all__ = ["openai_server"]  # the fixture, used by name below

MODEL = "openai_compatible/test-model"


@pytest.mark.parametrize(("model", "sent"), [(MODEL, "high"), (f"{MODEL}:LOW", "low")])
async def test_effort_from_the_models_entry(
    openai_server: OpenAIServer, tmp_path: Path, model: str, sent: str
) -> None:
    openai_server.respond(text="ok")
    options = ModelOptions.model_validate({"api_base": openai_server.base_url, "effort": "HIGH"})
    client = LiteLLMClient(Config(models={MODEL: options}), root=tmp_path)
    result = await client.complete(
        CompletionRequest(model=model, messages=[{"role": "user", "content": "hi"}])
    )
    assert result.text == "ok"
    assert openai_server.requests[0].get("reasoning_effort") == sent


def test_a_bad_effort_setting_is_refused() -> None:
    with pytest.raises(ValueError, match="effort"):
        ModelOptions.model_validate({"effort": "huge"})
