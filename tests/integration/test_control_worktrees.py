"""``ctx.task(..., worktree=True)`` and ``ctx.merge`` on real git repositories with the scripted model
through litellm: parallel stages editing the same file in their own worktrees don't collide, a
conflicting merge is aborted cleanly, worktrees are removed unless kept, a stage resumed after a
crash continues in its worktree, and replay returns the same branch and diff without merging twice."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from loopcraft import Context, workflow
from loopcraft.config import Config
from loopcraft.engine.results import StageResult
from loopcraft.engine.service import Engine
from loopcraft.engine.worktrees import safe_name, worktree_for
from loopcraft.errors import LoopcraftError
from loopcraft.models.scripted import read_call_log
from tests.engine_helpers import Crash, crashed_run
from tests.integration.test_agent_support import scripted_model, tool_call


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout


def write_turns(path: str, content: str, done: str) -> list[dict[str, Any]]:
    return [{"tool_calls": [tool_call("write", path=path, content=content)]}, {"text": done}]


@pytest.fixture
def repo(git_repo: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.chdir(git_repo)
    monkeypatch.setenv("LOOPCRAFT_SCRIPTED_CALL_LOG", str(tmp_path / "calls.jsonl"))
    return git_repo


@workflow(name="wt-pair")
async def wt_pair(ctx: Context) -> dict:
    left, right = await ctx.parallel(
        ctx.spec("left", prompt="edit", worktree=True), ctx.spec("right", prompt="edit", worktree=True)
    )
    main_before = await ctx.tool("main-before", lambda: (ctx.workspace / "README.md").read_text())
    merged = await ctx.merge(left)
    try:
        await ctx.merge(right)
        conflict = ""
    except LoopcraftError as exc:
        conflict = str(exc)
    return {
        "branches": [left.branch, right.branch],
        "diffs": [left.diff, right.diff],
        "main_before": main_before,
        "merged": merged,
        "conflict": conflict,
    }


async def test_parallel_worktrees_do_not_collide_and_conflicts_abort(repo: Path) -> None:
    model = scripted_model(
        stages={
            "left": write_turns("README.md", "# left\n", "left done"),
            "right": write_turns("README.md", "# right\n", "right done"),
        }
    )
    engine = await Engine.open(repo, Config(model=model))
    engine.register(wt_pair)
    info = await engine.run("wt-pair", {})
    assert info.status == "completed", info.error
    out = info.output
    run = safe_name(info.id)
    assert out["branches"] == [f"loopcraft/{run}/left", f"loopcraft/{run}/right"]
    assert "+# left" in out["diffs"][0] and "# right" not in out["diffs"][0]
    assert "+# right" in out["diffs"][1] and "# left" not in out["diffs"][1]
    assert out["main_before"] == "# sample\n"  # the main tree was untouched until the merge
    assert git(repo, "show", f"loopcraft/{run}/left:README.md") == "# left\n"
    assert git(repo, "show", f"loopcraft/{run}/right:README.md") == "# right\n"
    subject = git(repo, "log", "-1", "--format=%s", f"loopcraft/{run}/right").strip()
    assert subject == f"loopcraft: run {info.id} stage right"
    # first merge landed; the second reported its conflict on one line and was aborted
    assert (repo / "README.md").read_text() == "# left\n"
    assert out["merged"] == git(repo, "rev-parse", "HEAD").strip()
    assert "conflicts in README.md" in out["conflict"] and "\n" not in out["conflict"]
    assert git(repo, "status", "--porcelain", "--untracked-files=no") == ""
    assert not (repo / ".git" / "MERGE_HEAD").exists()
    assert git(repo, "rev-parse", "--abbrev-ref", "HEAD").strip() == "main"
    # worktree folders removed, branches kept
    assert not worktree_for(repo, info.id, "left").path.exists()
    assert not worktree_for(repo, info.id, "right").path.exists()
    assert "loopcraft/" not in git(repo, "worktree", "list")
    await engine.close()


@workflow(name="wt-keep")
async def wt_keep(ctx: Context) -> dict:
    await ctx.task("scout", prompt="notes", output="notes.md")
    kept = await ctx.task("keep", prompt="add", reads=["notes.md"], worktree=True, keep_worktree=True)
    commit = await ctx.merge(kept, strategy="squash")
    return {"branch": kept.branch, "commit": commit}


async def test_kept_worktree_stays_and_squash_merges(repo: Path) -> None:
    model = scripted_model(
        stages={"scout": [{"text": "notes"}], "keep": write_turns("new.txt", "hi\n", "added")}
    )
    engine = await Engine.open(repo, Config(model=model))
    engine.register(wt_keep)
    info = await engine.run("wt-keep", {})
    assert info.status == "completed", info.error
    tree = worktree_for(repo, info.id, "keep").path
    assert (tree / "new.txt").read_text() == "hi\n"  # kept, with the stage's work in it
    assert git(tree, "status", "--porcelain", "--untracked-files=no") == ""  # ...committed on its branch
    # the run's artifact given in reads= is copied into the worktree, and never committed
    notes = tree / ".loopcraft" / "runs" / info.id / "artifacts" / "notes.md"
    assert notes.read_text() == "notes"
    prompt = next(e for e in await engine.stage_transcript(info.id, "keep") if e.get("type") == "message")
    assert str(notes) in str(prompt["message"]["content"])
    assert git(repo, "ls-tree", "-r", "--name-only", info.output["branch"]).split() == [
        "README.md",
        "new.txt",
    ]
    assert (repo / "new.txt").read_text() == "hi\n"
    log = git(repo, "log", "--format=%s %P", "-1")
    assert log.startswith(f"loopcraft: merge {info.output['branch']}") and len(log.split()[-1]) == 40
    assert len(git(repo, "log", "--format=%P", "-1").split()) == 1  # squash: a single-parent commit
    await engine.close()


CRASH_AFTER_MERGE: list[bool] = []


def crash_once() -> str:
    if not CRASH_AFTER_MERGE:
        CRASH_AFTER_MERGE.append(True)
        raise Crash()
    return "ok"


@workflow(name="wt-resume")
async def wt_resume(ctx: Context) -> dict:
    result: StageResult = await ctx.task("fix", prompt="fix it", worktree=True)
    merged = await ctx.merge(result)
    await ctx.tool("after", crash_once)
    return {"branch": result.branch, "diff": result.diff, "merged": merged}


async def test_resumed_worktree_stage_continues_and_replays(repo: Path, tmp_path: Path) -> None:
    CRASH_AFTER_MERGE.clear()
    model = scripted_model(
        stages={
            "fix": [
                {"tool_calls": [tool_call("write", path="a.txt", content="a\n")]},
                {"tool_calls": [tool_call("write", path="b.txt", content="b\n")]},
                {"text": "fixed"},
            ]
        }
    )
    config = Config(model=model)
    engine, run_id = await crashed_run(repo, config, wt_resume, crash_on_call=2)
    await engine.close()
    tree = worktree_for(repo, run_id, "fix").path
    assert (tree / "a.txt").read_text() == "a\n" and not (repo / "a.txt").exists()

    # resume 1: the stage continues in the same worktree, merges, then the process dies again
    engine = await Engine.open(repo, config)
    engine.register(wt_resume)
    with pytest.raises(Crash):
        await engine.resume(run_id)
    await engine.close()
    assert not tree.exists()
    assert (repo / "a.txt").read_text() == "a\n" and (repo / "b.txt").read_text() == "b\n"
    head = git(repo, "rev-parse", "HEAD").strip()
    calls = len(read_call_log(tmp_path / "calls.jsonl"))
    git(repo, "reset", "-q", "--hard", "HEAD~1")  # a replayed merge must not merge again

    # resume 2: the task and the merge replay from the journal
    engine = await Engine.open(repo, config)
    engine.register(wt_resume)
    info = await engine.resume(run_id)
    assert info.status == "completed", info.error
    assert info.output["branch"] == f"loopcraft/{safe_name(run_id)}/fix"
    assert "+a" in info.output["diff"] and "+b" in info.output["diff"]
    assert info.output["merged"] == head  # the recorded merge...
    assert git(repo, "rev-parse", "HEAD").strip() != head and not (repo / "a.txt").exists()  # ...not redone
    assert len(read_call_log(tmp_path / "calls.jsonl")) == calls  # no model call re-run
    await engine.close()


@workflow(name="wt-twice")
async def wt_twice(ctx: Context) -> list[str | None]:
    first = await ctx.task("fix: a/b..c", prompt="one", worktree=True)
    second = await ctx.task("fix: a/b..c", prompt="two", worktree=True)
    try:
        await ctx.merge(await ctx.task("plain", prompt="no worktree"))
    except LoopcraftError as exc:
        return [first.branch, second.branch, str(exc)]
    return [first.branch, second.branch, None]


async def test_stage_names_are_made_safe_and_unique(repo: Path) -> None:
    assert safe_name("fix: a/b..c") == "fix-a-b.c"
    assert safe_name("../x.lock") == "x-lock" and safe_name("///") == "stage"
    engine = await Engine.open(repo, Config(model=scripted_model([{"text": "done"}])))
    engine.register(wt_twice)
    info = await engine.run("wt-twice", {})
    assert info.status == "completed", info.error
    run = safe_name(info.id)
    assert info.output[:2] == [f"loopcraft/{run}/fix-a-b.c", f"loopcraft/{run}/fix-a-b.c-2"]
    assert "no branch" in info.output[2]
    await engine.close()


@workflow(name="wt-nogit")
async def wt_nogit(ctx: Context) -> str:
    return (await ctx.task("fix", prompt="x", worktree=True)).text


async def test_worktree_outside_git_fails_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    monkeypatch.chdir(plain)
    engine = await Engine.open(plain, Config(model=scripted_model([{"text": "done"}])))
    engine.register(wt_nogit)
    info = await engine.run("wt-nogit", {})
    assert info.status == "failed"
    assert "worktree=True needs a git repository" in (info.error or "")
    await engine.close()
