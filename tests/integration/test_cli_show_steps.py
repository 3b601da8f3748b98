"""``show`` on a run with a failed check and an answered gate (review-10 item 7, defect I): the graph
marks the check failed, ``--stage`` on the check prints its command, exit code, time and output
tail, on the gate its question and answer (never ``(no transcript yet)``), and a completed stage's
transcript does not open with ``[status] running``. Real subprocesses, scripted model."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.integration.test_cli_basics import lc

FLOWS = """
from loopcraft import Context, workflow


@workflow(description="a failing check, a gate, a stage")
async def checked(ctx: Context) -> str:
    result = await ctx.check("lint", "echo lint-broke-here; exit 3")
    ok = await ctx.ui.confirm("Ship it anyway?")
    final = await ctx.task("final", prompt="finish")
    return f"{result.passed}|{ok}|{final.text}"
"""


def test_show_marks_a_failed_check_and_prints_what_a_check_and_a_gate_did(git_repo: Path) -> None:
    (git_repo / ".loopcraft" / "workflows").mkdir(parents=True, exist_ok=True)
    (git_repo / ".loopcraft" / "scripts").mkdir(parents=True, exist_ok=True)
    (git_repo / ".loopcraft" / "workflows" / "flows.py").write_text(FLOWS)
    script = {"stages": {"final": [{"text": "final done"}]}}
    (git_repo / ".loopcraft" / "scripts" / "s.yaml").write_text(yaml.safe_dump(script))
    out = lc("run", "checked", "--model", "scripted/s", "--json", "--gates", "stop", cwd=git_repo)
    assert out.returncode == 5, out.stderr
    run_id = str(json.loads(out.stdout)["id"])
    assert lc("answer", run_id, "yes", cwd=git_repo).returncode == 0
    resumed = lc("resume", run_id, "--gates", "stop", cwd=git_repo)
    assert resumed.returncode == 0, resumed.stderr + resumed.stdout

    shown = lc("show", run_id, cwd=git_repo)
    assert shown.returncode == 0, shown.stderr
    lint = next(line for line in shown.stdout.splitlines() if "checked › lint" in line)
    assert lint.startswith("✗ checked › lint  (failed (exit 3),"), lint

    check = lc("show", run_id, "--stage", "lint", cwd=git_repo)
    assert check.returncode == 0, check.stderr
    assert "(no transcript yet)" not in check.stdout
    assert "command: echo lint-broke-here; exit 3" in check.stdout
    assert "exit code: 3" in check.stdout and "timed_out: false" in check.stdout
    assert "  lint-broke-here" in check.stdout
    assert "── failed ·" in check.stdout

    gate = lc("show", run_id, "--stage", "confirm", cwd=git_repo)
    assert gate.returncode == 0, gate.stderr
    assert "(no transcript yet)" not in gate.stdout
    assert "question: Ship it anyway?" in gate.stdout and "answer: True (answered " in gate.stdout

    final = lc("show", run_id, "--stage", "final", cwd=git_repo).stdout.splitlines()
    assert final[1] != "[status] running" and "final done" in "\n".join(final), final
