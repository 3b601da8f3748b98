"""The real litellm HTTP path against the loopback OpenAI-compatible server: streaming,
tool calls, usage and cost, retry-after, fallbacks, auth errors, cancellation."""

from __future__ import annotations

from pathlib import Path

import pytest

from loopcraft.config import Config, ModelOptions, RetryConfig
from loopcraft.models.errors import ModelCallError
from loopcraft.models.litellm_client import LiteLLMClient
from loopcraft.models.types import CompletionRequest, Delta, function_tool
from tests.fakes import OpenAIServer, openai_server
from tests.integration.models_support import cancel_mid_stream

__all__ = ["openai_server"]  # the fixture, used by name below

MODEL = "openai_compatible/test-model"
KEY = "sk-loopback-secret"
TOOLS = [function_tool("read", "read a file", {"type": "object", "properties": {"path": {"type": "string"}}})]


@pytest.fixture(autouse=True)
def _fake_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_OPENAI_KEY", KEY)


def _client(server: OpenAIServer, tmp_path: Path, max_retries: int = 2) -> LiteLLMClient:
    options = ModelOptions(
        api_base=server.base_url,
        api_key_env="FAKE_OPENAI_KEY",
        input_cost_per_mtok=2.0,
        output_cost_per_mtok=8.0,
        cache_read_cost_per_mtok=0.5,
    )
    config = Config(
        models={MODEL: options}, retry=RetryConfig(max_retries=max_retries, base_delay=0.01, max_delay=5.0)
    )
    return LiteLLMClient(config, root=tmp_path)


def _request(**kw: object) -> CompletionRequest:
    return CompletionRequest(model=MODEL, messages=[{"role": "user", "content": "hello"}], **kw)  # type: ignore[arg-type]


async def test_streams_text_in_order(openai_server: OpenAIServer, tmp_path: Path) -> None:
    openai_server.respond(text="The quick brown fox jumps over the lazy dog.")
    deltas: list[Delta] = []
    result = await _client(openai_server, tmp_path).complete(_request(), on_delta=deltas.append)
    assert result.text == "The quick brown fox jumps over the lazy dog."
    assert len(deltas) >= 5 and "".join(d.text for d in deltas) == result.text
    assert result.finish_reason == "stop" and result.model == MODEL
    sent = openai_server.requests[0]
    assert sent["model"] == "test-model" and sent["stream"] is True
    assert openai_server.headers[0]["authorization"] == f"Bearer {KEY}"


async def test_tool_calls_usage_and_cost(openai_server: OpenAIServer, tmp_path: Path) -> None:
    openai_server.respond(
        text="Let me read it.",
        tool_calls=[{"name": "read", "arguments": {"path": "src/app.py"}, "id": "call_abc"}],
        usage={"prompt_tokens": 1000, "completion_tokens": 50, "cached_tokens": 600},
    )
    deltas: list[Delta] = []
    result = await _client(openai_server, tmp_path).complete(_request(tools=TOOLS), on_delta=deltas.append)
    assert [(c.id, c.name, c.parsed()) for c in result.tool_calls] == [
        ("call_abc", "read", {"path": "src/app.py"})
    ]
    assert result.finish_reason == "tool_calls"
    assert any(d.kind == "tool_call" and d.tool_name == "read" for d in deltas)
    assert openai_server.requests[0]["tools"][0]["function"]["name"] == "read"
    usage = result.usage
    assert (usage.input_tokens, usage.output_tokens, usage.cache_read_tokens) == (1000, 50, 600)
    assert usage.cost_usd == pytest.approx((400 * 2.0 + 600 * 0.5 + 50 * 8.0) / 1e6)


async def test_429_waits_retry_after_then_succeeds(openai_server: OpenAIServer, tmp_path: Path) -> None:
    openai_server.fail(429, retry_after=0.5).respond(text="after the wait")
    result = await _client(openai_server, tmp_path).complete(_request())
    assert result.text == "after the wait"
    assert openai_server.times[1] - openai_server.times[0] >= 0.5
    assert [(a.ok, a.error_class) for a in result.attempts] == [(False, "rate_limit"), (True, None)]
    assert result.attempts[0].error and "429" in result.attempts[0].error


async def test_repeated_500s_then_fallback_model(openai_server: OpenAIServer, tmp_path: Path) -> None:
    openai_server.fail(500, times=3).respond(text="from the fallback")
    backup = "openai/gpt-4o-mini"
    client = _client(openai_server, tmp_path)
    client.config.models[backup] = ModelOptions(
        api_base=openai_server.base_url, api_key_env="FAKE_OPENAI_KEY"
    )
    result = await client.complete(_request(fallback_models=[backup]))
    assert result.text == "from the fallback" and result.model == backup
    assert [(a.model, a.error_class) for a in result.attempts] == [(MODEL, "server")] * 3 + [(backup, None)]
    assert openai_server.requests[-1]["model"] == "gpt-4o-mini"
    assert result.usage.cost_usd > 0  # priced from litellm's bundled cost map


async def test_401_is_not_retried_and_falls_back(openai_server: OpenAIServer, tmp_path: Path) -> None:
    openai_server.fail(401, message=f"Incorrect API key provided: {KEY}")
    result = await _client(openai_server, tmp_path).complete(_request(fallback_models=["scripted/demo"]))
    assert result.model == "scripted/demo"
    assert len(openai_server.requests) == 1
    assert result.attempts[0].error_class == "auth"
    assert KEY not in (result.attempts[0].error or "")


async def test_all_failing_raises_with_every_attempt(openai_server: OpenAIServer, tmp_path: Path) -> None:
    openai_server.fail(503, times=2)
    with pytest.raises(ModelCallError) as err:
        await _client(openai_server, tmp_path, max_retries=1).complete(_request())
    assert err.value.error_class == "server" and len(err.value.attempts) == 2
    assert str(err.value).startswith(f"all models failed: {MODEL}: server (503")


async def test_missing_key_env_is_auth_failure(
    openai_server: OpenAIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FAKE_OPENAI_KEY")
    with pytest.raises(ModelCallError) as err:
        await _client(openai_server, tmp_path).complete(_request())
    assert err.value.error_class == "auth" and "FAKE_OPENAI_KEY" in str(err.value)
    assert openai_server.requests == []


async def test_non_streaming_server_reply_also_works(openai_server: OpenAIServer) -> None:
    import httpx

    openai_server.respond(text="whole", tool_calls=[{"name": "read", "arguments": {"path": "x"}}])
    async with httpx.AsyncClient() as http:
        reply = await http.post(
            f"{openai_server.base_url}/chat/completions", json={"model": "m", "messages": []}
        )
    body = reply.json()
    assert body["choices"][0]["message"]["content"] == "whole"
    assert body["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "read"


async def test_cancel_mid_stream_stops_within_a_second(openai_server: OpenAIServer, tmp_path: Path) -> None:
    openai_server.slow(0.2).respond(text="z" * 400)
    client = _client(openai_server, tmp_path)
    await cancel_mid_stream(lambda on_delta: client.complete(_request(), on_delta=on_delta))
    assert len(openai_server.requests) == 1  # never retried


async def test_options_are_forwarded(openai_server: OpenAIServer, tmp_path: Path) -> None:
    client = _client(openai_server, tmp_path)
    client.config.models[MODEL].max_output_tokens = 77
    await client.complete(_request(temperature=0.25, response_format={"type": "json_object"}))
    sent = openai_server.requests[0]
    assert sent.get("max_tokens", sent.get("max_completion_tokens")) == 77
    assert sent["temperature"] == 0.25 and sent["response_format"] == {"type": "json_object"}
    assert sent["messages"] == [{"role": "user", "content": "hello"}]
