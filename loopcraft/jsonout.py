"""The one convention of every ``--json`` output: one JSON document on stdout (progress and
notes go to stderr), snake_case keys, times as ISO-8601 UTC strings (``2026-12-03T06:30:44.487Z``)
instead of epoch seconds, durations in seconds (``elapsed``), money in US dollars (``cost``).

Times are found by key (:data:`TIME_KEYS`); what a workflow or a person wrote (a run's
``inputs`` and ``output``, an ``answer``, a prompt's ``default`` and ``options``, structured
stage output) is passed through untouched, whatever its keys are.

The text is strict JSON: a NaN or an infinity (a workflow input that allows them, a damaged
journal cell) is written as ``null``, as JavaScript's ``JSON.stringify`` does, never as bare
``NaN``/``Infinity``."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

TIME_KEYS = frozenset(
    {
        "created",
        "updated",
        "answered_at",
        "started",
        "finished",
        "started_at",
        "finished_at",
        "ts",
        "at",
        "expires",
    }
)
VERBATIM_KEYS = frozenset({"inputs", "output", "answer", "default", "options", "structured", "arguments"})


def iso_utc(epoch: float) -> str:
    """``epoch`` seconds as ISO-8601 UTC with milliseconds and a ``Z``."""
    moment = datetime.fromtimestamp(epoch, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def to_json(data: Any) -> Any:
    """``data`` with every epoch time under a :data:`TIME_KEYS` key written as :func:`iso_utc`."""
    if isinstance(data, dict):
        return {key: _field(key, value) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [to_json(item) for item in data]
    return data


def _field(key: Any, value: Any) -> Any:
    if key in VERBATIM_KEYS:
        return value
    if key in TIME_KEYS and isinstance(value, int | float) and not isinstance(value, bool):
        return iso_utc(value)
    return to_json(value)


def strict(data: Any) -> Any:
    """``data`` with every NaN or infinity (however deep) as None."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {key: strict(value) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [strict(item) for item in data]
    return data


def dumps(data: Any, *, indent: int | None = 2) -> str:
    """The JSON text of ``data`` under the convention (indented, one document; strict JSON)."""
    return json.dumps(strict(to_json(data)), indent=indent, default=str, allow_nan=False)
