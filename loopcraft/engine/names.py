"""Human names for runs and steps: a run's short handle and a step's readable path.

A run id is ``YYYYMMDD-HHMMSS-<6 hex>``; its short handle is the random suffix (``3ef009``),
unique in practice and accepted everywhere a run id is. A step key such as
``root/1:workflow:demo-review/0:parallel/1:task:synthesis`` reads as
``demo › demo-review › synthesis``: structure-only segments (chain, parallel) are dropped and
the run's workflow names the root.
"""

from __future__ import annotations

SEPARATOR = " › "
# Segments that are structure only: they never name a stage.
_STRUCTURE_KINDS = frozenset({"chain", "parallel"})


def short_id(run_id: str) -> str:
    """The run's short handle: the random suffix of its id (the whole id if it has none)."""
    head, sep, tail = run_id.rpartition("-")
    return tail if sep and head and tail else run_id


def segment_name(segment: str) -> str | None:
    """The name a key segment contributes (``1:task:plan`` → ``plan``), or None for structure."""
    parts = segment.split(":", 2)
    if len(parts) < 2:
        return None
    kind = parts[1]
    name = parts[2] if len(parts) > 2 else ""
    if kind in _STRUCTURE_KINDS:
        return None
    if kind == "merge":
        return f"merge {name}".strip()
    return name or kind


def merge_target(branch: str) -> str:
    """The stage a merge step merges, from its branch (``loopcraft/<run>/fix-parser`` → ``fix-parser``;
    in a step key the branch reads ``loopcraft_<run>_fix-parser``). Other branches are kept whole."""
    for sep in ("/", "_"):
        parts = branch.split(sep, 2)
        if len(parts) == 3 and parts[0] == "loopcraft" and parts[1] and parts[2]:
            return parts[2]
    return branch


def node_name(kind: str, name: str) -> str:
    """The name a graph node shows: a merge reads ``merge fix-parser``; a parallel ``parallel``."""
    if kind == "merge":
        return name if name.startswith("merge ") else f"merge {merge_target(name)}".strip()
    return name or kind


def step_names(key: str) -> list[str]:
    """The named segments of a step key below the root, outermost first."""
    names: list[str] = []
    for segment in key.split("/")[1:]:
        name = segment_name(segment)
        if name:
            names.append(name)
    return names


def step_path(key: str, workflow: str | None = None) -> str:
    """A step key as people read it: ``demo › demo-review › synthesis``."""
    names = step_names(key)
    if workflow:
        names.insert(0, workflow)
    return SEPARATOR.join(names) if names else (workflow or key)
