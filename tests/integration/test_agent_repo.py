"""The agent on real temporary git repositories, driven by the scripted model: a multi-turn
fix verified by pytest, edit failure and recovery, path escapes, destructive commands."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

from loopcraft.config import AgentConfig
from tests.conftest import make_git_repo
from tests.integration.test_agent_support import (
    AllowOnce,
    EventLog,
    make_agent,
    scripted_model,
    tool_call,
    tool_outputs,
)

CALC = "def add(a, b):\n    return a - b\n\n\ndef double(x):\n    return add(x, x)\n"
TEST_CALC = (
    "from calc import add, double\n\n\ndef test_add():\n    assert add(2, 3) == 5\n\n\n"
    "def test_double():\n    assert double(4) == 8\n"
)
PYTEST = f"{shlex.quote(sys.executable)} -m pytest -q -p no:cacheprovider"


def calc_repo(tmp_path: Path) -> Path:
    repo = make_git_repo(tmp_path / "repo")
    (repo / "calc.py").write_text(CALC)
    (repo / "test_calc.py").write_text(TEST_CALC)
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
    subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "calc"],
        check=True,
    )
    return repo


def _diff_stat(repo: Path) -> str:
    return subprocess.run(["git", "-C", str(repo), "diff", "--stat"], capture_output=True, text=True).stdout


async def test_multi_turn_fix_read_edit_test_answer(tmp_path: Path) -> None:
    repo = calc_repo(tmp_path)
    model = scripted_model(
        [
            {"tool_calls": [tool_call("read", path="calc.py"), tool_call("read", path="test_calc.py")]},
            {
                "text": "add subtracts; fixing.",
                "tool_calls": [
                    tool_call(
                        "edit", path="calc.py", old_string="    return a - b", new_string="    return a + b"
                    )
                ],
            },
            {"tool_calls": [tool_call("bash", command=PYTEST)]},
            {"text": "Fixed add in calc.py; the 2 tests pass."},
        ]
    )
    events = EventLog()
    agent = make_agent(repo, model, on_event=events)
    result = await agent.run("The tests fail. Fix calc.py.")
    assert result.status == "completed" and result.turns == 4 and result.tool_calls == 4
    assert "return a + b" in (repo / "calc.py").read_text()
    outputs = tool_outputs(agent)
    assert "return a - b" in outputs[0] and "def test_double" in outputs[1]
    assert "2 passed" in outputs[3]
    edit_end = next(e for e in events if e.kind == "tool_call_end" and e.name == "edit")
    assert (
        "-    return a - b" in edit_end.metadata["diff"] and "+    return a + b" in edit_end.metadata["diff"]
    )
    diff = _diff_stat(repo)
    assert "calc.py" in diff and "test_calc.py" not in diff


async def test_edit_failure_feedback_then_recovery(tmp_path: Path) -> None:
    repo = calc_repo(tmp_path)
    model = scripted_model(
        [
            {
                "tool_calls": [
                    tool_call(
                        "edit", path="calc.py", old_string="return a minus b", new_string="return a + b"
                    )
                ]
            },
            {
                "tool_calls": [
                    tool_call("edit", path="calc.py", old_string="return a - b", new_string="return a + b")
                ]
            },
            {"tool_calls": [tool_call("bash", command=PYTEST)]},
            {"text": "fixed on the second try"},
        ]
    )
    agent = make_agent(repo, model)
    result = await agent.run("fix add")
    assert result.status == "completed"
    failed, fixed, tests = tool_outputs(agent)
    assert "return a - b" in failed  # the closest lines are shown to the model
    error_results = [e for e in agent.session.read_entries() if e["type"] == "tool_result" and e["is_error"]]
    assert len(error_results) == 1
    assert "edited calc.py" in fixed and "2 passed" in tests


async def test_path_escape_refused(tmp_path: Path) -> None:
    repo = make_git_repo(tmp_path / "repo")
    (tmp_path / "secret.txt").write_text("top secret\n")
    (repo / "link").symlink_to(tmp_path / "secret.txt")
    model = scripted_model(
        [
            {
                "tool_calls": [
                    tool_call("read", path="../secret.txt"),
                    tool_call("read", path=str(tmp_path / "secret.txt")),
                    tool_call("read", path="link"),
                ]
            },
            {"tool_calls": [tool_call("write", path="../evil.txt", content="x")]},
            {"text": "cannot reach outside"},
        ]
    )
    agent = make_agent(repo, model)
    result = await agent.run("read the secret")
    assert result.status == "completed"
    outputs = tool_outputs(agent)
    assert len(outputs) == 4 and all("top secret" not in o for o in outputs)
    assert all("outside" in o.lower() or "escape" in o.lower() for o in outputs), outputs
    assert not (tmp_path / "evil.txt").exists()


def _destructive_model() -> str:
    return scripted_model(
        [
            {"tool_calls": [tool_call("bash", command="rm -rf build")]},
            {"text": "tried to clean the build"},
        ]
    )


async def test_destructive_command_refused_headless(tmp_path: Path) -> None:
    repo = make_git_repo(tmp_path / "repo")
    (repo / "build").mkdir()
    (repo / "build" / "out.o").write_text("x")
    agent = make_agent(repo, _destructive_model(), mode="yolo")  # even yolo needs a human for this
    result = await agent.run("clean the build")
    assert result.status == "completed"
    assert (repo / "build" / "out.o").exists()
    out = tool_outputs(agent)[0]
    assert "destructive" in out and "no human is available" in out


async def test_destructive_command_runs_with_a_human_approval(tmp_path: Path) -> None:
    repo = make_git_repo(tmp_path / "repo")
    (repo / "build").mkdir()
    (repo / "build" / "out.o").write_text("x")
    human = AllowOnce()
    agent = make_agent(
        repo,
        _destructive_model(),
        mode="default",
        approver=human,
        config=AgentConfig(permission_mode="default"),
    )
    result = await agent.run("clean the build")
    assert result.status == "completed"
    assert not (repo / "build").exists()
    assert len(human.asked) == 1 and human.asked[0].destructive and human.asked[0].subject == "rm -rf build"
    assert "[exit code: 0]" in tool_outputs(agent)[0]
