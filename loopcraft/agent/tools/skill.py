"""The ``skill`` tool: loads one discovered skill's body (and lists its other files) on demand,
so the system prompt only carries each skill's name and description."""

from __future__ import annotations

from typing import Any

from loopcraft.agent.skills import Skill, SkillSet, skill_text
from loopcraft.agent.tools.base import ToolContext, ToolError, ToolResult
from loopcraft.agent.tools.common import BuiltinTool, opt_str, req_str, schema
from loopcraft.agent.tools.fs import read_text


class SkillTool(BuiltinTool):
    name = "skill"
    description = (
        "Load a skill by name: its instructions and the list of its other files. With `file`, one of "
        "those files instead. The available skills are listed in the system prompt."
    )
    parameters = schema(
        {
            "name": {"type": "string", "description": "the skill's name"},
            "file": {"type": "string", "description": "a file of the skill, relative to its folder"},
        },
        ["name"],
    )
    read_only = True

    def __init__(self, skills: SkillSet) -> None:
        self.skills = skills

    async def execute(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        name = req_str(args, "name")
        skill = self.skills.skills.get(name)
        if skill is None:
            known = ", ".join(sorted(self.skills.skills)) or "none"
            raise ToolError(f"unknown skill {name!r}; available skills: {known}")
        file = opt_str(args, "file")
        if file:
            return _skill_file(skill, file)
        return ToolResult(skill_text(skill, ctx.workspace), metadata={"skill": name, "path": str(skill.path)})


def _skill_file(skill: Skill, file: str) -> ToolResult:
    """One file inside the skill's folder (never outside it)."""
    folder = skill.folder.resolve()
    path = (folder / file).resolve()
    if path != folder and folder not in path.parents:
        raise ToolError(f"`{file}` is outside the skill {skill.name!r}; give a path relative to its folder")
    text = read_text(path, f"{skill.name}/{file}")
    return ToolResult(text, metadata={"skill": skill.name, "path": str(path)})
