"""``gitops.base_branch`` on real repositories: the upstream's default branch of a clone comes
first, then a local main or master; a repository with none of them (or no commit) is one error."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from loopcraft.engine import gitops

ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@t",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@t",
}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, env=ENV, capture_output=True, text=True
    ).stdout.strip()


def commit(repo: Path, name: str) -> str:
    (repo / name).write_text(name)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", name)
    return git(repo, "rev-parse", "HEAD")


def test_a_clone_uses_its_upstream_default_branch(git_repo: Path, tmp_path: Path) -> None:
    git(git_repo, "branch", "-m", "main", "develop")  # the upstream's default is not main/master
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(git_repo), str(clone)], check=True, env=ENV)
    fork = git(clone, "rev-parse", "HEAD")
    git(clone, "checkout", "-qb", "feature")
    head = commit(clone, "x.txt")
    base = gitops.base_branch(clone)
    assert (base.branch, base.merge_base, base.head) == ("origin/develop", fork, head)


def test_a_local_main_or_master(git_repo: Path) -> None:
    fork = git(git_repo, "rev-parse", "HEAD")
    git(git_repo, "checkout", "-qb", "feature")
    commit(git_repo, "x.txt")
    assert gitops.base_branch(git_repo).branch == "main"
    git(git_repo, "branch", "-m", "main", "master")
    found = gitops.base_branch(git_repo)
    assert (found.branch, found.merge_base) == ("master", fork)


def test_no_base_branch_is_one_line(git_repo: Path, tmp_path: Path) -> None:
    git(git_repo, "branch", "-m", "main", "trunk")
    with pytest.raises(gitops.GitError, match=r"^no base branch: ") as err:
        gitops.base_branch(git_repo)
    assert "\n" not in str(err.value)
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(gitops.GitError, match="is not a git repository"):
        gitops.base_branch(plain)
