"""Where Ollama is (config api_base > OLLAMA_API_BASE > OLLAMA_HOST > localhost), and the request
going there: litellm itself reads only OLLAMA_API_BASE."""

from __future__ import annotations

import pytest

from loopcraft.config import Config, ModelOptions
from loopcraft.models.environment import OllamaBase, ollama_base
from loopcraft.models.litellm_client import LiteLLMClient
from loopcraft.models.spec import parse_model
from loopcraft.models.types import CompletionRequest


@pytest.mark.parametrize(
    ("environ", "configured", "expected"),
    [
        ({}, None, OllamaBase("http://localhost:11434", "default")),
        ({"OLLAMA_HOST": "gpu.lan"}, None, OllamaBase("http://gpu.lan:11434", "OLLAMA_HOST")),
        ({"OLLAMA_HOST": "0.0.0.0:9000"}, None, OllamaBase("http://127.0.0.1:9000", "OLLAMA_HOST")),
        (
            {"OLLAMA_HOST": "https://ollama.example"},
            None,
            OllamaBase("https://ollama.example:443", "OLLAMA_HOST"),
        ),
        (
            {"OLLAMA_HOST": "a:1", "OLLAMA_API_BASE": "http://b:2/"},
            None,
            OllamaBase("http://b:2", "OLLAMA_API_BASE"),
        ),
        ({"OLLAMA_API_BASE": "http://b:2"}, "http://c:3", OllamaBase("http://c:3", "config api_base")),
    ],
)
def test_ollama_base_precedence(
    environ: dict[str, str], configured: str | None, expected: OllamaBase
) -> None:
    assert ollama_base(environ, configured) == expected


def test_ollama_requests_go_where_ollama_host_says(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", "gpu.lan:8080")
    monkeypatch.delenv("OLLAMA_API_BASE", raising=False)
    request = CompletionRequest(model="ollama/llama3:latest", messages=[{"role": "user", "content": "hi"}])
    client = LiteLLMClient(Config())
    kwargs = client._kwargs(parse_model(request.model), request)
    assert (kwargs["model"], kwargs["api_base"]) == ("ollama/llama3:latest", "http://gpu.lan:8080")
    configured = LiteLLMClient(Config(models={"ollama/llama3:latest": ModelOptions(api_base="http://c:3")}))
    assert configured._kwargs(parse_model(request.model), request)["api_base"] == "http://c:3"
