"""The ``score`` step: a numeric metric recorded on the run, once per name, replayed on resume.

A score is a journal step of kind ``score`` whose name is the metric and whose output is the
value, so ``loopcraft stats`` reads scores with one query over the steps table.
"""

from __future__ import annotations

import math
from typing import Any

from loopcraft.engine.journal import StepRow
from loopcraft.engine.steps.protocol import Runtime, Scope, run_step
from loopcraft.errors import LoopcraftError

SCORE_KIND = "score"


def check_score(name: str, value: Any) -> float:
    """The score as a float; a bad name or a value that is not a finite number is an error."""
    if not name or not name.strip():
        raise LoopcraftError("ctx.score: the name is empty; name the metric, e.g. ctx.score('turns', 3)")
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if not isinstance(value, int | float) or not math.isfinite(value):
        raise LoopcraftError(f"ctx.score {name!r}: the value must be a finite number, got {value!r}")
    return float(value)


def _already_scored(rt: Runtime, pos: str, name: str) -> bool:
    return any(r.kind == SCORE_KIND and r.name == name and r.pos != pos for r in rt.recorded.values())


async def run_score(rt: Runtime, scope: Scope, pos: str, key: str, name: str, value: Any) -> float:
    """Record ``name = value`` on the run (a second score of the same name in a run is an error)."""
    number = check_score(name, value)
    if _already_scored(rt, pos, name):
        raise LoopcraftError(
            f"ctx.score {name!r} was already recorded in run {rt.run_id}; a score is recorded once "
            "per run: use another name"
        )

    async def body(row: StepRow) -> float:
        return number

    result: float = await run_step(rt, scope, pos, key, SCORE_KIND, name, body)
    return result
