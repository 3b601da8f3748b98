"""Permission policy: decides whether a tool call may run (allow / ask / deny) and asks a human when needed.

How a call is decided:

1. The mode gives a default: ``default`` allows read-only tools and asks for the rest;
   ``accept-edits`` also allows ``write`` and ``edit``; ``plan`` denies every tool that is not
   read-only ("plan mode is read-only") and no rule can lift that; ``yolo`` allows everything.
2. Rules (config ``agent.permissions``, then rules added by "allow always" answers in this
   session) are matched in order; the last rule whose ``tool`` glob matches the tool name and
   whose ``pattern`` glob matches the call's subject wins over the mode default. The subject is
   the command for ``bash`` and the path for file tools (``*`` also matches ``/``).
3. A destructive shell command (``agent.destructive_commands``, regexes) needs an
   :class:`ApprovalToken`, which only a human answer mints, in every mode including yolo.
   With no human (``approver is None``: a headless run) it is refused and the model is told why;
   an "ask" with no human is refused the same way.
"""

from __future__ import annotations

import fnmatch
import glob
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from loopcraft.agent.containment import protected, writes_path
from loopcraft.agent.shellcmd import is_destructive_line, parse
from loopcraft.agent.tools.base import ToolError
from loopcraft.agent.tools.paths import display, resolve_in_workspace
from loopcraft.config import AgentConfig, PermissionMode, PermissionRule

if TYPE_CHECKING:
    from loopcraft.agent.tools.base import Tool

Action = Literal["allow", "ask", "deny"]
Answer = Literal["allow_once", "allow_always", "reject"]

EDIT_TOOLS = frozenset({"write", "edit"})
PLAN_REASON = "plan mode is read-only"

# A per-process secret: a token is only valid if this module signed it, so code elsewhere
# cannot fabricate one by calling the constructor.
_SECRET = secrets.token_bytes(32)


def _sign(tool: str, subject: str) -> str:
    return hmac.new(_SECRET, f"{tool}\0{subject}".encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class ApprovalToken:
    """Proof that a human approved running ``tool`` on ``subject``; minted only by this module."""

    tool: str
    subject: str
    signature: str = field(repr=False)

    def __post_init__(self) -> None:
        if not hmac.compare_digest(self.signature, _sign(self.tool, self.subject)):
            raise ValueError("an approval token can only be minted from a human's answer")

    def allows(self, tool: str, subject: str) -> bool:
        return tool == self.tool and subject == self.subject


def _mint(tool: str, subject: str) -> ApprovalToken:
    return ApprovalToken(tool, subject, _sign(tool, subject))


@dataclass
class PermissionRequest:
    """What a human is asked to approve."""

    tool: str
    subject: str
    args: dict[str, Any]
    destructive: bool
    reason: str


class Approver(Protocol):
    async def ask(self, request: PermissionRequest) -> Answer: ...  # a human answers


@dataclass
class Authorization:
    allowed: bool
    reason: str
    token: ApprovalToken | None = None


@lru_cache(maxsize=64)
def _compile(patterns: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p) for p in patterns)


def is_destructive(command: str, patterns: Iterable[str]) -> bool:
    """Whether ``command`` is destructive: the built-in checks on its parsed argv, which can't be
    switched off, or any of the ``destructive_commands`` regexes."""
    return is_destructive_line(command, list(_compile(tuple(patterns))))


def _rule_matches(rule: PermissionRule, tool: Tool, subject: str) -> bool:
    """A rule matches a bash line only when every simple command does (never an unparsable one
    for an allow rule); a file path is matched after resolving it inside the workspace."""
    if not fnmatch.fnmatchcase(tool.name, rule.tool):
        return False
    if tool.name != "bash" or rule.pattern == "*":
        return fnmatch.fnmatchcase(subject, rule.pattern)
    commands = parse(subject)
    if not commands:
        return rule.action != "allow" and fnmatch.fnmatchcase(subject, rule.pattern)
    hits = [fnmatch.fnmatchcase(c.text, rule.pattern) for c in commands]
    return all(hits) if rule.action == "allow" else any(hits) or fnmatch.fnmatchcase(subject, rule.pattern)


def resolved_subject(tool: Tool, args: dict[str, Any], workspace: Path | None) -> str:
    """The subject with a file path resolved inside ``workspace`` (what will really be touched)."""
    subject = subject_of(tool, args)
    if workspace is None or tool.name == "bash" or "path" not in tool.parameters.get("properties", {}):
        return subject
    try:
        return display(workspace, resolve_in_workspace(workspace, subject or "."))
    except ToolError:
        return subject  # the tool refuses an escaping path itself


def subject_of(tool: Tool, args: dict[str, Any]) -> str:
    """What rules match against: the command for bash, the path for file tools, else ``""``."""
    key = "command" if tool.name == "bash" else "path"
    value = args.get(key)
    if not isinstance(value, str):
        return "." if key == "path" and "path" in tool.parameters.get("properties", {}) else ""
    return value.removeprefix("./") if key == "path" and value != "./" else value


def _mode_default(mode: PermissionMode, tool: Tool) -> tuple[Action, str]:
    if tool.read_only or mode == "yolo":
        return "allow", f"{mode} mode allows {tool.name}"
    if mode == "plan":
        return "deny", PLAN_REASON
    if mode == "accept-edits" and tool.name in EDIT_TOOLS:
        return "allow", "accept-edits mode allows file edits"
    return "ask", f"{mode} mode asks before {tool.name}"


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class PermissionPolicy:
    """The rules, mode and (optional) human that decide each tool call of a session."""

    def __init__(
        self, config: AgentConfig, approver: Approver | None = None, mode: PermissionMode | None = None
    ) -> None:
        self.config = config
        self.approver = approver
        self.mode: PermissionMode = mode or config.permission_mode
        self.session_rules: list[PermissionRule] = []

    @property
    def rules(self) -> list[PermissionRule]:
        return [*self.config.permissions, *self.session_rules]

    def is_destructive(self, command: str) -> bool:
        return is_destructive(command, self.config.destructive_commands)

    def decide(self, tool: Tool, args: dict[str, Any], workspace: Path | None = None) -> tuple[Action, str]:
        """The mode default, overridden by the last matching rule (plan mode stays read-only)."""
        action, reason = _mode_default(self.mode, tool)
        if self.mode == "plan" and not tool.read_only:
            return action, reason
        subject = resolved_subject(tool, args, workspace)
        for rule in self.rules:
            if _rule_matches(rule, tool, subject):
                action, reason = rule.action, f"rule {rule.tool}({rule.pattern}) says {rule.action}"
        return action, reason

    def _protected(self, tool: Tool, args: dict[str, Any], workspace: Path | None) -> str | None:
        raw = writes_path(tool, args)
        if raw is None or workspace is None:
            return None
        try:
            return protected(workspace, raw, self.config.allow_paths)
        except ToolError:
            return None

    async def authorize(
        self, tool: Tool, args: dict[str, Any], workspace: Path | None = None
    ) -> Authorization:
        """Decide, asking the human when needed; destructive commands and writes to protected
        paths always need a human."""
        action, reason = self.decide(tool, args, workspace)
        if action == "deny":
            return Authorization(False, f"refused: {reason}")
        subject = subject_of(tool, args)
        guarded = self._protected(tool, args, workspace)
        if guarded is not None:
            return await self._ask_human(
                tool, args, f"protected:{guarded}", f"`{guarded}` is a protected path"
            )
        destructive = tool.name == "bash" and self.is_destructive(subject)
        if action == "allow" and not destructive:
            return Authorization(True, reason)
        shown = f"`{_short(subject)}`" if subject else tool.name
        if destructive:
            why = f"{shown} is destructive and needs a human's approval"
        else:
            why = (
                f"{tool.name} {shown} needs a human's approval ({reason})"
                if subject
                else (f"{tool.name} needs a human's approval ({reason})")
            )
        if self.approver is None:
            return Authorization(False, f"refused: {why}; no human is available in this headless run")
        request = PermissionRequest(tool.name, subject, dict(args), destructive, why)
        answer = await self.approver.ask(request)
        if answer == "reject":
            rejected = f"{tool.name} {shown}" if subject else tool.name  # not "workflow workflow"
            return Authorization(False, f"refused: the user rejected {rejected}")
        if answer == "allow_always" and not destructive:
            self.session_rules.append(
                PermissionRule(tool=tool.name, pattern=glob.escape(subject) or "*", action="allow")
            )
        return Authorization(True, f"approved by the user ({answer})", _mint(tool.name, subject))

    async def _ask_human(self, tool: Tool, args: dict[str, Any], subject: str, what: str) -> Authorization:
        """A call only a human's answer can allow, in every mode: a token for ``subject`` or a refusal."""
        why = f"{tool.name}: {what} and needs a human's approval"
        if self.approver is None:
            return Authorization(False, f"refused: {why}; no human is available in this headless run")
        answer = await self.approver.ask(PermissionRequest(tool.name, subject, dict(args), True, why))
        if answer == "reject":
            return Authorization(False, f"refused: the user rejected {tool.name} ({what})")
        return Authorization(True, f"approved by the user ({answer})", _mint(tool.name, subject))
