"""Issue 19 finding 5: destructive detection works on the parsed argv, covering every listed variant."""

from __future__ import annotations

from pathlib import Path

import pytest

from loopcraft.agent.permissions import PermissionPolicy
from loopcraft.config import AgentConfig, PermissionRule

VARIANTS = [
    "git clean -d -f",
    "git clean --force",
    "find . -delete",
    "dd if=/dev/zero of=FILE bs=1 count=1",
    "> file",
    "mv x /dev/null",
    "chmod -R 000 .",
    "rm -v -rf x",
    "git -C . reset --hard",
    "git checkout .",
    "git restore .",
    "git push origin +main",
    "git push origin --delete feature",
    "truncate -s 0 file",
    "find . -exec rm {} \\;",
    "shred -u secret",
    "sudo rm -r build",
    "env FOO=1 rm -f x",
    "command rm -rf x",
    "ls | xargs rm",
    "bash -c 'git reset --hard'",
    "echo $(rm -rf x)",
    "true && git branch -D old",
]
# Bash keywords and grouping lead into a simple command that is checked like any other.
KEYWORD_VARIANTS = [
    "if true; then rm -rf x; fi",
    "if false; then :; else rm -rf x; fi",
    "if false; then :; elif true; then rm -rf x; fi",
    "if ! rm -rf x; then :; fi",
    "{ rm -rf x; }",
    "for f in a; do rm -rf $f; done",
    "while true; do rm -rf x; done",
    "until false; do git reset --hard; done",
    "! rm -rf x",
    'eval "rm -rf x"',
    "eval rm -rf x",
    "case x in x) rm -rf x;; esac",
    "(rm -rf x)",
    "select f in a; do rm -rf $f; done",
]
SAFE = ["git status", "rm file.txt", "ls -la", "git restore --staged x", "pytest -q > log.txt", "echo hi"]


@pytest.mark.parametrize("command", VARIANTS)
def test_each_variant_is_destructive(command: str) -> None:
    assert PermissionPolicy(AgentConfig(destructive_commands=[])).is_destructive(command)


@pytest.mark.parametrize("command", KEYWORD_VARIANTS)
def test_commands_behind_bash_keywords_are_destructive(command: str) -> None:
    assert PermissionPolicy(AgentConfig(destructive_commands=[])).is_destructive(command)


@pytest.mark.parametrize(
    "command", ["if true; then echo hi; fi", "for f in rm -rf; do echo $f; done", "case rm in rm) ls;; esac"]
)
def test_keywords_and_loop_words_alone_are_not(command: str) -> None:
    assert not PermissionPolicy(AgentConfig()).is_destructive(command)


@pytest.mark.parametrize(
    ("command", "allowed"),
    [
        ("for f in a b; do pytest $f; done", True),
        ("if true; then pytest; fi", False),  # `true` is not covered by the rule
        ("{ pytest; }", True),
        ("while pytest; do pytest; done", True),
        ("for f in a; do pytest $f; touch MARKER; done", False),
        ('eval "pytest; touch MARKER"', False),
        ("{ pytest; } ; fi", True),
        ("then", False),
    ],
)
def test_allow_rules_see_the_commands_inside_keywords(command: str, allowed: bool) -> None:
    from loopcraft.agent.tools.bash import BashTool

    rule = PermissionRule(tool="bash", pattern="pytest*", action="allow")
    policy = PermissionPolicy(AgentConfig(permissions=[rule]))
    assert (policy.decide(BashTool(), {"command": command})[0] == "allow") is allowed


@pytest.mark.parametrize("command", SAFE)
def test_ordinary_commands_are_not(command: str) -> None:
    assert not PermissionPolicy(AgentConfig()).is_destructive(command)


async def test_each_variant_needs_a_human_in_yolo() -> None:
    from loopcraft.agent.tools.bash import BashTool

    policy = PermissionPolicy(AgentConfig(), mode="yolo")
    for command in VARIANTS:
        auth = await policy.authorize(BashTool(), {"command": command})
        assert not auth.allowed and "destructive" in auth.reason, command


def test_a_bad_destructive_regex_names_its_index() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=r"destructive_commands\.1"):
        AgentConfig(destructive_commands=["ok", "(unclosed"])


def test_a_bad_destructive_regex_in_config_is_one_line_naming_it(tmp_path: Path) -> None:
    from loopcraft.config import load_config
    from loopcraft.errors import ConfigError

    (tmp_path / ".loopcraft").mkdir()
    (tmp_path / ".loopcraft" / "config.toml").write_text('[agent]\ndestructive_commands = ["ok", "(bad"]\n')
    with pytest.raises(
        ConfigError, match=r"agent\.destructive_commands\[1\]: .*not a valid regular expression"
    ):
        load_config(tmp_path)
