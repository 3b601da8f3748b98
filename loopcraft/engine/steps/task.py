"""The ``task`` step: one agent session run to completion (optionally in its own git worktree)."""

from __future__ import annotations

import contextlib
import contextvars
from pathlib import Path
from typing import Any

from loopcraft.engine import worktrees
from loopcraft.engine.events import StageEvent
from loopcraft.engine.journal import StepRow
from loopcraft.engine.limits import wait_for_limits
from loopcraft.engine.results import StageResult
from loopcraft.engine.steps.protocol import Runtime, Scope, run_step
from loopcraft.engine.tasks import (
    StageFailure,
    TaskRequest,
    TaskSpec,
    build_prompt,
    resolve_reads,
    run_agent_task,
    shape_output,
    stage_result,
)
from loopcraft.errors import LoopcraftError

forced_model: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "loopcraft_forced_model", default=None
)
"""Set by ``loopcraft replay``: every stage of the runs started in this context uses this model,
whatever its spec says, with no fallbacks (the recorded responses, never the network)."""


def resolve_models(rt: Runtime, spec: TaskSpec) -> tuple[str, list[str]]:
    if (forced := forced_model.get()) is not None:
        return forced, []
    model = spec.model or rt.run_model or rt.config.model
    if model is None:
        try:
            from loopcraft.models.resolve import resolve_model

            model = resolve_model(config=rt.config).model
        except ImportError:
            model = "scripted/demo"
    fallbacks = rt.config.fallback_models if spec.fallback_models is None else spec.fallback_models
    if spec.effort is not None:
        from loopcraft.models.spec import model_with_effort

        model = model_with_effort(model, spec.effort)
        fallbacks = [model_with_effort(m, spec.effort) for m in fallbacks]
    return model, [m for m in fallbacks if m != model]


def fork_source(rt: Runtime, spec: TaskSpec) -> Path | None:
    if spec.context != "fork":
        return None
    if spec.fork_from is None:
        if rt.last_session is None:
            raise StageFailure(f"stage {spec.name!r}: context='fork' but no earlier task session to fork")
        return rt.last_session
    by_key = next(
        (r for r in rt.recorded.values() if spec.fork_from in (r.key, r.name) and r.kind == "task"),
        None,
    )
    path = rt.files.session_path(by_key.key) if by_key else Path(spec.fork_from)
    if not path.is_file():
        raise StageFailure(f"stage {spec.name!r}: cannot fork {spec.fork_from!r}: no such session")
    return path


def task_request(
    rt: Runtime, key: str, spec: TaskSpec, session_path: Path, workspace: Path | None = None
) -> TaskRequest:
    """What the agent runner needs to open the stage's session."""
    model, fallbacks = resolve_models(rt, spec)
    if spec.worktree and workspace is None:
        raise StageFailure(f"stage {spec.name!r}: worktree=True is supported on ctx.task only")

    def on_event(event: Any) -> None:
        rt.emit(StageEvent(rt.run_id, key, getattr(event, "kind", type(event).__name__), event))

    return TaskRequest(
        run_id=rt.run_id,
        key=key,
        name=spec.name,
        workspace=workspace or rt.workspace,
        session_path=session_path,
        model=model,
        fallback_models=fallbacks,
        tools=spec.tools,
        exclude_tools=spec.exclude_tools,
        fork_from=fork_source(rt, spec),
        budget=spec.budget,
        permissions=spec.permissions,
        permission_rules=spec.permission_rules,
        system=spec.system,
        skills=spec.skills,
        memory=spec.memory,
        on_event=on_event,
        safe_point=lambda: rt.control.checkpoint(key),
        shared_budget=rt.current_budget(),
        guard=rt.lease.check,
        lease_check=rt.lease.verify,
        allow_paths=list(spec.allow_paths or []),
        sandbox_network=spec.sandbox_network,
    )


async def _task_body(rt: Runtime, key: str, spec: TaskSpec, row: StepRow) -> StageResult:
    reads = resolve_reads(spec, rt.files)
    session_path = rt.files.session_path(key)
    tree = await _open_worktree(rt, spec, row) if spec.worktree else None
    folder = tree.path if tree is not None else _own_workspace(rt, spec)
    if folder is not None:
        seen = worktrees.Worktree(rt.workspace, folder, tree.branch if tree else "")
        reads = [worktrees.visible_read(seen, path) for path in reads]
    prompt = build_prompt(spec, reads)
    request = task_request(rt, key, spec, session_path, folder)
    row.model = request.model
    session = rt.control.attach(key, wait_for_limits(rt, key, await rt.runner.open(request)))
    rt.live[key] = session
    try:
        outcome, structured, usage = await run_agent_task(spec, session, prompt)
    except BaseException as exc:
        rt.keep_spent(row, session)
        if tree is not None and isinstance(exc, Exception):  # failed: keep its partial work on the branch
            with contextlib.suppress(LoopcraftError):
                await worktrees.close_stage_worktree(tree, _commit_message(rt, spec), keep=spec.keep_worktree)
        raise
    finally:
        rt.live.pop(key, None)
        rt.control.detach(key)
        session.close()
    row.model = outcome.model or request.model
    text, written = shape_output(spec, outcome.text, rt.files, rt.config.engine.max_output)
    for path in written:
        await rt.journal.add_artifact(rt.run_id, key, path.name, str(path), path.stat().st_size)
    rt.last_session = session_path
    result = stage_result(outcome, text, structured, usage, written, session_path)
    if tree is not None:
        result.diff = await worktrees.close_stage_worktree(
            tree, _commit_message(rt, spec), keep=spec.keep_worktree
        )
        result.branch = tree.branch
        if spec.keep_worktree:
            result.worktree = str(tree.path)
    return result


def _own_workspace(rt: Runtime, spec: TaskSpec) -> Path | None:
    """``workspace=``: the folder the stage runs in instead of the run's (it must exist)."""
    if spec.workspace is None:
        return None
    folder = Path(spec.workspace)
    folder = folder if folder.is_absolute() else rt.workspace / folder
    if not folder.is_dir():
        raise StageFailure(f"stage {spec.name!r}: workspace {spec.workspace!r} is not a folder")
    return folder


async def _open_worktree(rt: Runtime, spec: TaskSpec, row: StepRow) -> worktrees.Worktree:
    """The stage's git worktree (reused on resume); same-named stages get ``-2``, ``-3``… suffixes."""
    same = [r for r in rt.recorded.values() if r.kind == "task" and r.name == spec.name and r.seq < row.seq]
    name = spec.name if not same else f"{spec.name}-{len(same) + 1}"
    return await worktrees.open_stage_worktree(rt.workspace, rt.run_id, name, base=spec.worktree_base)


def _commit_message(rt: Runtime, spec: TaskSpec) -> str:
    return f"loopcraft: run {rt.run_id} stage {spec.name}"


async def run_task(
    rt: Runtime, scope: Scope, pos: str, key: str, spec: TaskSpec, parents: list[str] | None = None
) -> StageResult:
    result: StageResult = await run_step(
        rt,
        scope,
        pos,
        key,
        "task",
        spec.name,
        lambda row: _task_body(rt, key, spec, row),
        parents=parents,
        encode=lambda r: r.to_dict(),
        decode=lambda d: StageResult.from_dict(d, spec.schema),
        usage_of=lambda r: r.usage,
        grants=spec.grants,
    )
    if result.session_path:
        rt.last_session = Path(result.session_path)
    return result
