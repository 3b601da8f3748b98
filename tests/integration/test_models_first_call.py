"""litellm's first call: the MCP gateway check is skipped (loopcraft runs MCP itself, and the check
imports the whole MCP server stack), what litellm loads lazily on a first call can be loaded
beforehand by ``warm_litellm`` (every module it names exists in the installed litellm), and
the request size the client estimates is unchanged. Fresh interpreter: the test process may
already hold these modules."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from loopcraft.models.litellm_client import input_chars
from tests.cli_process import run_python

PROBE = r"""
import asyncio, json, sys
from loopcraft.config import Config
from loopcraft.models.litellm_client import LiteLLMClient
from loopcraft.models.litellm_loader import _FIRST_CALL_MODULES, load_litellm, warm_litellm
from loopcraft.models.scripted import Script, register_script
from loopcraft.models.types import CompletionRequest, function_tool

litellm = load_litellm()
warm_litellm(litellm)
out = {"warmed": [name for name in _FIRST_CALL_MODULES if name not in sys.modules]}
register_script("first-call", Script.model_validate({"pace": 0, "default": [
    {"text": "ok", "tool_calls": [{"name": "noop", "arguments": {}}], "usage": {"input": 10, "output": 2}}]}))
request = CompletionRequest(model="scripted/first-call", messages=[{"role": "user", "content": "go"}],
                            tools=[function_tool("noop", "no-op", {"type": "object", "properties": {}})])
result = asyncio.run(LiteLLMClient(Config()).complete(request))
out["tool"] = result.tool_calls[0].name
out["usage"] = [result.usage.input_tokens, result.usage.output_tokens]
out["mcp_gateway"] = "litellm.responses.mcp.litellm_proxy_mcp_handler" in sys.modules
out["switches"] = [litellm.disable_streaming_logging, litellm.disable_end_user_cost_tracking]
print(json.dumps(out))
"""


def test_first_call_skips_the_mcp_gateway_and_warming_loads_what_it_names(tmp_path: Path) -> None:
    done = run_python(PROBE, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["warmed"] == []  # each module warm_litellm names was imported
    assert out["tool"] == "noop"
    assert out["usage"] == [10, 2]  # usage (hence cost) still comes from the stream
    assert out["mcp_gateway"] is False
    assert out["switches"] == [True, True]


def _messages(count: int) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = [{"role": "system", "content": "héllo — “quoted”"}]
    for i in range(count):
        call = {"id": f"c{i}", "type": "function", "function": {"name": "noop", "arguments": "{}"}}
        messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        messages.append({"role": "tool", "tool_call_id": f"c{i}", "content": f"ok {i}"})
    return messages


def test_input_chars_is_the_sum_over_messages() -> None:
    assert input_chars([]) == 0
    for count in (0, 1, 5, 50):
        messages = _messages(count)
        assert input_chars(messages) == sum(len(json.dumps(m, ensure_ascii=False)) for m in messages)
