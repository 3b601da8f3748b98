"""Permission policy: mode defaults, rules (last match wins), asking a human, headless refusal,
destructive commands and approval tokens."""

from __future__ import annotations

import pytest

from loopcraft.agent.permissions import (
    PLAN_REASON,
    ApprovalToken,
    PermissionPolicy,
    PermissionRequest,
    is_destructive,
)
from loopcraft.agent.tools.base import Tool
from loopcraft.agent.tools.bash import BashTool
from loopcraft.agent.tools.edit import EditTool
from loopcraft.agent.tools.fs import ReadTool, WriteTool
from loopcraft.agent.tools.search import GrepTool
from loopcraft.config import AgentConfig, PermissionRule

READ, WRITE, EDIT, BASH, GREP = ReadTool(), WriteTool(), EditTool(), BashTool(), GrepTool()


class Human:
    """A scripted human: answers in order and records what was asked."""

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.asked: list[PermissionRequest] = []

    async def ask(self, request: PermissionRequest):
        self.asked.append(request)
        return self.answers.pop(0)


def policy(mode=None, rules=(), approver=None) -> PermissionPolicy:
    config = AgentConfig(permissions=[PermissionRule(**r) for r in rules])
    return PermissionPolicy(config, approver=approver, mode=mode)


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("default", {"read": "allow", "grep": "allow", "write": "ask", "edit": "ask", "bash": "ask"}),
        (
            "accept-edits",
            {"read": "allow", "grep": "allow", "write": "allow", "edit": "allow", "bash": "ask"},
        ),
        ("plan", {"read": "allow", "grep": "allow", "write": "deny", "edit": "deny", "bash": "deny"}),
        ("yolo", {"read": "allow", "grep": "allow", "write": "allow", "edit": "allow", "bash": "allow"}),
    ],
)
def test_mode_defaults(mode, expected) -> None:
    p = policy(mode)
    args = {"path": "a.py", "command": "ls"}
    got = {tool.name: p.decide(tool, args)[0] for tool in (READ, GREP, WRITE, EDIT, BASH)}
    assert got == expected


def test_plan_mode_reason_and_rules_cannot_lift_it() -> None:
    p = policy("plan", rules=[{"tool": "*", "pattern": "*", "action": "allow"}])
    assert p.decide(BASH, {"command": "ls"}) == ("deny", PLAN_REASON)
    assert p.decide(READ, {"path": "x"})[0] == "allow"


def test_mode_comes_from_config_and_is_settable() -> None:
    p = PermissionPolicy(AgentConfig(permission_mode="accept-edits"))
    assert p.mode == "accept-edits"
    p.mode = "plan"
    assert p.decide(WRITE, {"path": "a"})[0] == "deny"


LAST_MATCH_RULES = [
    {"tool": "bash", "pattern": "*", "action": "deny"},
    {"tool": "bash", "pattern": "pytest*", "action": "allow"},
    {"tool": "bash", "pattern": "pytest --pdb*", "action": "deny"},
]
PATH_RULES = [
    {"tool": "write", "pattern": "docs/*", "action": "allow"},
    {"tool": "*", "pattern": "secrets/*", "action": "deny"},
    {"tool": "read", "pattern": "*.env", "action": "ask"},
]


@pytest.mark.parametrize(
    ("rules", "tool", "args", "expected"),
    [
        (LAST_MATCH_RULES, BASH, {"command": "make"}, "deny"),
        (LAST_MATCH_RULES, BASH, {"command": "pytest -q tests"}, "allow"),
        (LAST_MATCH_RULES, BASH, {"command": "pytest --pdb tests"}, "deny"),
        (PATH_RULES, WRITE, {"path": "docs/guide/intro.md"}, "allow"),
        (PATH_RULES, WRITE, {"path": "./docs/a.md"}, "allow"),
        (PATH_RULES, WRITE, {"path": "src/a.py"}, "ask"),
        (PATH_RULES, READ, {"path": "secrets/key.pem"}, "deny"),
        (PATH_RULES, READ, {"path": "prod.env"}, "ask"),
        (PATH_RULES, GREP, {"pattern": "x"}, "allow"),  # subject defaults to "."
    ],
)
def test_rules_last_match_wins_on_commands_paths_and_tool_globs(
    rules: list[dict[str, str]], tool: Tool, args: dict[str, str], expected: str
) -> None:
    assert policy("default", rules).decide(tool, args)[0] == expected


def test_yolo_still_honours_deny_rules() -> None:
    p = policy("yolo", [{"tool": "bash", "pattern": "curl*", "action": "deny"}])
    assert p.decide(BASH, {"command": "curl example.com"})[0] == "deny"


@pytest.mark.parametrize(
    "command",
    [
        "rm -rf build",
        "cd x && rm -fr /tmp/y",
        "rm -r dist",
        "git push --force origin main",
        "git push -f",
        "git reset --hard HEAD~1",
        "git clean -fdx",
        "git branch -D feature",
        "psql -c 'drop table users'",
        'sqlite3 app.db "DROP TABLE users"',
        "rm --recursive --force build",
        "rm -R x -f",
        "dd if=/dev/zero of=/dev/sda",
    ],
)
def test_destructive_commands_detected(command: str) -> None:
    assert is_destructive(command, AgentConfig().destructive_commands)


@pytest.mark.parametrize(
    "command", ["ls -la", "rm notes.txt", "git push origin main", "git branch -d done", "pytest"]
)
def test_ordinary_commands_not_destructive(command: str) -> None:
    assert not policy().is_destructive(command)


def test_destructive_list_extends_and_cannot_empty_the_builtin_checks() -> None:
    p = PermissionPolicy(AgentConfig(destructive_commands=[r"\bterraform\s+destroy\b"]))
    assert p.is_destructive("terraform destroy -auto-approve")
    assert p.is_destructive("rm -rf build")
    assert PermissionPolicy(AgentConfig(destructive_commands=[])).is_destructive("git clean -d -f")


async def test_allow_needs_no_human() -> None:
    auth = await policy("default").authorize(READ, {"path": "a.py"})
    assert auth.allowed and auth.token is None


async def test_ask_headless_is_refused_with_reason() -> None:
    auth = await policy("default").authorize(BASH, {"command": "make test"})
    assert not auth.allowed
    assert auth.reason.startswith("refused: bash `make test` needs a human's approval")
    assert auth.reason.endswith("no human is available in this headless run")


async def test_deny_is_refused_without_asking() -> None:
    human = Human()
    auth = await policy("plan", approver=human).authorize(EDIT, {"path": "a.py"})
    assert not auth.allowed and auth.reason == f"refused: {PLAN_REASON}"
    assert human.asked == []


async def test_ask_allow_once_mints_token_and_asks_again_next_time() -> None:
    human = Human("allow_once", "reject")
    p = policy("default", approver=human)
    auth = await p.authorize(BASH, {"command": "make test"})
    assert auth.allowed and auth.token is not None and auth.token.allows("bash", "make test")
    assert not auth.token.allows("bash", "make deploy")
    again = await p.authorize(BASH, {"command": "make test"})
    assert not again.allowed and "rejected" in again.reason
    assert [r.subject for r in human.asked] == ["make test", "make test"]
    assert human.asked[0].destructive is False


async def test_allow_always_adds_a_session_rule() -> None:
    human = Human("allow_always")
    p = policy("default", approver=human)
    assert (await p.authorize(WRITE, {"path": "src/[x].py"})).allowed
    assert (await p.authorize(WRITE, {"path": "src/[x].py"})).allowed
    assert len(human.asked) == 1
    assert p.decide(WRITE, {"path": "src/x.py"})[0] == "ask"  # the rule is for that exact path


async def test_destructive_needs_human_even_in_yolo_and_with_allow_rule() -> None:
    rules = [{"tool": "bash", "pattern": "*", "action": "allow"}]
    headless = policy("yolo", rules)
    auth = await headless.authorize(BASH, {"command": "git reset --hard"})
    assert not auth.allowed
    assert auth.reason == (
        "refused: `git reset --hard` is destructive and needs a human's approval; "
        "no human is available in this headless run"
    )
    human = Human("allow_always", "reject")
    p = policy("yolo", rules, approver=human)
    ok = await p.authorize(BASH, {"command": "git reset --hard"})
    assert ok.allowed and ok.token is not None and human.asked[0].destructive
    # "always" does not stick for destructive commands: the next one asks again.
    no = await p.authorize(BASH, {"command": "git reset --hard"})
    assert not no.allowed and len(human.asked) == 2


def test_tokens_are_only_minted_here() -> None:
    with pytest.raises(ValueError):
        ApprovalToken("bash", "rm -rf /", "forged")
