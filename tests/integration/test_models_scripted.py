"""The scripted model through the real litellm path: text, tools, streaming order,
structured output, faults with retries and fallbacks, the call log, bad scripts."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from loopcraft.config import Config, ModelOptions, RetryConfig
from loopcraft.errors import ModelSpecError, ScriptError
from loopcraft.models.errors import ModelCallError
from loopcraft.models.litellm_client import LiteLLMClient
from loopcraft.models.scripted import (
    Script,
    read_call_log,
    register_script,
    reset_fault_counters,
    unregister_script,
)
from loopcraft.models.types import CompletionRequest, Delta
from tests.integration.models_support import cancel_mid_stream

FAST = RetryConfig(max_retries=2, base_delay=0.01, max_delay=1.0)


@pytest.fixture
def scripts():
    """Register scripts by name for one test; fault counters start fresh."""
    names: list[str] = []
    reset_fault_counters()

    def add(name: str, data: dict) -> str:
        register_script(name, Script.model_validate(data))
        names.append(name)
        return f"scripted/{name}"

    yield add
    for name in names:
        unregister_script(name)
    reset_fault_counters()


def _client(tmp_path: Path, **config: object) -> LiteLLMClient:
    return LiteLLMClient(Config(retry=FAST, **config), root=tmp_path)  # type: ignore[arg-type]


def _request(model: str, stage: str = "chat", history: int = 0, **kw: object) -> CompletionRequest:
    messages: list[dict] = [{"role": "user", "content": "go"}]
    for _ in range(history):
        messages += [{"role": "assistant", "content": "earlier"}, {"role": "user", "content": "more"}]
    return CompletionRequest(model=model, messages=messages, stage=stage, **kw)  # type: ignore[arg-type]


async def test_text_streams_in_order(scripts, tmp_path: Path) -> None:
    model = scripts("t1", {"chunk_size": 3, "default": [{"text": "Hello, scripted world!"}]})
    deltas: list[Delta] = []
    result = await _client(tmp_path).complete(_request(model), on_delta=deltas.append)
    assert result.text == "Hello, scripted world!"
    assert [d.text for d in deltas] == ["Hel", "lo,", " sc", "rip", "ted", " wo", "rld", "!"]
    assert result.finish_reason == "stop" and result.model == model
    assert [a.ok for a in result.attempts] == [True]


async def test_tool_calls_and_async_delta_callback(scripts, tmp_path: Path) -> None:
    model = scripts(
        "t2",
        {
            "chunk_size": 5,
            "default": [
                {
                    "text": "Reading.",
                    "tool_calls": [
                        {"name": "read", "arguments": {"path": "README.md"}},
                        {"name": "bash", "arguments": '{"command": "ls"}', "id": "fixed"},
                    ],
                }
            ],
        },
    )
    seen: list[Delta] = []

    async def on_delta(delta: Delta) -> None:
        await asyncio.sleep(0)
        seen.append(delta)

    result = await _client(tmp_path).complete(_request(model), on_delta=on_delta)
    assert [(c.name, c.parsed()) for c in result.tool_calls] == [
        ("read", {"path": "README.md"}),
        ("bash", {"command": "ls"}),
    ]
    assert result.tool_calls[1].id == "fixed" and result.tool_calls[0].id
    assert result.finish_reason == "tool_calls"
    kinds = [d.kind for d in seen]
    assert kinds.index("tool_call") > max(i for i, k in enumerate(kinds) if k == "text")
    first_tool = [d for d in seen if d.kind == "tool_call" and d.tool_index == 1]
    assert first_tool[0].tool_name == "bash"
    assert "".join(d.text for d in first_tool) == '{"command": "ls"}'
    assert result.assistant_message()["tool_calls"][0]["function"]["name"] == "read"


async def test_turns_follow_stage_and_history(scripts, tmp_path: Path) -> None:
    model = scripts(
        "t3",
        {
            "stages": {"scout*": [{"text": "first"}, {"text": "second"}], "review-*": [{"text": "rev"}]},
            "default": [{"text": "default"}],
        },
    )
    client = _client(tmp_path)
    assert (await client.complete(_request(model, "scout-a"))).text == "first"
    assert (await client.complete(_request(model, "scout-a", history=1))).text == "second"
    assert "no more scripted answers" in (await client.complete(_request(model, "scout-a", history=2))).text
    assert (await client.complete(_request(model, "review-x"))).text == "rev"
    assert (await client.complete(_request(model, "synthesis"))).text == "default"


async def test_structured_output_and_usage(scripts, tmp_path: Path) -> None:
    model = scripts(
        "t4",
        {
            "default": [
                {
                    "json": {"verdict": "approve", "issues": []},
                    "usage": {"input": 1200, "output": 300, "cache_read": 1000, "cache_write": 100},
                }
            ]
        },
    )
    cfg = {
        "models": {
            model: ModelOptions(
                input_cost_per_mtok=1.0,
                output_cost_per_mtok=2.0,
                cache_read_cost_per_mtok=0.5,
                cache_write_cost_per_mtok=3.0,
            )
        }
    }
    result = await _client(tmp_path, **cfg).complete(_request(model, response_format={"type": "json_object"}))
    assert json.loads(result.text) == {"verdict": "approve", "issues": []}
    usage = result.usage
    assert (usage.input_tokens, usage.output_tokens, usage.cache_read_tokens, usage.cache_write_tokens) == (
        1200,
        300,
        1000,
        100,
    )
    assert usage.cost_usd == pytest.approx((100 * 1 + 1000 * 0.5 + 100 * 3 + 300 * 2) / 1e6)
    assert result.attempts[0].usage.cost_usd == usage.cost_usd


async def test_default_usage_and_free_when_unpriced(scripts, tmp_path: Path) -> None:
    model = scripts("t5", {"default": [{"text": "x" * 40}]})
    result = await _client(tmp_path).complete(
        CompletionRequest(model=model, messages=[{"role": "user", "content": "y" * 80}])
    )
    assert (result.usage.input_tokens, result.usage.output_tokens, result.usage.cost_usd) == (20, 10, 0.0)


async def test_malformed_tool_args_and_invalid_json(scripts, tmp_path: Path) -> None:
    model = scripts(
        "t6",
        {
            "default": [
                {"tool_calls": [{"name": "read", "arguments": {"path": "a"}}], "malformed_tool_args": True}
            ],
            "stages": {"j": [{"json": {"a": 1}, "invalid_json": True}]},
        },
    )
    client = _client(tmp_path)
    call = (await client.complete(_request(model))).tool_calls[0]
    with pytest.raises(ValueError):
        call.parsed()
    with pytest.raises(json.JSONDecodeError):
        json.loads((await client.complete(_request(model, "j"))).text)


async def test_rate_limit_fault_waits_retry_after_then_succeeds(scripts, tmp_path: Path) -> None:
    model = scripts(
        "t7", {"default": [{"faults": [{"kind": "rate_limit", "retry_after": 0.3}], "text": "ok"}]}
    )
    loop = asyncio.get_running_loop()
    started = loop.time()
    result = await _client(tmp_path).complete(_request(model))
    assert loop.time() - started >= 0.3
    assert result.text == "ok"
    assert [(a.ok, a.error_class) for a in result.attempts] == [(False, "rate_limit"), (True, None)]


async def test_faults_exhaust_retries_then_fallback(scripts, tmp_path: Path) -> None:
    failing = scripts("t8", {"default": [{"faults": [{"kind": "server_error"}] * 5, "text": "never"}]})
    backup = scripts("t8b", {"default": [{"text": "backup answered"}]})
    result = await _client(tmp_path).complete(_request(failing, fallback_models=[backup]))
    assert result.text == "backup answered" and result.model == backup
    assert [(a.model, a.error_class) for a in result.attempts] == [(failing, "server")] * 3 + [(backup, None)]


async def test_auth_fault_skips_retries_and_refusal_stops_chain(scripts, tmp_path: Path) -> None:
    auth = scripts("t9", {"default": [{"faults": [{"kind": "auth"}], "text": "x"}]})
    refusing = scripts("t9r", {"default": [{"faults": [{"kind": "refusal"}], "text": "x"}]})
    backup = scripts("t9b", {"default": [{"text": "fine"}]})
    client = _client(tmp_path)
    result = await client.complete(_request(auth, fallback_models=[backup]))
    assert [(a.model, a.error_class) for a in result.attempts] == [(auth, "auth"), (backup, None)]
    with pytest.raises(ModelCallError) as err:
        await client.complete(_request(refusing, fallback_models=[backup]))
    assert err.value.error_class == "content_refusal" and len(err.value.attempts) == 1


async def test_all_failing_raises_one_line_model_call_error(scripts, tmp_path: Path) -> None:
    a = scripts("t10a", {"default": [{"faults": [{"kind": "not_found"}], "text": "x"}]})
    b = scripts("t10b", {"default": [{"faults": [{"kind": "context_overflow"}], "text": "x"}]})
    with pytest.raises(ModelCallError) as err:
        await _client(tmp_path).complete(_request(a, fallback_models=[b]))
    message = str(err.value)
    assert (
        message.startswith(f"all models failed: {a}: not_found (") and f"; {b}: context_overflow (" in message
    )
    assert "\n" not in message and err.value.exit_code != 0


async def test_pinned_model_ignores_chain(scripts, tmp_path: Path) -> None:
    main = scripts("t11", {"default": [{"text": "main"}]})
    pinned = scripts("t11p", {"default": [{"faults": [{"kind": "auth"}], "text": "x"}]})
    with pytest.raises(ModelCallError) as err:
        await _client(tmp_path).complete(_request(main, fallback_models=[main], pinned_model=pinned))
    assert [a.model for a in err.value.attempts] == [pinned]


async def test_call_log_records_each_call_and_fault(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reset_fault_counters()
    script = tmp_path / "s.yaml"
    script.write_text(
        "call_log: calls.jsonl\nstages:\n  plan:\n    - faults: [{kind: timeout}]\n      text: p\n"
    )
    monkeypatch.setenv("LOOPCRAFT_SCRIPT", str(script))
    await _client(tmp_path).complete(_request("scripted/logged", "plan"))
    calls = read_call_log(tmp_path / "calls.jsonl")
    assert [(c["model"], c["stage"], c["turn"], c["attempt"], c["fault"]) for c in calls] == [
        ("scripted/logged", "plan", 0, 0, "timeout"),
        ("scripted/logged", "plan", 0, 1, None),
    ]
    assert calls[0]["pid"] > 0
    env_log = tmp_path / "env.jsonl"
    monkeypatch.setenv("LOOPCRAFT_SCRIPTED_CALL_LOG", str(env_log))
    await _client(tmp_path).complete(_request("scripted/logged", "other"))
    assert len(read_call_log(env_log)) == 1


async def test_script_from_repo_dir_and_config(tmp_path: Path) -> None:
    repo_script = tmp_path / ".loopcraft" / "scripts" / "mine.json"
    repo_script.parent.mkdir(parents=True)
    repo_script.write_text('{"default": [{"text": "from repo"}]}')
    assert (await _client(tmp_path).complete(_request("scripted/mine"))).text == "from repo"
    (tmp_path / "conf.yaml").write_text("default: [{text: from config}]")
    cfg = {"models": {"scripted/mine": ModelOptions(script="conf.yaml")}}
    assert (await _client(tmp_path, **cfg).complete(_request("scripted/mine:high"))).text == "from config"


async def test_builtin_demo_answers_without_setup(tmp_path: Path) -> None:
    result = await _client(tmp_path).complete(_request("scripted/demo", "scout"))
    assert result.tool_calls and result.tool_calls[0].name == "ls"


async def test_missing_and_malformed_scripts_raise_script_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = _client(tmp_path)
    with pytest.raises(ScriptError, match="no script for scripted/ghost"):
        await client.complete(_request("scripted/ghost", fallback_models=["scripted/demo"]))
    monkeypatch.setenv("LOOPCRAFT_SCRIPT", str(tmp_path / "missing.yaml"))
    with pytest.raises(ScriptError, match=r"missing\.yaml: file not found"):
        await client.complete(_request("scripted/x"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("default: [{text: 1, tool_calls: nope}]")
    monkeypatch.setenv("LOOPCRAFT_SCRIPT", str(bad))
    with pytest.raises(ScriptError) as err:
        await client.complete(_request("scripted/x"))
    assert str(err.value).startswith(f"script error: {bad}: default.0.") and "\n" not in str(err.value)


async def test_invalid_model_strings_raise_before_any_call(tmp_path: Path) -> None:
    client = _client(tmp_path)
    with pytest.raises(ModelSpecError, match="invalid model string"):
        await client.complete(_request("no-slash"))
    with pytest.raises(ModelSpecError, match="unknown provider 'madeup'"):
        await client.complete(_request("scripted/demo", fallback_models=["madeup/x"]))


async def test_cancel_mid_stream_stops_promptly(scripts, tmp_path: Path) -> None:
    model = scripts("t12", {"pace": 0.2, "chunk_size": 1, "default": [{"text": "x" * 200}]})
    client = _client(tmp_path)
    got = await cancel_mid_stream(lambda on_delta: client.complete(_request(model), on_delta=on_delta))
    assert len(got) < 200


def test_importing_the_client_does_not_import_litellm() -> None:
    code = (
        "import sys, loopcraft, loopcraft.models.litellm_client, loopcraft.models.scripted, "
        "loopcraft.models.resolve, loopcraft.models.cost, loopcraft.models.errors; "
        "print('litellm' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


async def test_non_streaming_litellm_call_is_served_too(scripts) -> None:
    from loopcraft.models.litellm_loader import load_litellm
    from loopcraft.models.scripted import SCRIPT_KWARG

    model = scripts(
        "t13",
        {
            "default": [
                {
                    "text": "whole",
                    "tool_calls": [{"name": "ls", "arguments": {}}],
                    "usage": {"input": 7, "output": 3},
                }
            ]
        },
    )
    litellm = load_litellm()
    assert load_litellm() is litellm
    assert sum(1 for p in litellm.custom_provider_map if p["provider"] == "scripted") == 1
    response = await litellm.acompletion(
        model=model,
        messages=[{"role": "user", "content": "hi"}],
        metadata={"stage": "chat"},
        **{SCRIPT_KWARG: None},
    )
    message = response.choices[0].message
    assert message.content == "whole" and message.tool_calls[0].function.name == "ls"
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (7, 3)
