"""LiteLLMClient's per-call overhead: litellm's success logging (payload building, cost,
redaction deep copies of every message) must not run, on the scripted path or on the real
HTTP path, while results, usage and the provider stream's own end are unaffected; no litellm
stream (wrapper or chunks) outlives a call."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from loopcraft.config import Config, ModelOptions
from loopcraft.models.litellm_client import LiteLLMClient
from loopcraft.models.litellm_loader import load_litellm
from loopcraft.models.scripted import Script, read_call_log, register_script, unregister_script
from loopcraft.models.types import CompletionRequest, function_tool
from tests.fakes import OpenAIServer, openai_server

__all__ = ["openai_server"]  # the fixture, used by name below

NAME = "overhead-test"
TOOLS = [function_tool("noop", "no-op", {"type": "object", "properties": {}})]


@pytest.fixture
def logged(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of litellm's success/failure logging entry points called during the test."""
    load_litellm()
    from litellm.litellm_core_utils.litellm_logging import Logging

    calls: list[str] = []
    for name in ("async_success_handler", "success_handler", "async_failure_handler"):
        original = getattr(Logging, name)

        def spy(self: Any, *args: Any, _name: str = name, _original: Any = original, **kwargs: Any) -> Any:
            calls.append(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(Logging, name, spy)
    return calls


@pytest.fixture
def scripted(tmp_path: Path) -> Iterator[Path]:
    """``scripted/overhead-test``: a text + tool-call turn with cached tokens; its call log."""
    log = tmp_path / "calls.jsonl"
    turn = {
        "text": "reading it",
        "tool_calls": [{"name": "noop", "arguments": {"n": 1}}],
        "usage": {"input": 900, "output": 40, "cache_read": 600},
    }
    register_script(NAME, Script.model_validate({"call_log": str(log), "default": [turn] * 10}))
    yield log
    unregister_script(NAME)


async def _settle() -> None:
    """Let anything litellm scheduled on the loop run to completion."""
    for _ in range(50):
        await asyncio.sleep(0.002)


def _history(turns: int) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = [{"role": "user", "content": "go"}]
    for i in range(turns):
        call = {"id": f"c{i}", "type": "function", "function": {"name": "noop", "arguments": "{}"}}
        messages += [
            {"role": "assistant", "content": f"step {i}", "tool_calls": [call]},
            {"role": "tool", "tool_call_id": f"c{i}", "content": "ok"},
        ]
    return messages


async def test_scripted_calls_skip_litellm_logging(logged: list[str], scripted: Path) -> None:
    client = LiteLLMClient(Config())
    for turns in (0, 3):
        request = CompletionRequest(
            model=f"scripted/{NAME}", messages=_history(turns), tools=TOOLS, stage="overhead"
        )
        result = await client.complete(request)
        assert result.text == "reading it" and result.finish_reason == "tool_calls"
        assert [(c.name, c.parsed()) for c in result.tool_calls] == [("noop", {"n": 1})]
        usage = result.usage
        assert (usage.input_tokens, usage.output_tokens, usage.cache_read_tokens) == (900, 40, 600)
    await _settle()
    assert logged == []
    # the provider's stream was read to its end (the scripted model logs after its last chunk)
    assert [c["turn"] for c in read_call_log(scripted)] == [0, 3]


async def test_litellm_does_not_price_calls_loopcraft_does(
    scripted: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    litellm = load_litellm()
    priced: list[object] = []
    original = litellm.response_cost_calculator
    monkeypatch.setattr(litellm, "response_cost_calculator", lambda **kw: priced.append(kw) or original(**kw))
    model = f"scripted/{NAME}"
    options = ModelOptions(input_cost_per_mtok=2.0, output_cost_per_mtok=8.0, cache_read_cost_per_mtok=0.5)
    client = LiteLLMClient(Config(models={model: options}))
    result = await client.complete(CompletionRequest(model=model, messages=_history(1), stage="overhead"))
    await _settle()
    assert priced == []
    assert result.usage.cost_usd == pytest.approx((300 * 2.0 + 600 * 0.5 + 40 * 8.0) / 1e6)


async def test_no_litellm_tasks_outlive_the_call(scripted: Path) -> None:
    from litellm.litellm_core_utils.litellm_logging import Logging

    client = LiteLLMClient(Config())
    request = CompletionRequest(model=f"scripted/{NAME}", messages=_history(2), stage="overhead")
    await client.complete(request)
    me = asyncio.current_task()
    pending = [t for t in asyncio.all_tasks() if t is not me and not t.done()]
    names = [getattr(t.get_coro(), "__qualname__", "") for t in pending]
    assert not any(n.startswith(Logging.__name__) for n in names), names


def _live_streams() -> int:
    """litellm stream wrappers and streamed chunks still alive (after a full collection)."""
    from litellm.litellm_core_utils.streaming_handler import CustomStreamWrapper
    from litellm.types.utils import ModelResponseStream

    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, CustomStreamWrapper | ModelResponseStream))


async def test_results_and_the_client_keep_no_litellm_stream(scripted: Path) -> None:
    client = LiteLLMClient(Config())
    request = CompletionRequest(model=f"scripted/{NAME}", messages=_history(2), tools=TOOLS, stage="overhead")
    await client.complete(request)  # litellm imported, its caches warm
    await _settle()
    before = _live_streams()
    results = [await client.complete(request) for _ in range(20)]  # kept: they must hold no chunks
    await _settle()
    assert _live_streams() <= before
    assert all(r.text == "reading it" for r in results)


async def test_http_calls_skip_litellm_logging(
    logged: list[str], openai_server: OpenAIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_OPENAI_KEY", "sk-loopback")
    model = "openai_compatible/test-model"
    options = ModelOptions(
        api_base=openai_server.base_url, api_key_env="FAKE_OPENAI_KEY", input_cost_per_mtok=1.0
    )
    client = LiteLLMClient(Config(models={model: options}), root=tmp_path)
    openai_server.respond(text="first answer", usage={"prompt_tokens": 100, "completion_tokens": 5})
    openai_server.respond(text="second answer", usage={"prompt_tokens": 200, "completion_tokens": 7})
    texts = []
    for _ in range(2):
        result = await client.complete(
            CompletionRequest(model=model, messages=[{"role": "user", "content": "hi"}])
        )
        texts.append((result.text, result.usage.input_tokens, result.usage.output_tokens))
    assert texts == [("first answer", 100, 5), ("second answer", 200, 7)]
    assert result.usage.cost_usd == pytest.approx(200 / 1e6)
    await _settle()
    assert logged == []


async def test_failures_still_reach_the_caller(openai_server: OpenAIServer, tmp_path: Path) -> None:
    """Failure logging is untouched: errors are classified and the call falls back."""
    model = "openai_compatible/test-model"
    client = LiteLLMClient(
        Config(models={model: ModelOptions(api_base=openai_server.base_url)}), root=tmp_path
    )
    openai_server.fail(400, message="bad request")
    request = CompletionRequest(
        model=model, messages=[{"role": "user", "content": "hi"}], fallback_models=[f"scripted/{NAME}"]
    )
    register_script(NAME, Script.model_validate({"default": [{"text": "fallback"}]}))
    try:
        result = await client.complete(request)
    finally:
        unregister_script(NAME)
    assert result.text == "fallback" and result.attempts[0].ok is False
