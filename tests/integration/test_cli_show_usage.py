"""``loopcraft show RUN`` reports the usage per workflow: the run's own and each nested
``ctx.workflow`` node, in the human output and in ``--json`` (a real subprocess, scripted model)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.integration.test_cli_basics import lc

NESTED = """
from loopcraft import Context, workflow


@workflow(description="inner")
async def inner(ctx: Context) -> str:
    return (await ctx.task("inner-stage", prompt="inner")).text


@workflow(description="outer")
async def outer(ctx: Context) -> str:
    first = await ctx.task("outer-stage", prompt="outer")
    second = await ctx.workflow(inner)
    return first.text + second
"""

SCRIPT = """
stages:
  "outer-stage":
    - text: "out"
      usage: {input: 100, output: 10}
  "inner-stage":
    - text: "in"
      usage: {input: 300, output: 30}
"""


def test_show_reports_usage_per_nested_workflow(git_repo: Path) -> None:
    (git_repo / ".loopcraft" / "workflows").mkdir(parents=True)
    (git_repo / ".loopcraft" / "scripts").mkdir(parents=True)
    (git_repo / ".loopcraft" / "workflows" / "outer.py").write_text(NESTED)
    (git_repo / ".loopcraft" / "scripts" / "nest.yaml").write_text(SCRIPT)
    ran = lc("run", "outer", "--model", "scripted/nest", "--json", cwd=git_repo)
    assert ran.returncode == 0, ran.stderr
    run_id = json.loads(ran.stdout)["id"]

    shown = lc("show", run_id, "--json", cwd=git_repo)
    assert shown.returncode == 0, shown.stderr
    by_workflow = json.loads(shown.stdout)["usage_by_workflow"]
    assert [(w["workflow"], w["key"], w["tokens"]) for w in by_workflow] == [
        ("outer", None, 440),
        ("inner", "root/1:workflow:inner", 330),
    ]

    human = lc("show", run_id, cwd=git_repo)
    assert human.returncode == 0, human.stderr
    lines = human.stdout.splitlines()
    start = lines.index("usage by workflow:")
    assert "outer" in lines[start + 1] and "440 tok" in lines[start + 1]
    assert "inner" in lines[start + 2] and "330 tok" in lines[start + 2]
