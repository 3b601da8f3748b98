"""loopcraft: a loop engine for coding agents.

The public workflow API is re-exported here lazily so that ``import loopcraft``
stays fast and never imports litellm.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_TRIGGERS = ("cron", "every", "on_files", "on_git", "on_webhook")

_VERIFY = (
    "CheckResult",
    "as_verdict",
    "Decision",
    "Finding",
    "Ledger",
    "Rule",
    "Verdict",
    "decide_turn",
    "dedupe",
    "mean_at_least",
    "parse_verdict",
    "quorum",
    "reduce_verdicts",
    "unanimous",
)

_GITOPS = (
    "CommitInfo",
    "WorktreeInfo",
    "close_worktree",
    "commit_all",
    "git_diff",
    "open_worktree",
    "snapshot",
)

__all__ = [
    "CheckResult",
    "CommitInfo",
    "Context",
    "Decision",
    "Finding",
    "Ledger",
    "Rule",
    "StageResult",
    "Verdict",
    "WorktreeInfo",
    "__version__",
    "as_verdict",
    "close_worktree",
    "commit_all",
    "cron",
    "decide_turn",
    "dedupe",
    "every",
    "git_diff",
    "gitops",
    "mean_at_least",
    "on_files",
    "on_git",
    "on_webhook",
    "open_worktree",
    "parse_verdict",
    "quorum",
    "reduce_verdicts",
    "snapshot",
    "traces",
    "unanimous",
    "workflow",
]

if TYPE_CHECKING:
    from loopcraft.engine import gitops, traces
    from loopcraft.engine.context import Context, StageResult
    from loopcraft.engine.definition import workflow
    from loopcraft.engine.gitops import (
        CommitInfo,
        WorktreeInfo,
        close_worktree,
        commit_all,
        git_diff,
        open_worktree,
        snapshot,
    )
    from loopcraft.engine.verify import (
        CheckResult,
        Decision,
        Finding,
        Ledger,
        Rule,
        Verdict,
        as_verdict,
        decide_turn,
        dedupe,
        mean_at_least,
        parse_verdict,
        quorum,
        reduce_verdicts,
        unanimous,
    )
    from loopcraft.triggers.spec import cron, every, on_files, on_git, on_webhook


def __getattr__(name: str) -> Any:
    if name == "workflow":
        from loopcraft.engine.definition import workflow

        return workflow
    if name in ("Context", "StageResult"):
        from loopcraft.engine import context

        return getattr(context, name)
    if name == "gitops":
        from loopcraft.engine import gitops

        return gitops
    if name == "traces":
        from loopcraft.engine import traces

        return traces
    if name in _TRIGGERS:
        from loopcraft.triggers import spec

        return getattr(spec, name)
    if name in _VERIFY:
        from loopcraft.engine import verify

        return getattr(verify, name)
    if name in _GITOPS:
        from loopcraft.engine import gitops

        return getattr(gitops, name)
    raise AttributeError(f"module 'loopcraft' has no attribute {name!r}")
