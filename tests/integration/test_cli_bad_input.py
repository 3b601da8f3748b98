"""Bad input through the real CLI (issue 20, items 1, 2 and 7): refused numbers, broken config
files, non-finite inputs, strict JSON, literal run handles, ``--limit``, the "not in a state for
this" exit code and a token budget smaller than one call. Real subprocesses, real SQLite files."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_git_repo
from tests.integration.test_cli_basics import lc

TYPED = """
from typing import Annotated
from pydantic import Field
from loopcraft import workflow


@workflow(description="typed inputs, no stages")
async def typed(ctx, ratio: float = 0.5, loose: Annotated[float, Field(allow_inf_nan=True)] = 1.0) -> float:
    return ratio
"""
TRUST = {"LOOPCRAFT_TRUST": "1"}


def journal(repo: Path) -> Path:
    return repo / ".loopcraft" / "loopcraft.db"


def one_error_line(out: Any) -> str:
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert "Traceback" not in out.stderr and "unexpected error" not in out.stderr, out.stderr
    return str(lines[0])


def strict_json(text: str) -> Any:
    def refuse(name: str) -> Any:
        raise AssertionError(f"bare {name} in JSON output")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository with the ``typed`` workflow and one completed run of it (so the journal exists);
    shared by the module's tests, none of which may change it."""
    git_repo = make_git_repo(tmp_path_factory.mktemp("bad-input") / "repo")
    (git_repo / ".loopcraft" / "workflows").mkdir(parents=True)
    (git_repo / ".loopcraft" / "workflows" / "typed.py").write_text(TYPED)
    out = lc("run", "typed", "-i", "ratio=0.25", "-i", "loose=nan", cwd=git_repo, env=TRUST)
    assert out.returncode == 0, out.stderr
    return git_repo


def completed_run(repo: Path) -> str:
    """The fixture's run, read from the journal file itself."""
    with contextlib.closing(sqlite3.connect(journal(repo))) as db:
        return str(db.execute("SELECT id FROM runs ORDER BY created DESC LIMIT 1").fetchone()[0])


# -- item 1: numbers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "budget", ["tokens=inf", "tokens=nan", "tokens=1e400", "stages=0.5", "dollars=nan", "tokens=5,tokens=10"]
)
def test_a_bad_budget_is_one_line_exit_2_and_records_nothing(repo: Path, budget: str) -> None:
    before = journal(repo).read_bytes()
    out = lc("run", "typed", "--budget", budget, cwd=repo, env=TRUST)
    assert out.returncode == 2, out.stdout + out.stderr
    line = one_error_line(out)
    assert "--budget" in line and ("must be" in line or "twice" in line), line
    assert journal(repo).read_bytes() == before


def test_resume_with_a_bad_budget_writes_nothing(repo: Path) -> None:
    run_id = completed_run(repo)
    before = journal(repo).read_bytes()
    out = lc("resume", run_id, "--budget", "tokens=inf", cwd=repo, env=TRUST)
    assert out.returncode == 2 and "--budget tokens=inf" in one_error_line(out)
    assert journal(repo).read_bytes() == before


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ("[retry]\nmax_delay = inf\n", "retry.max_delay"),
        ("[agent]\nbash_timeout = 1e400\n", "agent.bash_timeout"),
        ("[agent]\nwall_time = inf\n", "agent.wall_time"),
        ("[engine]\nlease_seconds = inf\n", "engine.lease_seconds"),
        ("[agent]\nmax_turns = 1000000000000000000000000000000\n", "agent.max_turns"),
        ("[engine]\nheartbeat_seconds = 20\nlease_seconds = 10\n", "engine.heartbeat_seconds"),
        ("[retry]\nbase_delay = 30\nmax_delay = 5\n", "retry.max_delay"),
        (
            '[agent]\ndestructive_commands = ["(("]\n',
            "agent.destructive_commands[0]",
        ),  # refused on main already
        ('[agent]\nallow_paths = ["a\\u0000b"]\n', "agent.allow_paths[0]"),
    ],
)
def test_a_bad_config_value_names_file_and_key(git_repo: Path, toml: str, key: str) -> None:
    config = git_repo / ".loopcraft" / "config.toml"
    config.parent.mkdir()
    config.write_text(toml)
    out = lc("runs", cwd=git_repo, env=TRUST)
    assert out.returncode == 2, out.stdout + out.stderr
    line = one_error_line(out)
    assert f"{config}: {key}:" in line and "Value error" not in line, line
    assert not journal(git_repo).exists()


def test_a_bad_environment_number_names_the_variable(git_repo: Path) -> None:
    out = lc("runs", cwd=git_repo, env={"LOOPCRAFT_AGENT__WALL_TIME": "inf"})
    assert out.returncode == 2
    assert "LOOPCRAFT_AGENT__WALL_TIME: agent.wall_time: must be" in one_error_line(out)


# -- item 2: config files ------------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["not-utf8", "directory", "link-loop", "broken-link"])
def test_a_config_file_that_cannot_be_used_is_one_line(git_repo: Path, damage: str) -> None:
    config = git_repo / ".loopcraft" / "config.toml"
    config.parent.mkdir()
    if damage == "not-utf8":
        config.write_bytes(b"model = '\xff\xfe'\n")
    elif damage == "directory":
        config.mkdir()
    elif damage == "link-loop":  # unreadable even for root
        os.symlink(config, config)
    else:
        os.symlink(git_repo / "nowhere.toml", config)
    out = lc("runs", cwd=git_repo)
    assert out.returncode == 2, out.stdout + out.stderr
    assert str(config) in one_error_line(out)


# -- item 1/7: inputs and JSON ---------------------------------------------------------------------


def test_non_finite_inputs_are_refused_and_json_is_strict(repo: Path) -> None:
    before = journal(repo).read_bytes()
    for value in ("nan", "inf", "1e400", "NaN"):
        out = lc("run", "typed", "-i", f"ratio={value}", cwd=repo, env=TRUST)
        assert out.returncode == 2 and "'ratio'" in one_error_line(out)
    assert journal(repo).read_bytes() == before
    run_id = completed_run(repo)  # its `loose` input is NaN (the annotation allows it)
    listed = strict_json(lc("runs", "--json", cwd=repo, env=TRUST).stdout)
    assert listed[0]["inputs"] == {"ratio": 0.25, "loose": None}
    shown = strict_json(lc("show", run_id, "--json", cwd=repo, env=TRUST).stdout)
    assert shown["run"]["inputs"]["loose"] is None


# -- item 7: the CLI ------------------------------------------------------------------------------


def test_a_group_without_a_command_is_one_line(git_repo: Path) -> None:
    out = lc("mcp", cwd=git_repo)
    assert out.returncode == 2
    line = one_error_line(out)
    assert "Usage" not in line and line.endswith("see loopcraft mcp --help"), line


def test_limit_must_be_at_least_one(repo: Path) -> None:
    for limit in ("-5", "0"):
        out = lc("runs", "--limit", limit, cwd=repo, env=TRUST)
        assert out.returncode == 2 and "--limit" in one_error_line(out)
    assert lc("runs", "--limit", "1", cwd=repo, env=TRUST).returncode == 0


def test_run_handles_are_literal_and_case_sensitive(repo: Path) -> None:
    run_id = completed_run(repo)
    short = run_id.rsplit("-", 1)[1]
    assert lc("show", short, cwd=repo, env=TRUST).returncode == 0
    for handle in (
        run_id[:4] + "____",
        run_id[:4] + "%",
        short.upper() if short.upper() != short else "ZZZZZZ",
    ):
        out = lc("show", handle, cwd=repo, env=TRUST)
        assert out.returncode == 4, (handle, out.stderr)


@pytest.mark.parametrize(
    "args",
    [
        ("kill", "{run}"),
        ("pause", "{run}"),
        ("interrupt", "{run}"),
        ("steer", "{run}", "typed", "go on"),
        ("follow-up", "{run}", "typed", "go on"),
        ("answer", "{run}", "yes"),
        ("resume", "{run}"),
    ],
)
def test_acting_on_a_finished_run_is_exit_10(repo: Path, args: tuple[str, ...]) -> None:
    run_id = completed_run(repo)
    before = journal(repo).read_bytes()
    out = lc(*(a.format(run=run_id) for a in args), cwd=repo, env=TRUST)
    assert out.returncode == 10, out.stdout + out.stderr
    assert run_id in one_error_line(out)
    assert journal(repo).read_bytes() == before


def test_a_token_budget_smaller_than_one_call_is_enforced(git_repo: Path, tmp_path: Path) -> None:
    calls = tmp_path / "calls.jsonl"
    out = lc(
        "run", "hello", "--budget", "tokens=10", cwd=git_repo, env={"LOOPCRAFT_SCRIPTED_CALL_LOG": str(calls)}
    )
    assert out.returncode == 6, out.stdout + out.stderr
    assert "budget_exceeded" in out.stdout and "tokens=10" in out.stderr
    logged = [json.loads(line) for line in calls.read_text().splitlines()]
    assert logged and all(c["max_tokens"] is not None and c["max_tokens"] <= 10 for c in logged)
