"""The ``--json`` convention: epoch times become ISO-8601 UTC, what a workflow or person wrote
stays as it was."""

from __future__ import annotations

import json

from loopcraft.jsonout import dumps, iso_utc, to_json


def test_times_become_iso_utc_and_the_rest_is_kept() -> None:
    run = {
        "id": "r1",
        "created": 1796279444.4876466,
        "updated": 1796279447,
        "elapsed": 3.25,
        "cost": 0.5,
        "answered_at": None,
        "inputs": {"created": 1.5},
        "output": {"updated": 1796279447.0},
        "steps": [{"ts": 0.0, "created": True}],
    }
    shown = to_json(run)
    assert shown["created"] == "2026-12-03T06:30:44.487Z" and shown["updated"] == "2026-12-03T06:30:47.000Z"
    assert (shown["elapsed"], shown["cost"], shown["answered_at"]) == (3.25, 0.5, None)
    assert shown["inputs"] == {"created": 1.5} and shown["output"] == {"updated": 1796279447.0}
    assert shown["steps"] == [{"ts": "1970-01-01T00:00:00.000Z", "created": True}]
    assert json.loads(dumps(run)) == shown
    assert iso_utc(0.25) == "1970-01-01T00:00:00.250Z"
