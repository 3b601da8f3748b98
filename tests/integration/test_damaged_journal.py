"""Issue 20 items 3 and 4: the journal contains its damage and transcripts render tolerantly.

Real CLI subprocesses in temp git repos; the journal is a real SQLite file damaged by the test
(``sqlite3`` UPDATE on the file), transcripts are damaged by writing bytes into them."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
import yaml

from tests.conftest import make_git_repo
from tests.integration.test_cli_basics import lc

FLOWS = """
from loopcraft import Context, workflow


@workflow(description="one task")
async def one(ctx: Context, topic: str = "x") -> str:
    return (await ctx.task("draft", prompt=f"Draft about {topic}")).text


@workflow(description="one stage, a gate, the stage again")
async def gated(ctx: Context) -> str:
    stage = ctx.stage("chatty")
    first = (await stage.prompt("first")).text
    await ctx.ui.confirm("Go on?")
    return first + (await stage.prompt("second")).text
"""

SCRIPT = {"default": [{"text": "an answer"}], "stages": {"draft": [{"text": "a draft"}]}}


def _repo(path: Path) -> Path:
    repo = make_git_repo(path)
    (repo / ".loopcraft" / "workflows").mkdir(parents=True)
    (repo / ".loopcraft" / "workflows" / "flows.py").write_text(FLOWS)
    (repo / ".loopcraft" / "scripts").mkdir()
    (repo / ".loopcraft" / "scripts" / "t.yaml").write_text(yaml.safe_dump(SCRIPT))
    (repo / ".loopcraft" / "config.toml").write_text('model = "scripted/t"\n')
    return repo


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A repo with two completed runs of ``one`` (made once; each test copies it)."""
    repo = _repo(tmp_path_factory.mktemp("template") / "repo")
    env = {  # module scope: before the autouse offline environment of each test
        "LOOPCRAFT_TRUST": "1",
        "LOOPCRAFT_HOME": str(tmp_path_factory.mktemp("home")),
        "LOOPCRAFT_NO_OLLAMA_PROBE": "1",
    }
    ids = []
    for topic in ("a", "b"):
        out = lc("run", "one", "-i", f"topic={topic}", "--json", cwd=repo, env=env)
        assert out.returncode == 0, out.stderr
        ids.append(json.loads(out.stdout)["id"])
    return repo, ids


@pytest.fixture
def runs_repo(two_runs: tuple[Path, list[str]], tmp_path: Path) -> tuple[Path, str, str]:
    """A fresh copy of the two-run repo: (repo, the run the test damages, the intact run)."""
    source, ids = two_runs
    repo = tmp_path / "repo"
    shutil.copytree(source, repo)
    return repo, ids[0], ids[1]


def _damage(repo: Path, sql: str, *params: object) -> None:
    conn = sqlite3.connect(repo / ".loopcraft" / "loopcraft.db")
    with conn:
        conn.execute(sql, params)
    conn.close()


def _one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


@pytest.mark.parametrize(
    ("column", "value", "named"),
    [
        ("inputs", "{not json", "runs.inputs is not JSON"),
        ("usage", "[1,", "runs.usage is not JSON"),
        ("output", "x", "runs.output is not JSON"),
        ("created", "yesterday", "runs.created is not a time"),
        ("status", "bogus", "runs.status 'bogus' is not a run state"),
    ],
)
def test_a_damaged_run_cell_is_listed_as_damaged_and_the_other_runs_list_normally(
    runs_repo: tuple[Path, str, str], column: str, value: str, named: str
) -> None:
    repo, bad, good = runs_repo
    _damage(repo, f"UPDATE runs SET {column} = ? WHERE id = ?", value, bad)

    listed = lc("runs", cwd=repo)
    assert listed.returncode == 0 and "Traceback" not in listed.stderr, listed.stderr
    rows = {line.split()[1]: line for line in listed.stdout.splitlines()[1:]}
    assert " damaged " in rows[bad] and named in rows[bad]
    assert " completed " in rows[good]

    data = json.loads(lc("runs", "--json", cwd=repo).stdout)
    by_id = {r["id"]: r for r in data}
    assert by_id[bad]["status"] == "damaged" and any(named in d for d in by_id[bad]["damage"])
    assert by_id[good]["status"] == "completed" and "damage" not in by_id[good]

    for command in (["show", bad], ["show", bad, "--json"], ["resume", bad]):
        out = lc(*command, cwd=repo)
        assert out.returncode == 8, (command, out.stdout, out.stderr)
        line = _one_error_line(out.stderr)
        assert bad in line and named in line and f"loopcraft rm {bad}" in line
    assert lc("show", good, cwd=repo).returncode == 0
    assert lc("stats", cwd=repo).returncode == 0  # the damaged run is left out, the others counted
    steps = sqlite3.connect(repo / ".loopcraft" / "loopcraft.db").execute(
        "SELECT COUNT(*) FROM steps WHERE run_id = ?", (bad,)
    )
    assert steps.fetchone()[0] == 1  # an unknown status is never resumed: nothing ran again


def test_a_damaged_step_output_is_named_by_show_and_resume(runs_repo: tuple[Path, str, str]) -> None:
    repo, bad, good = runs_repo
    _damage(repo, "UPDATE steps SET output = '{' WHERE run_id = ?", bad)
    assert lc("runs", cwd=repo).returncode == 0
    shown = lc("show", bad, cwd=repo)
    assert shown.returncode == 8
    line = _one_error_line(shown.stderr)
    assert "steps.output is not JSON" in line and ":task:draft" in line
    assert lc("show", good, cwd=repo).returncode == 0


def test_a_damaged_run_can_be_removed(runs_repo: tuple[Path, str, str]) -> None:
    repo, bad, good = runs_repo
    _damage(repo, "UPDATE runs SET inputs = '{' WHERE id = ?", bad)
    assert lc("rm", bad, cwd=repo).returncode == 0
    assert [r["id"] for r in json.loads(lc("runs", "--json", cwd=repo).stdout)] == [good]


def test_doctor_journal_checks_the_whole_file(runs_repo: tuple[Path, str, str]) -> None:
    repo, bad, good = runs_repo
    clean = lc("doctor", "--journal", cwd=repo)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "no damage found" in clean.stdout and "2 runs, 2 steps, 2 transcripts" in clean.stdout

    _damage(repo, "UPDATE runs SET usage = 'nope' WHERE id = ?", bad)
    _damage(repo, "UPDATE steps SET output = '[' WHERE run_id = ?", good)
    _damage(repo, "UPDATE events SET payload = 'x' WHERE run_id = ? AND seq = 1", good)
    transcript = next((repo / ".loopcraft" / "runs" / good / "stages").glob("*.jsonl"))
    with transcript.open("ab") as f:
        f.write(b"\xff\xfe not utf-8\n")
    report = lc("doctor", "--journal", cwd=repo)
    assert report.returncode == 8 and "Traceback" not in report.stderr, report.stderr
    text = report.stdout
    assert f"run {bad}: runs.usage is not JSON" in text
    assert f"run {good} step root/0:task:draft: steps.output is not JSON" in text
    assert f"events {good} #1: events.payload is not JSON" in text
    assert f"transcript {transcript}: 1 damaged line(s)" in text
    assert "4 problem(s)" in text


def test_show_stage_shows_damaged_lines_in_place_and_counts_them(runs_repo: tuple[Path, str, str]) -> None:
    repo, run, _ = runs_repo
    transcript = next((repo / ".loopcraft" / "runs" / run / "stages").glob("*.jsonl"))
    lines = transcript.read_bytes().split(b"\n")
    assert len(lines) > 5
    lines[2] = b"[1, 2, 3]"  # JSON, but not an object
    lines.insert(3, b"\x80\x81\xff garbage")  # not UTF-8, in the middle
    transcript.write_bytes(b"\n".join(lines))

    shown = lc("show", run, "--stage", "draft", cwd=repo)
    assert shown.returncode == 8, shown.stderr
    assert "Traceback" not in shown.stderr
    assert "[damaged line 3]" in shown.stdout and "[damaged line 4]" in shown.stdout
    assert "a draft" in shown.stdout  # the lines after the damage are still shown
    assert "[status] completed" in shown.stdout
    assert "2 damaged lines" in _one_error_line(shown.stderr)

    raw = lc("show", run, "--stage", "draft", "--raw", cwd=repo)
    assert raw.returncode == 8
    entries = [json.loads(line) for line in raw.stdout.splitlines()]
    assert {"type": "damaged", "line": 3} in entries and entries[-1]["type"] == "status"
    as_json = lc("show", run, "--stage", "draft", "--json", cwd=repo)
    assert as_json.returncode == 8 and {"type": "damaged", "line": 4} in json.loads(as_json.stdout)

    transcript.write_bytes(b"\x00\xff" * 50 + b"\n" + b"\xfe" * 30)  # random bytes only
    noise = lc("show", run, "--stage", "draft", cwd=repo)
    assert noise.returncode == 8 and "[damaged line 1]" in noise.stdout and "Traceback" not in noise.stderr

    transcript.unlink()
    missing = lc("show", run, "--stage", "draft", cwd=repo)
    assert missing.returncode == 4 and not missing.stdout.strip()
    assert "has no transcript" in _one_error_line(missing.stderr) and str(transcript) in missing.stderr


def test_restoring_a_damaged_transcript_makes_the_run_resumable_again(tmp_path: Path) -> None:
    repo = _repo(tmp_path / "repo")
    first = lc("run", "gated", "--gates", "stop", "--json", cwd=repo)
    assert first.returncode == 5, first.stderr  # needs_human at the gate
    run = json.loads(first.stdout)["id"]
    transcript = next((repo / ".loopcraft" / "runs" / run / "stages").glob("*.jsonl"))
    original = transcript.read_bytes()
    lines = original.split(b"\n")
    transcript.write_bytes(b"\n".join([lines[0], b"garbage{", *lines[2:]]))
    assert lc("answer", run, "yes", cwd=repo).returncode == 0

    damaged = lc("resume", run, "--gates", "stop", cwd=repo)
    assert damaged.returncode == 1
    assert "is damaged at line 2" in damaged.stderr and "then resume the run" in damaged.stderr

    transcript.write_bytes(original)  # the advice: restore (or fix) the file, then resume
    again = lc("resume", run, "--gates", "stop", "--json", cwd=repo)
    assert again.returncode == 0, again.stdout + again.stderr
    assert json.loads(again.stdout)["status"] == "completed"
