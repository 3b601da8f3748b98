"""What a session gets beyond the built-in tools: discovered skills (listed in the system prompt,
loaded with the ``skill`` tool), project memory (AGENTS.md in the system prompt) and the
configured MCP servers (tools listed at the first run). Gathered once, when a session opens."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from loopcraft.agent.mcp import McpSession, ToolFilter, is_mcp_name
from loopcraft.agent.memory import MemoryFile, load_memory, memory_section
from loopcraft.agent.skills import SkillSet, discover_skills, skills_section
from loopcraft.agent.tools.base import Tool
from loopcraft.config import Config

SKILL_TOOL = "skill"


@dataclass
class Extensions:
    workspace: Path
    skills: SkillSet = field(default_factory=SkillSet)
    memory: list[MemoryFile] = field(default_factory=list)
    mcp: McpSession | None = None

    def system_prompt(self, base: str) -> str:
        """``base`` followed by the memory files and the skill list (each once)."""
        parts = [base.rstrip(), memory_section(self.memory, self.workspace), skills_section(self.skills)]
        return "\n\n".join(p for p in parts if p) + "\n"

    def tools(self, include: list[str] | None = None, exclude: list[str] | None = None) -> list[Tool]:
        """The ``skill`` tool, when there are skills and the stage's tool selection keeps it."""
        from loopcraft.agent.tools.skill import SkillTool

        wanted = include is None or SKILL_TOOL in include
        if not self.skills.skills or not wanted or SKILL_TOOL in (exclude or []):
            return []
        return [SkillTool(self.skills)]

    def close(self) -> None:
        if self.mcp is not None:
            self.mcp.close()


def builtin_names(names: list[str] | None) -> list[str] | None:
    """``tools=`` without the names that are not built-in tools (``skill``, ``mcp__*``)."""
    if names is None:
        return None
    return [n for n in names if n != SKILL_TOOL and not is_mcp_name(n)]


def load_extensions(
    workspace: Path,
    config: Config,
    *,
    cwd: Path | None = None,
    memory: bool = True,
    tools: list[str] | None = None,
    exclude_tools: list[str] | None = None,
) -> Extensions:
    """Skills, memory and (not yet started) MCP servers for a session in ``workspace``."""
    workspace = Path(workspace)
    servers = config.mcp.servers
    mcp = None
    if any(s.enabled for s in servers.values()):
        allow = ToolFilter(tools, list(exclude_tools or []))
        mcp = McpSession.from_config(servers, config.agent, workspace, allow)
    return Extensions(
        workspace=workspace,
        skills=discover_skills(workspace),
        memory=load_memory(workspace, config.agent.memory_files, cwd) if memory else [],
        mcp=mcp,
    )
