"""The ``skill`` tool: loads one discovered skill's body (and lists its other files) on demand,
so the system prompt only carries each skill's name and description."""

from __future__ import annotations

from typing import Any

from loopcraft.agent.skills import SkillSet, skill_text
from loopcraft.agent.tools.base import ToolContext, ToolError, ToolResult
from loopcraft.agent.tools.common import BuiltinTool, req_str, schema


class SkillTool(BuiltinTool):
    name = "skill"
    description = (
        "Load a skill by name: its instructions and the list of its other files (open those with read). "
        "The available skills are listed in the system prompt."
    )
    parameters = schema({"name": {"type": "string", "description": "the skill's name"}}, ["name"])
    read_only = True

    def __init__(self, skills: SkillSet) -> None:
        self.skills = skills

    async def execute(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        name = req_str(args, "name")
        skill = self.skills.skills.get(name)
        if skill is None:
            known = ", ".join(sorted(self.skills.skills)) or "none"
            raise ToolError(f"unknown skill {name!r}; available skills: {known}")
        return ToolResult(skill_text(skill, ctx.workspace), metadata={"skill": name, "path": str(skill.path)})
