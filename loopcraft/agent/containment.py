"""The containment layer under every tool: protected paths no tool writes without a human's
approval, the filtered environment a shell gets, and redaction of secret values from every tool
result before a transcript, the journal or the model sees it."""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from loopcraft.agent.tools.base import Tool, ToolContext, ToolError, ToolResult
from loopcraft.agent.tools.paths import display, resolve_in_workspace
from loopcraft.config import AgentConfig

# Paths (workspace-relative globs) that can plant code loopcraft or git runs later.
PROTECTED_PATHS = (
    ".git",
    ".git/**",
    ".loopcraft/config.toml",
    ".loopcraft/workflows",
    ".loopcraft/workflows/**",
    ".loopcraft/skills",
    ".loopcraft/skills/**",
    ".loopcraft/triggers.toml",
    ".loopcraft/loopcraft.db*",
)
_SECRET_NAME = re.compile(r"KEY|SECRET|TOKEN|PASSWORD|CREDENTIAL|^LOOPCRAFT_", re.IGNORECASE)
_MIN_SECRET = 6  # shorter values would redact ordinary words


def _glob(pattern: str, rel: str) -> bool:
    if pattern.endswith("/**"):
        base = pattern[:-3]
        return rel == base or rel.startswith(base + "/")
    return fnmatch.fnmatchcase(rel, pattern)


def protected(workspace: Path, raw: str, allow_paths: list[str]) -> str | None:
    """The workspace-relative path when ``raw`` resolves to a protected path not granted, else None."""
    rel = display(workspace, resolve_in_workspace(workspace, raw))
    if any(_glob(g, rel) for g in allow_paths):
        return None
    return rel if any(_glob(g, rel) for g in PROTECTED_PATHS) else None


def _secret_name(name: str, config: AgentConfig) -> bool:
    if name in config.shell_env.include:
        return False
    if name in config.secret_env:
        return True
    return bool(_SECRET_NAME.search(name)) or any(
        fnmatch.fnmatchcase(name, g) for g in config.shell_env.exclude
    )


def shell_env(config: AgentConfig, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment a shell gets: the process's minus every secret-like name."""
    source = os.environ if environ is None else environ
    env = {k: v for k, v in source.items() if not _secret_name(k, config)}
    env.update({"PAGER": "cat", "GIT_PAGER": "cat", "GIT_TERMINAL_PROMPT": "0", "TERM": "dumb"})
    return env


def secret_values(config: AgentConfig, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Every secret value loopcraft knows, by name: secret-like environment variables and the
    configured provider ``api_key_env`` targets."""
    source = os.environ if environ is None else environ
    names = {k for k in source if _secret_name(k, config) and not k.startswith("LOOPCRAFT_")}
    names |= set(config.secret_env)
    return {n: source[n] for n in sorted(names) if len(source.get(n, "")) >= _MIN_SECRET}


def redact(text: str, secrets: Mapping[str, str]) -> str:
    """``text`` with every secret value replaced by ``[redacted:NAME]`` (longest values first)."""
    for name, value in sorted(secrets.items(), key=lambda kv: -len(kv[1])):
        if value in text:
            text = text.replace(value, f"[redacted:{name}]")
    return text


def _redact_any(value: Any, secrets: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, dict):
        return {k: _redact_any(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_any(v, secrets) for v in value]
    return value


def writes_path(tool: Tool, args: dict[str, Any]) -> str | None:
    """The path a file-writing tool call would write (None for read-only tools and the shell)."""
    if tool.read_only or tool.name == "bash":
        return None
    raw = args.get("path") if isinstance(args, dict) else None
    return raw if isinstance(raw, str) and raw else None


def guard(tool: Tool, args: dict[str, Any], ctx: ToolContext) -> str | None:
    """Why the call is refused by containment (a protected write with no approval), else None."""
    raw = writes_path(tool, args)
    if raw is None:
        return None
    try:
        rel = protected(ctx.workspace, raw, ctx.config.allow_paths)
    except ToolError:
        return None  # the tool itself refuses an escaping path with its own message
    if rel is None or (ctx.approval is not None and ctx.approval.allows(tool.name, f"protected:{rel}")):
        return None
    return (
        f"refused: `{rel}` is a protected path (git metadata, loopcraft's config, workflows, skills or "
        "journal); writing it needs a human's approval or a stage grant (`allow_paths`)"
    )


async def run_contained(tool: Tool, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    """Run ``tool`` under containment: protected paths guarded, secret values redacted from the result."""
    refusal = guard(tool, args, ctx)
    if refusal is not None:
        return ToolResult(refusal, is_error=True, metadata={"refused": True})
    result = await tool.run(args, ctx)
    secrets = secret_values(ctx.config)
    if not secrets:
        return result
    return ToolResult(redact(result.output, secrets), result.is_error, _redact_any(result.metadata, secrets))
