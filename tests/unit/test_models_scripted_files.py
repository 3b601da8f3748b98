"""Scripted model scripts: parsing, validation errors, turn selection and file resolution."""

from __future__ import annotations

from pathlib import Path

import pytest

from loopcraft.config import Config, ModelOptions
from loopcraft.errors import ScriptError
from loopcraft.models.scripted import (
    BUILTIN_SCRIPTS,
    EXHAUSTED_MARK,
    Script,
    Turn,
    load_script,
    parse_script,
    register_script,
    script_path_for,
    unregister_script,
)
from tests.conftest import one_line_error

SAMPLE = """
pace: 0.0
chunk_size: 4
stages:
  "scout*":
    - tool_calls: [{name: read, arguments: {path: README.md}}]
    - text: "Mapped."
  "review-*":
    - json: {verdict: approve, issues: []}
default:
  - text: "Done."
"""


def test_parse_turns_and_glob_selection() -> None:
    script = parse_script(SAMPLE, "sample.yaml")
    assert script.turn("scout-main", 0).tool_calls[0].name == "read"
    assert script.turn("scout", 1).text == "Mapped."
    exhausted = script.turn("scout", 2, "sample").text or ""
    assert EXHAUSTED_MARK in exhausted and "scripted/sample" in exhausted
    assert "--model anthropic/claude-sonnet-4-5" in exhausted and "/model" in exhausted
    assert script.turn("review-1", 0).body() == '{"verdict": "approve", "issues": []}'
    assert script.turn("synthesis", 0).text == "Done."


REPLIES = """
default:
  - text: "Hello."
replies:
  - match: "run .*demo"
    stage: "chat"
    turns:
      - tool_calls: [{name: workflow, arguments: {action: run, name: demo}}]
      - text: "Started."
"""


def _user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def _assistant(text: str = "x") -> dict[str, str]:
    return {"role": "assistant", "content": text}


def test_a_reply_matches_the_latest_user_message_and_counts_from_it() -> None:
    script = parse_script(REPLIES, "replies.yaml")
    history = [_user("hi"), _assistant(), _user("Please RUN the demo workflow")]
    turn, index = script.turn_for("chat", history, "r")
    assert index == 0 and turn.tool_calls[0].arguments == {"action": "run", "name": "demo"}
    after_tool = [*history, _assistant(), {"role": "tool", "content": "started"}]
    assert script.turn_for("chat", after_tool, "r")[0].text == "Started."
    done = [*after_tool, _assistant()]
    assert EXHAUSTED_MARK in (script.turn_for("chat", done, "r")[0].text or "")
    # another stage, or a message that does not match: the ordinary turns by assistant count
    assert script.turn_for("scout", history, "r")[0].text != "Started."
    assert script.turn_for("chat", [_user("hello")], "r")[0].text == "Hello."
    assert EXHAUSTED_MARK in (script.turn_for("chat", [*history[:2], _user("thanks")], "r")[0].text or "")


def test_a_bad_reply_regex_is_a_script_error() -> None:
    script = parse_script('replies: [{match: "(", turns: [{text: x}]}]', "bad.yaml")
    with pytest.raises(ScriptError, match=r"bad regex"):
        script.turn_for("chat", [_user("anything")], "bad")


def test_invalid_json_turn_is_not_parseable() -> None:
    import json

    turn = Turn.model_validate({"json": {"a": 1, "b": [1, 2]}, "invalid_json": True})
    with pytest.raises(json.JSONDecodeError):
        json.loads(turn.body())


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("stages: {a: [{txt: hi}]}", "stages.a.0.txt: unknown key"),
        ("default: [{faults: [{kind: explode}]}]", "default.0.faults.0.kind"),
        ("chunk_size: 0", "chunk_size"),
        ("stages: [unclosed", "not valid YAML/JSON at line 1"),
        ("- just a list", "expected a mapping"),
    ],
)
def test_malformed_scripts_give_one_line_errors(text: str, fragment: str) -> None:
    message = one_line_error(ScriptError, lambda: parse_script(text, "bad.yaml"))
    assert message.startswith("script error: bad.yaml: ") and fragment in message


def test_missing_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ScriptError, match=r"script error: .*nope.yaml: file not found"):
        load_script(tmp_path / "nope.yaml")


def test_load_reloads_when_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text('{"default": [{"text": "one"}]}')
    assert load_script(path).turn("x", 0).text == "one"
    path.write_text('{"default": [{"text": "two!"}]}')
    assert load_script(path).turn("x", 0).text == "two!"


def test_resolution_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path
    repo_script = root / ".loopcraft" / "scripts" / "demo.yml"
    repo_script.parent.mkdir(parents=True)
    repo_script.write_text("default: [{text: repo}]")
    env_script = tmp_path / "env.yaml"
    configured = Config(models={"scripted/demo": ModelOptions(script="conf.yaml")})

    assert script_path_for("demo", Config(), tmp_path / "empty") == BUILTIN_SCRIPTS / "demo.yaml"
    assert script_path_for("demo", Config(), root) == repo_script
    monkeypatch.setenv("LOOPCRAFT_SCRIPT", str(env_script))
    assert script_path_for("demo", Config(), root) == env_script.resolve()
    assert script_path_for("demo:high", configured, root) == root / "conf.yaml"
    register_script("demo", Script())
    try:
        assert script_path_for("demo", configured, root) is None
    finally:
        unregister_script("demo")


def test_unknown_script_name_is_one_line_error(tmp_path: Path) -> None:
    assert "no script for scripted/ghost" in one_line_error(
        ScriptError, lambda: script_path_for("ghost", Config(), tmp_path)
    )


def test_builtin_demo_script_is_valid() -> None:
    script = load_script(BUILTIN_SCRIPTS / "demo.yaml")
    for stage in ("scout", "review-correctness", "synthesis", "plan", "implement", "chat"):
        assert script.turns_for(stage), stage
    assert script.turns_for("chat") == script.default
