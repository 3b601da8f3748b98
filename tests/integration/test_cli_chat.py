"""``loopcraft chat`` headless (issue 13): the prompt from -p or stdin, --json holding only the
JSON object, --continue carrying a session on, --max-turns as exit 6, and bad flags as one line."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from loopcraft.cli import NO_TERMINAL


def _chat(repo: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "loopcraft", "chat", "--model", "scripted/demo", *args],
        cwd=repo,
        text=True,
        capture_output=True,
        input=stdin if stdin is not None else "",
        timeout=120,
    )


def test_a_prompt_on_stdin_runs_and_json_is_the_only_output(git_repo: Path) -> None:
    done = _chat(git_repo, "--json", stdin="hello\n")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert "offline demo model" in data["answer"] and data["runs"] == []
    assert set(data) >= {"answer", "session_id", "usage", "cost", "runs", "status"}
    assert data["usage"]["output_tokens"] > 0


def test_continue_carries_the_latest_session_on(git_repo: Path) -> None:
    first = json.loads(_chat(git_repo, "-p", "hello", "--json").stdout)
    again = _chat(git_repo, "-p", "hello again", "--continue", "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["session_id"] == first["session_id"]
    named = _chat(git_repo, "-p", "once more", "--session", first["session_id"][:17], "--json")
    assert json.loads(named.stdout)["session_id"] == first["session_id"]


def test_plain_output_is_the_answer(git_repo: Path) -> None:
    done = _chat(git_repo, "-p", "hello")
    assert done.returncode == 0 and "offline demo model" in done.stdout
    assert not done.stdout.lstrip().startswith("{")


def test_bad_flags_and_empty_prompts_are_one_line_exit_2(git_repo: Path) -> None:
    for args, stdin, words in [
        (("-p", "x", "--session", "abc", "--continue"), None, "not both"),
        (("-p", "  "), None, "prompt is empty"),
        ((), "   \n", "no prompt"),
        (("-p", "x", "--permissions", "wild"), None, "--permissions"),
    ]:
        done = _chat(git_repo, *args, stdin=stdin)
        assert done.returncode == 2, (args, done.stderr)
        assert words in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert done.stdout == ""


def test_an_unknown_session_is_exit_4(git_repo: Path) -> None:
    done = _chat(git_repo, "-p", "x", "--session", "nosuch")
    assert done.returncode == 4 and "nosuch" in done.stderr


def test_bare_loopcraft_without_a_terminal_points_at_chat_p() -> None:
    assert "loopcraft chat -p PROMPT" in NO_TERMINAL


def test_max_turns_stops_the_agent_with_exit_6(git_repo: Path) -> None:
    scripts = git_repo / ".loopcraft" / "scripts"
    scripts.mkdir(parents=True)
    (scripts / "turns.yaml").write_text(
        "default:\n  - tool_calls: [{name: read, arguments: {path: README.md}}]\n  - text: done\n"
    )
    (git_repo / "README.md").write_text("hi\n")
    flags = ("-p", "x", "--max-turns", "1", "--permissions", "yolo", "--json")
    done = subprocess.run(
        [sys.executable, "-m", "loopcraft", "chat", "--model", "scripted/turns", *flags],
        cwd=git_repo,
        text=True,
        capture_output=True,
        input="",
        timeout=120,
    )
    assert done.returncode == 6, done.stderr
    data = json.loads(done.stdout)
    assert data["status"] == "budget_exceeded" and "max_turns=1" in data["reason"]


DEMO_SENTENCE = "run the demo workflow and tell me when it needs me"


def test_the_demo_reply_follows_the_workflow_tools_result(git_repo: Path) -> None:
    """Review-10 F4: refused (no --permissions: no one to approve), the demo model still said the
    run was waiting and to press F4; allowed, headless, it said F4 too. Now a refusal says no run
    started and how to allow it, and a waiting run names ``loopcraft answer`` with its handle."""
    refused = _chat(git_repo, "-p", DEMO_SENTENCE)
    assert refused.returncode == 0, refused.stderr
    assert "refused, so no run started" in refused.stdout and "--permissions yolo" in refused.stdout
    assert "F4" not in refused.stdout
    allowed = _chat(git_repo, "-p", DEMO_SENTENCE, "--permissions", "yolo")
    assert allowed.returncode == 0, allowed.stderr
    assert "F4" not in allowed.stdout, allowed.stdout
    found = re.search(r"`loopcraft answer ([0-9a-f]{6}) (\S+) yes`", allowed.stdout)
    assert found is not None, allowed.stdout
    assert f"loopcraft resume {found.group(1)}" in allowed.stdout
