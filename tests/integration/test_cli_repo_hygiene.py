"""Repo hygiene (issue 10, item 8): on first use loopcraft writes ``.loopcraft/.gitignore`` so
its journal, runs, sessions and worktrees are never committed, while workflows/, skills/,
scripts/ and config.toml stay trackable (checked with git itself)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.integration.test_cli_basics import lc


def _ignored(repo: Path, path: str) -> bool:
    out = subprocess.run(["git", "check-ignore", "-q", path], cwd=repo, capture_output=True)
    return out.returncode == 0


def test_first_use_writes_a_gitignore_for_loopcrafts_own_state(git_repo: Path, tmp_path: Path) -> None:
    result = lc("runs", cwd=git_repo, env={"LOOPCRAFT_HOME": str(tmp_path / "home")})
    assert result.returncode == 0, result.stderr
    assert (git_repo / ".loopcraft" / ".gitignore").is_file()
    for path in ("loopcraft.db", "loopcraft.db-wal", "runs/r1/x.jsonl", "sessions/s.jsonl", "worktrees/w/f"):
        assert _ignored(git_repo, f".loopcraft/{path}"), path
    for path in ("workflows/mine.py", "skills/s.md", "scripts/demo.yaml", "config.toml", ".gitignore"):
        assert not _ignored(git_repo, f".loopcraft/{path}"), path
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=git_repo,
        capture_output=True,
        text=True,
    ).stdout
    assert "loopcraft.db" not in status and ".loopcraft/.gitignore" in status


def test_a_users_own_gitignore_is_kept(git_repo: Path, tmp_path: Path) -> None:
    (git_repo / ".loopcraft").mkdir(exist_ok=True)
    (git_repo / ".loopcraft" / ".gitignore").write_text("mine\n")
    assert lc("runs", cwd=git_repo, env={"LOOPCRAFT_HOME": str(tmp_path / "home")}).returncode == 0
    assert (git_repo / ".loopcraft" / ".gitignore").read_text() == "mine\n"


NAMED = """
from loopcraft import Context, workflow

@workflow(description="echo a target")
async def review_change(ctx: Context, target: str, depth: int = 1) -> str:
    return f"{target}:{depth}"
"""


def test_workflows_marks_required_inputs_and_both_spellings_run(git_repo: Path, tmp_path: Path) -> None:
    folder = git_repo / ".loopcraft" / "workflows"
    folder.mkdir(parents=True)
    (folder / "mine.py").write_text(NAMED)
    env = {"LOOPCRAFT_HOME": str(tmp_path / "home")}
    listing = lc("workflows", cwd=git_repo, env=env)
    line = next(x for x in listing.stdout.splitlines() if x.startswith("review-change"))
    assert "target (required)" in line and "depth" in line and "depth (required)" not in line
    for spelling in ("review-change", "review_change"):
        result = lc("run", spelling, "--input", "target=x", "--json", cwd=git_repo, env=env)
        assert result.returncode == 0, result.stderr
        assert '"x:1"' in result.stdout and "review-change" in result.stdout
