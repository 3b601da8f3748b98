"""The offline scripted model ``scripted/<name>``: deterministic turns read from a script,
served through litellm's custom-provider interface so callers exercise the real path.

A script (YAML or JSON) maps stage-name globs to lists of turns; the turn played is the
number of assistant messages already in the request (so a resumed conversation picks up
where it was). A turn streams text, structured JSON or tool calls at a set pace, reports
token usage, and can fail its first attempts with scripted faults.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import os
import re
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from loopcraft.errors import ScriptError
from loopcraft.paths import PACKAGE_DIR, repo_root, state_dir

if TYPE_CHECKING:
    from loopcraft.config import Config

BUILTIN_SCRIPTS = PACKAGE_DIR / "models" / "scripts"
SCRIPT_SUFFIXES = (".yaml", ".yml", ".json")
SCRIPT_KWARG = "loopcraft_script"  # custom litellm kwarg: the resolved script path, or None
EXHAUSTED_MARK = "no more scripted answers"  # in every exhausted reply (tests look for it)


def exhausted_text(name: str) -> str:
    """What ``scripted/<name>`` says past the end of its script: why, and how to use a real model."""
    return (
        f"scripted/{name} is loopcraft's offline scripted model and has {EXHAUSTED_MARK} for this "
        "conversation. To talk to a real model, start loopcraft with one "
        "(`loopcraft --model anthropic/claude-sonnet-4-5`, with ANTHROPIC_API_KEY set), set "
        '`model = "anthropic/claude-sonnet-4-5"` in .loopcraft/config.toml or LOOPCRAFT_MODEL, '
        "or switch this chat with /model."
    )


FaultKind = Literal[
    "rate_limit", "timeout", "server_error", "auth", "not_found", "context_overflow", "refusal"
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ScriptedToolCall(_Strict):
    name: str
    arguments: dict[str, Any] | str = Field(default_factory=dict)
    id: str | None = None


class Fault(_Strict):
    kind: FaultKind
    retry_after: float | None = Field(default=None, ge=0)
    message: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)  # more response headers (reset times)


class TurnUsage(_Strict):
    input: int | None = Field(default=None, ge=0)
    output: int | None = Field(default=None, ge=0)
    cache_read: int = Field(default=0, ge=0)
    cache_write: int = Field(default=0, ge=0)


class ToolBranch(_Strict):
    """A turn's text chosen by the latest tool result: ``match`` (a regex, any case) searched in
    it; ``text`` may name its groups (``{run}``)."""

    match: str
    text: str


class Turn(_Strict):
    text: str | None = None
    when_tool_result: list[ToolBranch] = Field(default_factory=list)  # the first match's text wins
    json_: Any = Field(default=None, alias="json")
    tool_calls: list[ScriptedToolCall] = Field(default_factory=list)
    usage: TurnUsage | None = None
    pace: float | None = Field(default=None, ge=0)
    delay: float = Field(default=0.0, ge=0)  # seconds before the first chunk (a slow or hung provider)
    faults: list[Fault] = Field(default_factory=list)
    malformed_tool_args: bool = False
    invalid_json: bool = False

    def body(self) -> str:
        """The text this turn streams (JSON turns send their value as JSON text)."""
        text = json.dumps(self.json_) if self.json_ is not None else (self.text or "")
        if self.invalid_json and text:
            text = text[: max(1, len(text) // 2)]
        return text


class Reply(_Strict):
    """Turns played when the latest user message matches ``match`` (a regex, searched
    case-insensitively) in a stage matching ``stage``; counted from that message on."""

    match: str
    stage: str = "*"
    turns: list[Turn] = Field(min_length=1)

    def matches(self, stage: str, message: str) -> bool:
        try:
            found = re.search(self.match, message, re.IGNORECASE) is not None
        except re.error as exc:
            raise ScriptError(f"script error: replies: bad regex {self.match!r}: {exc}") from exc
        return found and fnmatch.fnmatchcase(stage, self.stage)


class Script(_Strict):
    pace: float = Field(default=0.0, ge=0)
    chunk_size: int = Field(default=16, gt=0)
    call_log: str | None = None
    default: list[Turn] = Field(default_factory=lambda: [Turn(text="Done.")])
    stages: dict[str, list[Turn]] = Field(default_factory=dict)
    replies: list[Reply] = Field(default_factory=list)

    def turns_for(self, stage: str) -> list[Turn]:
        """The turns of the first stage pattern matching ``stage``, else the default turns."""
        for pattern, turns in self.stages.items():
            if fnmatch.fnmatchcase(stage, pattern):
                return turns
        return self.default

    def turn(self, stage: str, index: int, name: str = "demo") -> Turn:
        turns = self.turns_for(stage)
        return turns[index] if index < len(turns) else Turn(text=exhausted_text(name))

    def turn_for(self, stage: str, messages: list[dict[str, Any]], name: str) -> tuple[Turn, int]:
        """The turn to play for this conversation and its index: a matching reply's turn
        (counted from the latest user message), else the stage's turn by assistant count."""
        latest, since = _latest_user(messages)
        for reply in self.replies:
            if latest is not None and reply.matches(stage, latest):
                if since < len(reply.turns):
                    return _by_tool_result(reply.turns[since], messages), since
                return Turn(text=exhausted_text(name)), since
        index = sum(1 for m in messages if m.get("role") == "assistant")
        return self.turn(stage, index, name), index


def _by_tool_result(turn: Turn, messages: list[dict[str, Any]]) -> Turn:
    """``turn`` with the text of its first ``when_tool_result`` branch the latest tool result
    matches (a refused tool, a headless run…); as it is when none does."""
    if not turn.when_tool_result:
        return turn
    result = next((m for m in reversed(messages) if m.get("role") == "tool"), None)
    content = str((result or {}).get("content") or "")
    for branch in turn.when_tool_result:
        try:
            found = re.search(branch.match, content, re.IGNORECASE | re.DOTALL)
        except re.error as exc:
            raise ScriptError(f"script error: when_tool_result: bad regex {branch.match!r}: {exc}") from exc
        if found is not None:
            text = branch.text.format_map({k: v or "" for k, v in found.groupdict().items()})
            return turn.model_copy(update={"text": text, "when_tool_result": []})
    return turn


def _latest_user(messages: list[dict[str, Any]]) -> tuple[str | None, int]:
    """The latest user message's text and how many assistant messages came after it."""
    since = 0
    for message in reversed(messages):
        role = message.get("role")
        if role == "assistant":
            since += 1
        elif role == "user":
            content = message.get("content")
            if isinstance(content, list):
                content = " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
            return str(content or ""), since
    return None, since


# --- finding and loading scripts -------------------------------------------------------

_REGISTRY: dict[str, Script] = {}
_LOADED: dict[Path, tuple[tuple[int, int], Script]] = {}
_LOCK = threading.Lock()


def register_script(name: str, script: Script) -> None:
    """Serve ``scripted/<name>`` from ``script`` (in this process; wins over files)."""
    _REGISTRY[name] = script


def unregister_script(name: str) -> None:
    _REGISTRY.pop(name, None)


def registered_script(name: str) -> Script | None:
    return _REGISTRY.get(name)


def _problem(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
    problem = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
    return f"{loc}: {problem}"


def parse_script(text: str, source: str) -> Script:
    """A :class:`Script` from YAML/JSON text; ``source`` names it in errors."""
    try:
        data = yaml.safe_load(text) if text.strip() else {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ScriptError(f"script error: {source}: not valid YAML/JSON{where}") from exc
    if not isinstance(data, dict):
        raise ScriptError(f"script error: {source}: expected a mapping at the top level")
    try:
        return Script.model_validate(data)
    except ValidationError as exc:
        raise ScriptError(f"script error: {source}: {_problem(exc)}") from exc


def load_script(path: Path) -> Script:
    """Read and validate a script file (cached until the file changes)."""
    try:
        stat = path.stat()
    except OSError:
        raise ScriptError(f"script error: {path}: file not found") from None
    key = (stat.st_mtime_ns, stat.st_size)
    cached = _LOADED.get(path)
    if cached and cached[0] == key:
        return cached[1]
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScriptError(f"script error: {path}: cannot be read ({exc})") from exc
    script = parse_script(text, str(path))
    _LOADED[path] = (key, script)
    return script


def script_path_for(name: str, config: Config | None = None, root: Path | None = None) -> Path | None:
    """The script file serving ``scripted/<name>``; None when it is registered in-process.

    Order: registered > config ``models."scripted/<name>".script`` > ``LOOPCRAFT_SCRIPT`` >
    ``.loopcraft/scripts/<name>.{yaml,yml,json}`` > the built-in script of that name.
    Raises :class:`ScriptError` when none exists.
    """
    if name in _REGISTRY:
        return None
    root = root or repo_root()
    configured = config.model_options(f"scripted/{name}").script if config else None
    if configured:
        path = Path(configured).expanduser()
        return path if path.is_absolute() else root / path
    env = os.environ.get("LOOPCRAFT_SCRIPT")
    if env:
        return Path(env).expanduser().resolve()
    for suffix in SCRIPT_SUFFIXES:
        candidate = state_dir(root) / "scripts" / f"{name}{suffix}"
        if candidate.is_file():
            return candidate
    builtin = BUILTIN_SCRIPTS / f"{name}.yaml"
    if builtin.is_file():
        return builtin
    raise ScriptError(
        f"no script for scripted/{name}: add .loopcraft/scripts/{name}.yaml, set LOOPCRAFT_SCRIPT, "
        f'or set script under [models."scripted/{name}"] in config.toml'
    )


def _script_for_call(name: str, path: str | None) -> Script:
    if path is None:
        script = _REGISTRY.get(name)
        if script is None:
            raise ScriptError(f"no script for scripted/{name}: it is not registered in this process")
        return script
    return load_script(Path(path))


# --- faults and the call log -----------------------------------------------------------

_ATTEMPTS: dict[tuple[str, str, str, int], int] = {}


def reset_fault_counters() -> None:
    """Forget how many times each scripted turn was attempted (tests)."""
    with _LOCK:
        _ATTEMPTS.clear()


def _next_attempt(key: tuple[str, str, str, int]) -> int:
    with _LOCK:
        attempt = _ATTEMPTS.get(key, 0)
        _ATTEMPTS[key] = attempt + 1
        return attempt


def fault_exception(fault: Fault, model: str) -> Exception:
    """The litellm exception a provider would raise for ``fault``."""
    import httpx

    from loopcraft.models.litellm_loader import load_litellm

    litellm = load_litellm()
    message = fault.message or f"scripted {fault.kind}"
    common = {"message": message, "model": model, "llm_provider": "scripted"}
    request = httpx.Request("POST", "http://scripted.invalid/v1/chat/completions")
    if fault.kind == "rate_limit":
        headers = {"retry-after": str(fault.retry_after)} if fault.retry_after is not None else {}
        headers.update(fault.headers)
        response = httpx.Response(429, headers=headers, request=request)
        return litellm.RateLimitError(response=response, **common)
    if fault.kind == "timeout":
        return litellm.Timeout(**common)
    if fault.kind == "server_error":
        return litellm.InternalServerError(response=httpx.Response(500, request=request), **common)
    if fault.kind == "auth":
        return litellm.AuthenticationError(**common)
    if fault.kind == "not_found":
        return litellm.NotFoundError(**common)
    if fault.kind == "context_overflow":
        return litellm.ContextWindowExceededError(**common)
    return litellm.ContentPolicyViolationError(**common)


def call_log_path(script: Script, script_path: str | None) -> Path | None:
    """Where calls are logged: ``LOOPCRAFT_SCRIPTED_CALL_LOG``, else the script's ``call_log``."""
    env = os.environ.get("LOOPCRAFT_SCRIPTED_CALL_LOG")
    if env:
        return Path(env)
    if not script.call_log:
        return None
    log = Path(script.call_log).expanduser()
    if log.is_absolute():
        return log
    return (Path(script_path).parent if script_path else Path.cwd()) / log


def append_call_log(path: Path, entry: dict[str, Any]) -> None:
    """Append one JSON line, flushed and fsynced (survives a crash right after the call)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry, sort_keys=True) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def read_call_log(path: Path | str) -> list[dict[str, Any]]:
    """Every logged call, oldest first ([] when the log does not exist)."""
    path = Path(path)
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


# --- playing a turn ---------------------------------------------------------------------


@dataclass
class _Call:
    name: str  # the script name (model without provider)
    stage: str
    turn_index: int
    attempt: int
    script: Script
    script_path: str | None
    max_tokens: int | None = None  # the output cap the call was sent with

    def log(self, fault: str | None) -> None:
        path = call_log_path(self.script, self.script_path)
        if path is None:
            return
        append_call_log(
            path,
            {
                "model": f"scripted/{self.name}",
                "stage": self.stage,
                "turn": self.turn_index,
                "attempt": self.attempt,
                "fault": fault,
                "max_tokens": self.max_tokens,
                "pid": os.getpid(),
                "ts": time.time(),
            },
        )


def _chars(messages: list[dict[str, Any]]) -> int:
    total = 0
    for msg in messages:
        content = msg.get("content")
        total += len(content) if isinstance(content, str) else len(json.dumps(content or ""))
        if msg.get("tool_calls"):
            total += len(json.dumps(msg["tool_calls"]))
    return total


def _usage(turn: Turn, messages: list[dict[str, Any]], output_chars: int) -> dict[str, Any]:
    scripted = turn.usage or TurnUsage()
    prompt = scripted.input if scripted.input is not None else _chars(messages) // 4
    completion = scripted.output if scripted.output is not None else output_chars // 4
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": scripted.cache_read},
        "cache_read_input_tokens": scripted.cache_read,
        "cache_creation_input_tokens": scripted.cache_write,
    }


def _pieces(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def _chunk(
    text: str = "",
    tool_use: dict[str, Any] | None = None,
    finish: str = "",
    usage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "text": text,
        "tool_use": tool_use,
        "is_finished": bool(finish),
        "finish_reason": finish,
        "usage": usage,
        "index": 0,
    }


def _tool_arguments(call: ScriptedToolCall, malformed: bool) -> str:
    raw = call.arguments if isinstance(call.arguments, str) else json.dumps(call.arguments)
    return raw[:-1] + ', "oops' if malformed else raw


async def stream_turn(
    model: str,
    messages: list[dict[str, Any]],
    optional_params: dict[str, Any],
    litellm_params: dict[str, Any],
) -> AsyncIterator[dict[str, Any]]:
    """Play one scripted turn as litellm ``GenericStreamingChunk`` dicts."""
    name = model.split("/", 1)[-1]
    script_path = optional_params.get(SCRIPT_KWARG)
    script = _script_for_call(name, script_path)
    stage = str((litellm_params.get("metadata") or {}).get("stage") or "chat")
    turn, turn_index = script.turn_for(stage, messages, name)
    identity = script_path or f"registered:{name}"
    attempt = _next_attempt((identity, name, stage, turn_index))
    call = _Call(name, stage, turn_index, attempt, script, script_path, optional_params.get("max_tokens"))
    if attempt < len(turn.faults):
        fault = turn.faults[attempt]
        call.log(fault.kind)
        raise fault_exception(fault, name)

    if turn.delay:
        await asyncio.sleep(turn.delay)
    pace = script.pace if turn.pace is None else turn.pace
    emitted = 0
    for piece in _pieces(turn.body(), script.chunk_size):
        if pace and emitted:
            await asyncio.sleep(pace)
        emitted += 1
        yield _chunk(text=piece)
    output_chars = len(turn.body())
    for index, tool in enumerate(turn.tool_calls):
        arguments = _tool_arguments(tool, turn.malformed_tool_args)
        output_chars += len(arguments) + len(tool.name)
        tool_id = tool.id or f"call_{stage}_{turn_index}_{index}"
        for part_no, part in enumerate(_pieces(arguments, script.chunk_size) or [""]):
            if pace and emitted:
                await asyncio.sleep(pace)
            emitted += 1
            first = part_no == 0
            yield _chunk(
                tool_use={
                    "id": tool_id if first else None,
                    "type": "function",
                    "index": index,
                    "function": {"name": tool.name if first else None, "arguments": part},
                }
            )
    finish = "tool_calls" if turn.tool_calls else "stop"
    yield _chunk(finish=finish, usage=_usage(turn, messages, output_chars))
    call.log(None)


def make_handler() -> Any:
    """A litellm ``CustomLLM`` serving ``scripted/*`` (imports litellm; loader-only)."""
    from litellm import CustomLLM

    class ScriptedLLM(CustomLLM):  # type: ignore[misc]
        async def astreaming(  # type: ignore[override]
            self, model: str, messages: list[dict[str, Any]], *args: Any, **kwargs: Any
        ) -> AsyncIterator[dict[str, Any]]:
            async for chunk in stream_turn(
                model, messages, kwargs.get("optional_params") or {}, kwargs.get("litellm_params") or {}
            ):
                yield chunk

        async def acompletion(
            self, model: str, messages: list[dict[str, Any]], *args: Any, **kwargs: Any
        ) -> Any:
            return await _complete(model, messages, kwargs)

    return ScriptedLLM()


async def _complete(model: str, messages: list[dict[str, Any]], kwargs: dict[str, Any]) -> Any:
    """Non-streaming calls: play the turn and assemble one litellm ``ModelResponse``."""
    from litellm import ModelResponse, Usage

    text, finish, usage = "", "stop", {}
    tool_calls: dict[int, dict[str, Any]] = {}
    async for chunk in stream_turn(
        model, messages, kwargs.get("optional_params") or {}, kwargs.get("litellm_params") or {}
    ):
        text += chunk["text"]
        if chunk["tool_use"]:
            part = chunk["tool_use"]
            entry = tool_calls.setdefault(
                part["index"],
                {
                    "id": part["id"],
                    "type": "function",
                    "function": {"name": part["function"]["name"], "arguments": ""},
                },
            )
            entry["function"]["arguments"] += part["function"]["arguments"]
        if chunk["is_finished"]:
            finish, usage = chunk["finish_reason"], chunk["usage"]
    message: dict[str, Any] = {"role": "assistant", "content": text or None}
    if tool_calls:
        message["tool_calls"] = [tool_calls[i] for i in sorted(tool_calls)]
    return ModelResponse(
        model=model,
        choices=[{"index": 0, "message": message, "finish_reason": finish}],
        usage=Usage(**usage),
    )
