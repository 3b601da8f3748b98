"""The tool seam: what a tool is, what it gets, what it returns."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from loopcraft.config import AgentConfig
from loopcraft.models.types import ToolSchema, function_tool

if TYPE_CHECKING:
    from loopcraft.agent.permissions import ApprovalToken


@dataclass
class ToolContext:
    workspace: Path
    config: AgentConfig = field(default_factory=AgentConfig)
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    approval: ApprovalToken | None = None  # minted by a human answer; lets bash run a destructive command


@dataclass
class ToolResult:
    output: str
    is_error: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)  # e.g. {"diff": ..., "exit_code": ...}


class ToolError(Exception):
    """A tool failed in a way the model should read and can correct (becomes an error result)."""


class Tool(Protocol):
    name: str
    description: str
    parameters: dict[str, Any]  # JSON schema of the arguments object
    read_only: bool

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult: ...


def tool_schema(tool: Tool) -> ToolSchema:
    """The OpenAI function-tool schema for ``tool``."""
    return function_tool(tool.name, tool.description, tool.parameters)
