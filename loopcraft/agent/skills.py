"""Skills: ``SKILL.md`` files (YAML front matter ``name``, ``description``, optional
``allowed-tools``, then a Markdown body) found in the project and the user's home.

Progressive disclosure: the system prompt lists each skill's name and description only; the
``skill`` tool (:mod:`loopcraft.agent.tools.skill`) loads a body when the model asks, and a
stage's ``skills=[...]`` preloads named bodies into its first prompt. Discovery happens once per
session, so the prompt prefix stays cache-stable. A malformed file is reported and skipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from loopcraft.errors import LoopcraftError
from loopcraft.paths import home_dir

SKILL_FILE = "SKILL.md"
# Where skills are looked for, in precedence order (the first skill of a name wins).
PROJECT_DIRS = (".loopcraft/skills",)
COMPAT_DIRS = (".claude/skills", ".agents/skills")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_FRONT = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.DOTALL)
MAX_LISTED_FILES = 50


class UnknownSkillError(LoopcraftError):
    """A skill name that no discovered skill has."""


@dataclass(frozen=True)
class Skill:
    name: str
    description: str
    path: Path  # the SKILL.md
    body: str
    source: str  # the folder it was found in, e.g. ".loopcraft/skills" or "~/.loopcraft/skills"
    allowed_tools: list[str] = field(default_factory=list)

    @property
    def folder(self) -> Path:
        return self.path.parent

    def other_files(self) -> list[Path]:
        """The skill folder's files other than SKILL.md (sorted, at most MAX_LISTED_FILES)."""
        found = sorted(p for p in self.folder.rglob("*") if p.is_file() and p != self.path)
        return found[:MAX_LISTED_FILES]


@dataclass(frozen=True)
class SkillProblem:
    path: Path
    problem: str

    def line(self) -> str:
        return f"skill {self.path}: {self.problem}; fix the file (it was skipped)"


@dataclass
class SkillSet:
    skills: dict[str, Skill] = field(default_factory=dict)  # in discovery order
    problems: list[SkillProblem] = field(default_factory=list)
    shadowed: list[Skill] = field(default_factory=list)  # same name found later in the order

    def get(self, names: list[str]) -> list[Skill]:
        """The named skills, in order; an unknown name raises naming it and the known ones."""
        unknown = [n for n in names if n not in self.skills]
        if unknown:
            known = ", ".join(sorted(self.skills)) or "none"
            raise UnknownSkillError(
                f"unknown skill {', '.join(repr(n) for n in unknown)}; discovered skills: {known} "
                "(add .loopcraft/skills/<name>/SKILL.md)"
            )
        return [self.skills[n] for n in dict.fromkeys(names)]


def skill_dirs(workspace: Path, home: Path | None = None) -> list[tuple[str, Path]]:
    """The folders searched, in precedence order, with the label each is reported under."""
    home = home or home_dir()
    dirs = [(d, workspace / d) for d in PROJECT_DIRS]
    dirs.append(("~/.loopcraft/skills", home / "skills"))
    dirs += [(d, workspace / d) for d in COMPAT_DIRS]
    return dirs


def parse_skill(path: Path, source: str) -> Skill:
    """One SKILL.md; ValueError naming the problem when it is malformed."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot be read ({exc})") from exc
    match = _FRONT.match(text)
    if match is None:
        raise ValueError(
            "no YAML front matter (the file must start with a `---` line and close it with `---`)"
        )
    try:
        meta = yaml.safe_load(match.group(1))
    except yaml.YAMLError as exc:
        raise ValueError(f"front matter is not valid YAML ({str(exc).splitlines()[0]})") from exc
    if not isinstance(meta, dict):
        raise ValueError("front matter must be a mapping of keys (name, description)")
    name, description = meta.get("name"), meta.get("description")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError("`name` is required: letters, digits, `-`, `_` or `.`, at most 64 characters")
    if not isinstance(description, str) or not description.strip():
        raise ValueError("`description` is required and must be a non-empty string")
    return Skill(
        name=name,
        description=" ".join(description.split()),
        path=path,
        body=text[match.end() :].strip(),
        source=source,
        allowed_tools=_allowed_tools(meta.get("allowed-tools")),
    )


def _allowed_tools(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [t for t in re.split(r"[,\s]+", value) if t]
    if isinstance(value, list) and all(isinstance(t, str) for t in value):
        return list(value)
    raise ValueError("`allowed-tools` must be a list of tool names or a comma-separated string")


def discover_skills(workspace: Path, home: Path | None = None) -> SkillSet:
    """Every skill under :func:`skill_dirs`; the first of a name wins, bad files are reported."""
    found = SkillSet()
    for label, folder in skill_dirs(Path(workspace), home):
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob(f"*/{SKILL_FILE}")):
            try:
                skill = parse_skill(path, label)
            except ValueError as exc:
                found.problems.append(SkillProblem(path, str(exc)))
                continue
            if skill.name in found.skills:
                found.shadowed.append(skill)
            else:
                found.skills[skill.name] = skill
    return found


def skills_section(skills: SkillSet) -> str:
    """The system-prompt lines listing skills by name and description (empty with no skills)."""
    if not skills.skills:
        return ""
    lines = [
        "Skills (project knowledge; load one with the skill tool before work it describes):",
        *(f"- {s.name}: {s.description}" for s in skills.skills.values()),
    ]
    return "\n".join(lines)


def skill_text(skill: Skill, workspace: Path) -> str:
    """What loading ``skill`` shows the model: its body and the other files in its folder."""
    parts = [f'<skill name="{skill.name}" path="{_shown(skill.path, workspace)}">', skill.body]
    others = skill.other_files()
    if others:
        listed = "\n".join(_file_line(p, skill, workspace) for p in others)
        parts.append(
            f"Other files of this skill (open one with the skill tool's `file`, or read its path):\n{listed}"
        )
    if skill.allowed_tools:
        parts.append(f"Tools this skill expects: {', '.join(skill.allowed_tools)}")
    parts.append("</skill>")
    return "\n\n".join(parts)


def preload_text(skills: list[Skill], workspace: Path) -> str:
    """Skills given to a stage up front, as the head of its first prompt."""
    return "\n\n".join(skill_text(s, workspace) for s in skills)


def _file_line(path: Path, skill: Skill, workspace: Path) -> str:
    rel, shown = str(path.relative_to(skill.folder)), _shown(path, workspace)
    return f"- {rel}" if shown == str(path) else f"- {rel}  ({shown})"


def _shown(path: Path, workspace: Path) -> str:
    try:
        return str(path.relative_to(workspace))
    except ValueError:
        return str(path)
