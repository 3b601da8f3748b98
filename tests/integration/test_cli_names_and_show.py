"""Human names and a trustworthy ``show`` (issue 10 items 4, 7 and 8, the CLI side): a run's short
handle works wherever its id does and is listed; ``show`` names stages by their path, reports a
running run's live totals and renders a stage's transcript (``--raw`` for the JSONL); a gate's and a
paused stage's durations read the same in ``run``, ``resume`` and ``show``; outside git loopcraft
says once what will not work and goes on. Real subprocesses in real temp repos, scripted model."""

from __future__ import annotations

import json
import re
import signal
from pathlib import Path
from typing import Any

import yaml

from tests.integration.test_cli_basics import lc
from tests.integration.test_control_processes import _cli, _owner, _run_id, _stage, _until

FLOWS = """
from loopcraft import Context, workflow


@workflow(description="inner")
async def inner(ctx: Context) -> str:
    return (await ctx.task("inner-stage", prompt="look inside")).text


@workflow(description="outer")
async def outer(ctx: Context) -> str:
    first = await ctx.task("outer-stage", prompt="outer")
    return first.text + await ctx.workflow(inner)


@workflow(description="one long-lived stage prompted twice")
async def chat(ctx: Context) -> str:
    stage = ctx.stage("chatty")
    return (await stage.prompt("first")).text + (await stage.prompt("second")).text


@workflow(description="a gate between two stages")
async def gated(ctx: Context) -> str:
    a = await ctx.task("worker", prompt="work")
    ok = await ctx.ui.confirm("Ship it?")
    b = await ctx.task("final", prompt="finish")
    return f"{a.text}|{ok}|{b.text}"
"""

SCRIPT = {
    "stages": {
        "outer-stage": [{"text": "out", "usage": {"input": 100, "output": 10}}],
        "inner-stage": [
            {
                "text": "Let me read it.",
                "tool_calls": [{"name": "read", "arguments": {"path": "README.md"}}],
                "usage": {"input": 200, "output": 20},
            },
            {"text": "inner done", "usage": {"input": 100, "output": 10}},
        ],
        "final": [{"text": "final done", "usage": {"input": 50, "output": 5}}],
        "chatty": [{"text": "one"}, {"text": "two"}],
    }
}


def _paced_worker(turns: int) -> list[dict[str, object]]:
    steps: list[dict[str, object]] = [
        {
            "text": "working on the next step now",
            "tool_calls": [{"name": "grep", "arguments": {"pattern": f"step{i}"}}],
            "usage": {"input": 100, "output": 10},
        }
        for i in range(turns)
    ]
    return [*steps, {"text": "worker done", "usage": {"input": 100, "output": 10}}]


def _install(repo: Path, worker_turns: int = 0, pace: float = 0.0) -> Path:
    (repo / ".loopcraft" / "workflows").mkdir(parents=True, exist_ok=True)
    (repo / ".loopcraft" / "scripts").mkdir(parents=True, exist_ok=True)
    (repo / ".loopcraft" / "workflows" / "flows.py").write_text(FLOWS)
    script = {**SCRIPT, "pace": pace, "chunk_size": 4}
    script["stages"] = {**SCRIPT["stages"], "worker": _paced_worker(worker_turns)}
    (repo / ".loopcraft" / "scripts" / "s.yaml").write_text(yaml.safe_dump(script))
    return repo


def _run_json(repo: Path, *args: str) -> dict[str, object]:
    out = lc("run", *args, "--model", "scripted/s", "--json", "--gates", "stop", cwd=repo)
    assert out.returncode in (0, 5), out.stderr
    return dict(json.loads(out.stdout))


def _tokens(entry: dict[str, Any]) -> int:
    return int(entry["usage"]["input_tokens"]) + int(entry["usage"]["output_tokens"])


# ----- item 4: short handles, paths -------------------------------------------------------------


def test_the_short_handle_works_wherever_a_run_id_does(git_repo: Path) -> None:
    repo = _install(git_repo)
    run = _run_json(repo, "gated")
    run_id, short = str(run["id"]), str(run["short"])
    assert run["status"] == "needs_human" and short == run_id.rsplit("-", 1)[1] and len(short) == 6

    listing = lc("runs", cwd=repo)
    assert listing.stdout.splitlines()[0].split()[:2] == ["SHORT", "RUN"]
    assert listing.stdout.splitlines()[1].split()[:2] == [short, run_id]
    listed = json.loads(lc("runs", "--json", cwd=repo).stdout)[0]
    assert (listed["id"], listed["short"]) == (run_id, short)

    shown = lc("show", short, cwd=repo)
    assert shown.returncode == 0 and run_id in shown.stdout, shown.stderr
    prompts = json.loads(lc("prompts", "--run", short, "--json", cwd=repo).stdout)
    assert [p["run_id"] for p in prompts] == [run_id]
    assert lc("prompts", cwd=repo).stdout.split()[:2] == [short, prompts[0]["id"]]  # listed by handle
    answered = lc("answer", short, "yes", cwd=repo)
    assert answered.returncode == 0 and f"→ yes · run {short}; resume with: loopcraft resume {short}" in (
        answered.stdout
    ), answered.stderr
    resumed = lc("resume", short, "--gates", "stop", cwd=repo)
    assert resumed.returncode == 0 and f"run {run_id} (gated) completed" in resumed.stdout, resumed.stderr
    killed = lc("kill", short, cwd=repo)  # reaches the run (and is refused: it has completed)
    assert killed.returncode == 10 and f"cannot kill run {run_id}" in killed.stderr


def test_an_ambiguous_handle_is_one_line_listing_the_candidates(git_repo: Path) -> None:
    repo = _install(git_repo)
    first_id = str(_run_json(repo, "outer")["id"])
    second = str(_run_json(repo, "outer")["id"])
    prefix = next(first_id[:i] for i in range(len(first_id), 0, -1) if second.startswith(first_id[:i]))
    assert len(prefix) >= 4
    out = lc("show", prefix, cwd=repo)
    assert out.returncode == 2, out.stderr  # bad input, not "not found"
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "ambiguous" in lines[0], out.stderr
    assert first_id.rsplit("-", 1)[1] in lines[0] and second.rsplit("-", 1)[1] in lines[0]
    missing = lc("show", "zzzzzz", cwd=repo)
    assert missing.returncode == 4 and "unknown run 'zzzzzz'" in missing.stderr


def test_show_names_stages_by_their_path_never_by_step_keys(git_repo: Path) -> None:
    repo = _install(git_repo)
    run_id = str(_run_json(repo, "outer")["id"])
    shown = lc("show", run_id, cwd=repo)
    assert shown.returncode == 0, shown.stderr
    assert "root/" not in shown.stdout and ":task:" not in shown.stdout, shown.stdout
    assert any(
        line.strip().startswith("✓ outer › inner › inner-stage  (completed")
        for line in shown.stdout.splitlines()
    )
    nodes = json.loads(lc("show", run_id, "--json", cwd=repo).stdout)["graph"]["nodes"]
    assert [(n["key"], n["path"]) for n in nodes] == [
        ("root/0:task:outer-stage", "outer › outer-stage"),
        ("root/1:workflow:inner", "outer › inner"),
    ]
    assert nodes[1]["children"][0]["path"] == "outer › inner › inner-stage"


# ----- item 7: show --stage, --raw, live totals, durations -------------------------------------


def test_show_stage_renders_a_readable_transcript_and_raw_jsonl(git_repo: Path) -> None:
    repo = _install(git_repo)
    run_id = str(_run_json(repo, "outer")["id"])
    for name in ("inner-stage", "outer › inner › inner-stage", "inner > inner-stage"):
        shown = lc("show", run_id, "--stage", name, cwd=repo)
        assert shown.returncode == 0, (name, shown.stderr)
        lines = shown.stdout.splitlines()
        assert lines[0].startswith("stage outer › inner › inner-stage"), lines
        assert "[user] look inside" in lines
        assert "[assistant] Let me read it." in lines
        assert "  → read(path='README.md')" in lines
        assert any(line.startswith("  ← read: ") for line in lines), lines
        assert "[assistant] inner done" in lines
        assert lines[-1].startswith("── completed · ") and "330 tokens" in lines[-1], lines
        assert '"type"' not in shown.stdout  # not JSON
    raw = lc("show", run_id, "--stage", "inner-stage", "--raw", cwd=repo)
    assert raw.returncode == 0, raw.stderr
    entries = [json.loads(line) for line in raw.stdout.splitlines()]
    assert entries[0]["type"] == "header" and any(e["type"] == "tool_result" for e in entries)
    unknown = lc("show", run_id, "--stage", "nope", cwd=repo)
    assert unknown.returncode == 4 and "outer › inner › inner-stage" in unknown.stderr


def test_show_stage_of_a_long_lived_stage_is_its_whole_conversation(git_repo: Path) -> None:
    repo = _install(git_repo)
    run_id = str(_run_json(repo, "chat")["id"])
    shown = lc("show", run_id, "--stage", "chatty", cwd=repo)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert [x for x in lines if x.startswith(("[user]", "[assistant]"))] == [
        "[user] first",
        "[assistant] one",
        "[user] second",
        "[assistant] two",
    ]


def test_show_of_a_running_run_reports_live_totals(git_repo: Path, tmp_path: Path) -> None:
    repo = _install(git_repo, worker_turns=40, pace=0.05)
    owner = _owner(repo, tmp_path, "run", "gated", "--model", "scripted/s", "--gates", "wait")
    try:
        run_id = _run_id(repo)

        def usage_entries() -> list[dict[str, Any]]:
            files = list((repo / ".loopcraft" / "runs" / run_id / "stages").glob("*worker*.jsonl"))
            if not files:
                return []
            text = files[0].read_text().split("\n")
            return [json.loads(x) for x in text if '"type": "usage"' in x]

        _until(lambda: len(usage_entries()) >= 2)
        _cli(repo, tmp_path, "pause", run_id, "--stage", "worker")
        _until(lambda: _stage(repo, run_id, "worker") == "paused")
        spent = sum(_tokens(e) for e in usage_entries())
        assert spent >= 220

        data = json.loads(_cli(repo, tmp_path, "show", run_id, "--json").stdout)
        assert data["run"]["usage"]["input_tokens"] + data["run"]["usage"]["output_tokens"] == spent
        assert data["graph"]["nodes"][0]["tokens"] == spent
        human = _cli(repo, tmp_path, "show", run_id).stdout
        assert f"· {spent:,} tokens ·" in human.splitlines()[0], human
        assert f"{spent:,} tok" in human
        _cli(repo, tmp_path, "kill", run_id)
        assert owner.wait(timeout=30) == 7
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()


_RUN_LINE = r"  ✓ {name}  completed (\S+)"
_SHOW_LINE = r"✓ (?:gated › )?{name}  \(completed, ([^,)]+)"  # the path, or (before) the bare name


def _duration(pattern: str, name: str, text: str) -> str:
    found = re.findall(pattern.format(name=re.escape(name)), text)
    assert len(found) == 1, (name, text)
    return str(found[0])


def test_a_gate_and_a_paused_stage_read_the_same_in_run_resume_and_show(
    git_repo: Path, tmp_path: Path
) -> None:
    repo = _install(git_repo, worker_turns=8, pace=0.05)
    # the worker is paused in its first process, which then dies; a second one resumes it
    owner = _owner(repo, tmp_path, "run", "gated", "--model", "scripted/s", "--gates", "stop")
    run_id = _run_id(repo)
    try:
        _until(lambda: _stage(repo, run_id, "worker") == "running")
        _cli(repo, tmp_path, "pause", run_id, "--stage", "worker")
        _until(lambda: _stage(repo, run_id, "worker") == "paused")
        owner.send_signal(signal.SIGKILL)
        owner.wait()
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()
    resumed = _cli(repo, tmp_path, "resume", run_id, "--gates", "stop", check=False)
    assert resumed.returncode == 5, resumed.stderr  # the worker finished here, the gate stops the run
    worker_in_resume = _duration(_RUN_LINE, "worker", resumed.stdout)
    shown = _cli(repo, tmp_path, "show", run_id).stdout
    assert _duration(_SHOW_LINE, "worker", shown) == worker_in_resume

    _cli(repo, tmp_path, "answer", run_id, "yes")
    finished = _cli(repo, tmp_path, "resume", run_id, "--gates", "stop")
    gate_in_resume = _duration(_RUN_LINE, "confirm", finished.stdout)
    shown = _cli(repo, tmp_path, "show", run_id).stdout
    assert _duration(_SHOW_LINE, "confirm", shown) == gate_in_resume
    assert _duration(_SHOW_LINE, "worker", shown) == worker_in_resume
    assert gate_in_resume != "0.0s"  # it covers the wait for the answer, across processes


# ----- item 8: outside git ----------------------------------------------------------------------


def test_outside_git_it_says_once_what_will_not_work_and_goes_on(tmp_path: Path, git_repo: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    repo = _install(plain)
    out = lc("run", "outer", "--model", "scripted/s", cwd=repo)
    assert out.returncode == 0, out.stderr
    notes = [line for line in out.stderr.splitlines() if "not a git repository" in line]
    assert len(notes) == 1 and "worktrees" in notes[0] and "merges" in notes[0], out.stderr
    assert out.stderr.count("git") == notes[0].count("git")
    assert "outer completed" not in out.stderr and " completed in " in out.stdout
    listed = lc("runs", cwd=repo)
    assert listed.returncode == 0 and listed.stderr.count("not a git repository") == 1
    inside = lc("runs", cwd=git_repo)
    assert inside.returncode == 0 and "not a git repository" not in inside.stderr
