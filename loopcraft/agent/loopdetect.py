"""Repeated-action detection: the same tool, arguments and result again and again.

At ``limit`` identical (tool, arguments, result) triples the model gets a warning; at
twice that the agent stops as ``blocked``.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

Verdict = Literal["ok", "warn", "block"]


def _key(tool: str, arguments: str, output: str, is_error: bool) -> str:
    try:
        canonical = json.dumps(json.loads(arguments or "{}"), sort_keys=True)
    except ValueError:
        canonical = arguments
    digest = hashlib.sha1(f"{tool}\0{canonical}\0{is_error}\0{output}".encode(), usedforsecurity=False)
    return digest.hexdigest()


@dataclass
class RepeatDetector:
    limit: int
    counts: Counter[str] = field(default_factory=Counter)

    def observe(self, tool: str, arguments: str, output: str, is_error: bool) -> Verdict:
        """Count one finished call; "warn" exactly at ``limit``, "block" from ``2 * limit``."""
        key = _key(tool, arguments, output, is_error)
        self.counts[key] += 1
        seen = self.counts[key]
        if seen >= 2 * self.limit:
            return "block"
        return "warn" if seen == self.limit else "ok"

    def reset(self) -> None:
        self.counts.clear()


def repeat_warning(tool: str, times: int) -> str:
    return (
        f"[loopcraft] You have called {tool} with these exact arguments {times} times and got the "
        "same result each time. Repeating it will not help: change your approach."
    )
