"""Shared plumbing for the built-in tools: typed argument readers, the output budget and the
error-to-result wrapper."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

from loopcraft.agent.tools.base import ToolContext, ToolError, ToolResult


def req_str(args: dict[str, Any], key: str, *, allow_empty: bool = False) -> str:
    """A required string argument, or a ToolError telling the model what is missing."""
    value = args.get(key)
    if not isinstance(value, str):
        got = "missing" if value is None else f"a {type(value).__name__}"
        raise ToolError(f"argument `{key}` is required and must be a string (got {got})")
    if not allow_empty and not value:
        raise ToolError(f"argument `{key}` must not be empty")
    return value


def _given(
    args: dict[str, Any],
    key: str,
    valid: Callable[[Any], bool],
    wanted: str,
    shown: Callable[[Any], str] = repr,
) -> Any:
    """``args[key]`` (None when absent), or a ToolError when it is set but not ``wanted``."""
    value = args.get(key)
    if value is not None and not valid(value):
        raise ToolError(f"argument `{key}` must be {wanted} (got {shown(value)})")
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def opt_str(args: dict[str, Any], key: str, default: str | None = None) -> str | None:
    value = _given(args, key, lambda v: isinstance(v, str), "a string", lambda v: f"a {type(v).__name__}")
    return default if value is None else value


def opt_int(args: dict[str, Any], key: str, default: int, *, minimum: int = 0) -> int:
    value = _given(args, key, lambda v: _is_number(v) and int(v) == v, "an integer")
    if value is None:
        return default
    if value < minimum:
        raise ToolError(f"argument `{key}` must be at least {minimum} (got {value})")
    return int(value)


def opt_float(args: dict[str, Any], key: str, default: float | None) -> float | None:
    value = _given(args, key, lambda v: _is_number(v) and v > 0, "a positive number of seconds")
    return default if value is None else float(value)


def opt_bool(args: dict[str, Any], key: str, default: bool = False) -> bool:
    value = _given(args, key, lambda v: isinstance(v, bool), "true or false")
    return default if value is None else value


def within_budget(lines: Iterable[str], budget: int, overhead: int) -> list[str]:
    """The leading ``lines`` whose characters (each plus ``overhead``) fit in ``budget``; at least one."""
    kept: list[str] = []
    used = 0
    for line in lines:
        used += len(line) + overhead
        if kept and used > budget:
            break
        kept.append(line)
    return kept


class BuiltinTool:
    """Base for the built-in tools: ``run`` turns any exception into an error result.

    Subclasses set the class attributes and implement ``execute``; only CancelledError escapes.
    """

    name: str
    description: str
    parameters: dict[str, Any]
    read_only: bool

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        if not isinstance(args, dict):
            return ToolResult("tool arguments must be a JSON object", is_error=True)
        try:
            return await self.execute(args, ctx)
        except asyncio.CancelledError:
            raise
        except ToolError as exc:
            return ToolResult(str(exc), is_error=True)
        except OSError as exc:
            where = f" ({exc.filename})" if exc.filename else ""
            return ToolResult(f"{self.name} failed: {exc.strerror or exc}{where}", is_error=True)
        except Exception as exc:  # a bug in the tool must not take the session down
            return ToolResult(f"{self.name} failed unexpectedly: {type(exc).__name__}: {exc}", is_error=True)

    async def execute(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        raise NotImplementedError


def schema(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    """A JSON schema for an arguments object."""
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}
