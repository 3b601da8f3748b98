"""The real :class:`~loopcraft.models.client.ModelClient`: one streamed completion through
litellm, with retries, the fallback chain, usage and cost for every attempt.

Deltas reach ``on_delta`` as they arrive. Each model in ``[model, *fallback_models]`` (or
only ``pinned_model``) is retried on transient errors with backoff, honouring
retry-after; other failures move on to the next model; cancellation and content
refusals end the call at once. A context overflow moves on too, unless the request says
``overflow="raise"``: then the chain stops with :class:`ContextOverflowError` so the caller
can shrink the request (the agent compacts) and call again. litellm is imported on the
first call, not before. The stream is closed as soon as its usage chunk arrives, so litellm's success logging
never runs (loopcraft keeps its own usage and cost; see ``_Stream.complete``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loopcraft.config import Config, ModelOptions
from loopcraft.errors import LoopcraftError
from loopcraft.models.caching import apply_cache_markers
from loopcraft.models.callbacks import deliver
from loopcraft.models.cost import priced, usage_from_provider
from loopcraft.models.environment import OLLAMA_PROVIDERS, ollama_base
from loopcraft.models.errors import (
    ContextOverflowError,
    MissingApiKeyError,
    ModelCallError,
    classify,
    limit_reset,
    loopcraft_cause,
    retry_after,
    short_message,
)
from loopcraft.models.info import context_window
from loopcraft.models.reasoning import (
    ReasoningState,
    fit_window,
    output_limit,
    reasoning_params,
    request_max_tokens,
)
from loopcraft.models.retry import backoff_delay, decide, is_terminal
from loopcraft.models.spec import ModelSpec, parse_model, with_effort
from loopcraft.models.types import (
    Attempt,
    CompletionRequest,
    CompletionResult,
    Delta,
    DeltaCallback,
    ToolCall,
    Usage,
)

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]


@dataclass
class _Stream:
    """What one streamed response added up to."""

    text: list[str] = field(default_factory=list)
    tools: dict[int, dict[str, str]] = field(default_factory=dict)
    finish_reason: str | None = None
    usage: Any = None
    reasoning: ReasoningState = field(default_factory=ReasoningState)

    def complete(self) -> bool:
        """True once both the finish reason and the usage chunk have arrived.

        With ``include_usage`` litellm sends usage on one last chunk, built only after the
        provider stream is exhausted (usage on earlier provider chunks is stripped). Pulling
        the stream once more does nothing for us: litellm rebuilds the whole response and
        schedules its success logging (cost, payload, redaction copies of every message)
        as a background task on our loop. So the caller stops here and closes the stream.
        """
        return self.usage is not None and self.finish_reason is not None

    def tool_calls(self) -> list[ToolCall]:
        return [
            ToolCall(id=t["id"] or f"call_{i}", name=t["name"], arguments=t["arguments"])
            for i, t in sorted(self.tools.items())
        ]


class LiteLLMClient:
    """Streams completions for any litellm provider (``scripted/*`` included)."""

    def __init__(self, config: Config, *, root: Path | None = None, sleep: Sleep = asyncio.sleep) -> None:
        self.config = config
        self.root = root
        self._sleep = sleep

    async def complete(
        self, request: CompletionRequest, on_delta: DeltaCallback | None = None
    ) -> CompletionResult:
        """Run the chain until one model answers; raises :class:`ModelCallError` when none does."""
        chain = [request.pinned_model] if request.pinned_model else [request.model, *request.fallback_models]
        specs = [parse_model(m) for m in dict.fromkeys(chain)]
        attempts: list[Attempt] = []
        for index, spec in enumerate(specs):
            result = await self._try_model(spec, request, on_delta, attempts)
            if result is not None:
                result.attempts = attempts
                return result
            last = attempts[-1].error_class if attempts else None
            if last == "context_overflow" and request.overflow == "raise":
                raise ContextOverflowError(attempts, str(spec), index)
            if is_terminal(last):
                break
        raise ModelCallError(attempts)

    async def _try_model(
        self,
        spec: ModelSpec,
        request: CompletionRequest,
        on_delta: DeltaCallback | None,
        attempts: list[Attempt],
    ) -> CompletionResult | None:
        """Attempts at one model with retries; None when the chain should move on (or stop)."""
        retries = 0
        while True:
            started = time.monotonic()
            try:
                result = await self._attempt(spec, request, on_delta)
            except LoopcraftError:
                raise
            except Exception as exc:
                cause = loopcraft_cause(exc)
                if cause is not None:
                    raise cause from exc
                error_class = classify(exc)
                message = self._scrub(short_message(exc), spec)
                reset = limit_reset(exc) if error_class == "rate_limit" else None
                attempts.append(
                    Attempt(
                        model=str(spec),
                        ok=False,
                        error_class=error_class,
                        error=message,
                        latency_s=time.monotonic() - started,
                        reset_at=time.time() + reset if reset is not None else None,
                    )
                )
                decision = decide(error_class, retries, self.config.retry)
                if decision == "retry" and reset is not None and reset > self.config.retry.max_delay:
                    decision = "next_model"  # resets later than a backoff waits: the caller waits for it
                if decision != "retry":
                    log.warning("model %s failed (%s): %s; %s", spec, error_class, message, decision)
                    return None
                delay = backoff_delay(retries, self.config.retry, retry_after(exc))
                log.warning(
                    "model %s: %s (%s); retry %d in %.1fs", spec, error_class, message, retries + 1, delay
                )
                await self._sleep(delay)
                retries += 1
                continue
            attempts.append(Attempt(model=str(spec), ok=True, usage=result.usage, latency_s=result.latency_s))
            return result

    def context_window(self, model: str) -> int:
        """``model``'s input window: the config's ``context_window``, else litellm's model info."""
        return context_window(model, self.config.model_options(model).context_window)

    def _options(self, spec: ModelSpec) -> ModelOptions:
        return self.config.model_options(str(spec))

    def _api_key(self, spec: ModelSpec) -> str | None:
        env = self._options(spec).api_key_env
        if env:
            key = os.environ.get(env)
            if not key:
                raise MissingApiKeyError(
                    f"environment variable {env} (api_key_env of {spec.base}) is not set"
                )
            return key
        return "not-needed" if spec.provider == "openai_compatible" else None

    def _scrub(self, text: str, spec: ModelSpec) -> str:
        env = self._options(spec).api_key_env
        key = os.environ.get(env) if env else None
        return text.replace(key, "***") if key else text

    def _kwargs(self, spec: ModelSpec, request: CompletionRequest) -> dict[str, Any]:
        options = self._options(spec)
        kwargs: dict[str, Any] = {
            "model": spec.litellm_model,
            "messages": apply_cache_markers(request.messages, spec.provider),
            "stream": True,
            "stream_options": {"include_usage": True},
            "num_retries": 0,
            "max_retries": 0,
            "timeout": self.config.retry.request_timeout,
            "metadata": {"stage": request.stage},
            # loopcraft runs MCP itself: litellm's MCP gateway check imports the MCP server stack
            # (~0.7 s on the first call) and scans the tools on every call.
            "_skip_mcp_handler": True,
        }
        cap = output_limit(spec, options.max_output_tokens)
        # Sized only when there is a cap to fit: serialising the history costs more per call than litellm.
        fitted = (
            fit_window(cap, spec, input_chars(request.messages), options.context_window)
            if cap is not None
            else None
        )
        limit = (
            min(request.max_tokens, fitted) if request.max_tokens and fitted else request.max_tokens or fitted
        )
        reasoning = reasoning_params(with_effort(spec, options.effort), limit)
        kwargs.update(reasoning)
        if request.tools:
            kwargs["tools"] = request.tools
        if request.response_format is not None:
            kwargs["response_format"] = request.response_format
        max_tokens = request_max_tokens(spec, limit, reasoning)
        if max_tokens:
            kwargs["max_tokens"] = max_tokens
        if spec.provider == "openai" and _bridges_to_responses(spec, kwargs, options.api_base):
            # Responses API: nothing stored server-side; reasoning comes back encrypted, for the next turn.
            kwargs["extra_body"] = {"store": False, "include": ["reasoning.encrypted_content"]}
        if request.temperature is not None:
            kwargs["temperature"] = request.temperature
        if options.api_base:
            kwargs["api_base"] = options.api_base
        elif (
            spec.provider in OLLAMA_PROVIDERS
        ):  # litellm reads OLLAMA_API_BASE only; Ollama's own is OLLAMA_HOST
            kwargs["api_base"] = ollama_base(os.environ).url
        api_key = self._api_key(spec)
        if api_key:
            kwargs["api_key"] = api_key
        if spec.provider == "scripted":
            from loopcraft.models.scripted import SCRIPT_KWARG, script_path_for

            path = script_path_for(spec.model, self.config, self.root)
            kwargs[SCRIPT_KWARG] = str(path) if path else None
        return kwargs

    async def _attempt(
        self, spec: ModelSpec, request: CompletionRequest, on_delta: DeltaCallback | None
    ) -> CompletionResult:
        """One streamed call to one model."""
        kwargs = self._kwargs(spec, request)
        if spec.provider == "scripted":
            from loopcraft.models.scripted import SCRIPT_KWARG, load_script

            if kwargs[SCRIPT_KWARG]:
                load_script(Path(kwargs[SCRIPT_KWARG]))  # a bad script is the caller's error, not retried
        from loopcraft.models.litellm_loader import load_litellm_async

        litellm = await load_litellm_async()
        started = time.monotonic()
        response = await litellm.acompletion(**kwargs)
        collected = _Stream()
        try:
            async for chunk in response:
                await _absorb(chunk, collected, on_delta)
                if collected.complete():
                    break  # see _Stream.complete: reading on only runs litellm's logging
        finally:
            close = getattr(response, "aclose", None)
            if close is not None:
                await close()
        usage = usage_from_provider(collected.usage) if collected.usage is not None else Usage()
        return CompletionResult(
            text="".join(collected.text),
            tool_calls=collected.tool_calls(),
            finish_reason=collected.finish_reason or ("tool_calls" if collected.tools else "stop"),
            usage=priced(usage, spec, self._options(spec), collected.usage),
            model=str(spec),
            latency_s=time.monotonic() - started,
            reasoning=collected.reasoning.fields(),
        )


def input_chars(messages: list[dict[str, Any]]) -> int:
    """The characters of ``messages`` as JSON, each message on its own (one ``json.dumps`` of the
    list, less its brackets and the ``", "`` between messages: many times faster than one per message)."""
    if not messages:
        return 0
    return len(json.dumps(messages, ensure_ascii=False)) - 2 * len(messages)


def _bridges_to_responses(spec: ModelSpec, kwargs: dict[str, Any], api_base: str | None) -> bool:
    """True when litellm sends this chat request to OpenAI's ``/v1/responses`` (gpt-5.x with tools and
    reasoning), asked of litellm's own routing check so the two never disagree."""
    from litellm.main import responses_api_bridge_check

    try:
        info, _ = responses_api_bridge_check(
            model=spec.model,
            custom_llm_provider="openai",
            tools=kwargs.get("tools"),
            reasoning_effort=kwargs.get("reasoning_effort"),
            api_base=api_base,
        )
    except Exception:
        return False
    return info.get("mode") == "responses"


async def _absorb(chunk: Any, into: _Stream, on_delta: DeltaCallback | None) -> None:
    """Fold one streamed chunk into ``into`` and pass its pieces to ``on_delta``."""
    usage = getattr(chunk, "usage", None)
    if usage is not None:
        into.usage = usage
    for choice in getattr(chunk, "choices", None) or []:
        if getattr(choice, "finish_reason", None):
            into.finish_reason = choice.finish_reason
        delta = getattr(choice, "delta", None)
        if delta is None:
            continue
        thinking = getattr(delta, "thinking_blocks", None)
        if thinking:
            into.reasoning.add_thinking(list(thinking))
        items = getattr(delta, "reasoning_items", None)
        if items:
            into.reasoning.add_items(list(items))
        text = getattr(delta, "content", None)
        if text:
            into.text.append(text)
            await deliver(on_delta, Delta(kind="text", text=text))
        for part in getattr(delta, "tool_calls", None) or []:
            index = getattr(part, "index", None) or 0
            function = getattr(part, "function", None)
            name = getattr(function, "name", None)
            arguments = getattr(function, "arguments", None) or ""
            entry = into.tools.setdefault(index, {"id": "", "name": "", "arguments": ""})
            if getattr(part, "id", None):
                entry["id"] = part.id
            if name:
                entry["name"] = name
            entry["arguments"] += arguments
            if name or arguments:
                await deliver(
                    on_delta,
                    Delta(kind="tool_call", text=arguments, tool_index=index, tool_name=name or None),
                )
