"""Fork and diff runs: a new run that reuses (copies) every step a source run recorded before a
stage and executes from that stage on, optionally with another model or changed inputs; and
the comparison of two runs (status, per-stage output, usage).

The copied steps replay exactly like a resumed run's, so the stages before ``--from`` make no
model call. The stage named by ``--from`` and the groups containing it (a nested workflow, a
chain) are never copied: they run again, as does everything recorded after the stage.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

from loopcraft.engine.artifacts import RunFiles, safe_key
from loopcraft.engine.graph import GRAPH_KINDS, build_graph
from loopcraft.engine.journal import RunRow, StepRow
from loopcraft.engine.service import Engine, new_run_id
from loopcraft.errors import NotFoundError
from loopcraft.models.types import Usage


def _stage_row(run: RunRow, steps: list[StepRow], stage: str) -> StepRow:
    node = build_graph(run.id, steps).find(stage)
    if node is None:
        names = ", ".join(dict.fromkeys(s.name for s in steps if s.kind in GRAPH_KINDS)) or "none"
        raise NotFoundError(f"run {run.id} has no stage {stage!r}; stages: {names}")
    return next(s for s in steps if s.key == node.key)


def reused_steps(steps: list[StepRow], stage: StepRow) -> list[StepRow]:
    """The completed steps recorded before ``stage`` that do not contain it."""
    return [
        s
        for s in steps
        if s.seq < stage.seq and s.status == "completed" and not stage.key.startswith(s.key + "/")
    ]


def _copy_files(root: Path, source: str, target: str, steps: list[StepRow]) -> None:
    """The copied steps' large outputs and transcripts, and the source's artifacts so far."""
    src, dst = RunFiles(root, source), RunFiles(root, target)
    for step in steps:
        if isinstance(step.output, dict) and set(step.output) == {"$file"}:
            path = src.dir / step.output["$file"]
            if path.is_file():
                (dst.dir / step.output["$file"]).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, dst.dir / step.output["$file"])
        session = src.session_path(step.key)
        if session.is_file():
            dst.stages_dir.mkdir(parents=True, exist_ok=True)
            shutil.copy2(session, dst.stages_dir / f"{safe_key(step.key)}.jsonl")
    if src.artifacts_dir.is_dir():
        shutil.copytree(src.artifacts_dir, dst.artifacts_dir, dirs_exist_ok=True)


async def fork_run(
    engine: Engine,
    run_id: str,
    stage: str,
    *,
    model: str | None = None,
    inputs: dict[str, str] | None = None,
) -> tuple[str, int]:
    """Record and start the fork; returns its run id and how many steps it reuses."""
    source = await engine.find_run(run_id)
    steps = await engine.journal.load_steps(source.id)
    start = _stage_row(source, steps, stage)
    wf = engine.workflows().get(source.workflow)
    checked = wf.coerce_cli_inputs({**source.inputs, **(inputs or {})})
    if model is not None:
        from loopcraft.models.spec import parse_model

        parse_model(model)
    new_id = new_run_id()
    await engine.journal.create_run(
        new_id,
        source.workflow,
        checked,
        model=model or source.model,
        parent_run=source.id,
        budget=source.budget,
    )
    reused = reused_steps(steps, start)
    _copy_files(engine.root, source.id, new_id, reused)
    await engine.journal.copy_steps([replace(s, run_id=new_id) for s in reused])
    await engine.start_recorded(new_id)
    return new_id, len(reused)


# -- diff ----------------------------------------------------------------------------------


def _output_text(engine: Engine, run_id: str, step: StepRow) -> str:
    value = RunFiles(engine.root, run_id).load_output(step.output)
    if isinstance(value, dict) and "text" in value:
        value = value.get("structured") or value["text"]
    text = json.dumps(value, sort_keys=True, default=str) if not isinstance(value, str) else value
    return text.replace(run_id, "<run>")  # file-only outputs name their run's folder


async def diff_runs(engine: Engine, run_a: str, run_b: str) -> dict[str, Any]:
    """Status, per-stage output and usage of two runs, stages matched by key."""
    rows = [await engine.find_run(run_a), await engine.find_run(run_b)]
    infos = [engine.run_info(r) for r in rows]
    steps = [[s for s in await engine.journal.load_steps(r.id) if s.kind in GRAPH_KINDS] for r in rows]
    by_key = [{s.key: s for s in group} for group in steps]
    keys = list(dict.fromkeys([s.key for s in steps[0]] + [s.key for s in steps[1]]))
    stages = []
    for key in keys:
        pair = [by_key[0].get(key), by_key[1].get(key)]
        texts = [
            _output_text(engine, rows[i].id, s) if s and s.status == "completed" else None
            for i, s in enumerate(pair)
        ]
        usages = [Usage.from_dict(s.usage) if s else Usage() for s in pair]
        stages.append(
            {
                "stage": (pair[0] or pair[1]).name,  # type: ignore[union-attr]
                "key": key,
                "status": [s.status if s else None for s in pair],
                "same_output": texts[0] == texts[1],
                "output": texts,
                "tokens": [u.total_tokens for u in usages],
                "cost": [u.cost_usd for u in usages],
            }
        )
    return {
        "runs": [r.id for r in rows],
        "status": [i.status for i in infos],
        "tokens": [i.usage.total_tokens for i in infos],
        "cost": [i.cost for i in infos],
        "elapsed": [i.elapsed for i in infos],
        "stages": stages,
    }


def diff_lines(diff: dict[str, Any]) -> list[str]:
    a, b = diff["runs"]
    lines = [
        f"A {a}  B {b}",
        f"status   {diff['status'][0]} → {diff['status'][1]}",
        f"tokens   {diff['tokens'][0]:,} → {diff['tokens'][1]:,}",
        f"cost     ${diff['cost'][0]:.4f} → ${diff['cost'][1]:.4f}",
    ]
    for s in diff["stages"]:
        mark = "=" if s["same_output"] and s["status"][0] == s["status"][1] else "≠"
        status = (
            s["status"][0] if s["status"][0] == s["status"][1] else f"{s['status'][0]} → {s['status'][1]}"
        )
        lines.append(f"{mark} {s['stage']:<24} {status:<24} tokens {s['tokens'][0]:,} → {s['tokens'][1]:,}")
        if mark == "≠" and s["output"][0] != s["output"][1]:
            for side, text in zip("AB", s["output"], strict=True):
                short = (text or "(none)").replace("\n", " ")
                lines.append(f"    {side}: {short[:100]}")
    return lines
