"""The built-in tool set and selecting tools by name."""

from __future__ import annotations

from loopcraft.agent.tools.base import Tool
from loopcraft.agent.tools.bash import BashTool
from loopcraft.agent.tools.edit import EditTool
from loopcraft.agent.tools.fs import LsTool, ReadTool, WriteTool
from loopcraft.agent.tools.search import FindTool, GrepTool
from loopcraft.errors import LoopcraftError


class UnknownToolError(LoopcraftError):
    """A tool name that is not one of the available tools."""


def default_tools() -> list[Tool]:
    """A fresh instance of every built-in tool, in a stable order."""
    return [ReadTool(), WriteTool(), EditTool(), BashTool(), GrepTool(), FindTool(), LsTool()]


def get_tools(names: list[str] | None = None, exclude: list[str] | None = None) -> list[Tool]:
    """The tools named (all built-ins when ``names`` is None), minus ``exclude``, in the order named."""
    available = {tool.name: tool for tool in default_tools()}
    unknown = [n for n in [*(names or []), *(exclude or [])] if n not in available]
    if unknown:
        raise UnknownToolError(
            f"unknown tool {', '.join(f'`{n}`' for n in unknown)}; valid tools: {', '.join(sorted(available))}"
        )
    chosen = list(available) if names is None else list(dict.fromkeys(names))
    skip = set(exclude or [])
    return [available[n] for n in chosen if n not in skip]
