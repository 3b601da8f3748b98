"""Prompt-cache markers: Anthropic needs explicit ``cache_control`` breakpoints.

One breakpoint on the (last) system prompt and one on the last message, so the stable
prefix and the growing history are both cached. Other providers cache automatically
and get the messages unchanged. The input list is never mutated.
"""

from __future__ import annotations

import copy
from typing import Any

from loopcraft.models.types import Message

MAX_BREAKPOINTS = 4
_EPHEMERAL = {"type": "ephemeral"}
_MARKED_PROVIDERS = frozenset({"anthropic"})


def _count_markers(messages: list[Message]) -> int:
    count = 0
    for msg in messages:
        content = msg.get("content")
        if isinstance(content, list):
            count += sum(1 for block in content if isinstance(block, dict) and "cache_control" in block)
        if "cache_control" in msg:
            count += 1
    return count


def _mark(msg: Message) -> bool:
    """Put a breakpoint on ``msg``'s last content block; False when it has no content."""
    content: Any = msg.get("content")
    if isinstance(content, str):
        if not content:
            return False
        msg["content"] = [{"type": "text", "text": content, "cache_control": dict(_EPHEMERAL)}]
        return True
    if isinstance(content, list) and content and isinstance(content[-1], dict):
        if "cache_control" in content[-1]:
            return False
        content[-1] = {**content[-1], "cache_control": dict(_EPHEMERAL)}
        return True
    return False


def apply_cache_markers(messages: list[Message], provider: str) -> list[Message]:
    """Messages with cache breakpoints for ``provider`` (a copy; unchanged when not needed)."""
    if provider not in _MARKED_PROVIDERS or not messages:
        return messages
    marked = list(messages)  # shallow: only the messages that get a marker are copied
    budget = MAX_BREAKPOINTS - _count_markers(marked)
    system_indexes = [i for i, m in enumerate(marked) if m.get("role") == "system"]
    targets = ([system_indexes[-1]] if system_indexes else []) + [len(marked) - 1]
    for index in dict.fromkeys(targets):  # the system prompt may be the last message
        if budget <= 0:
            break
        candidate = copy.deepcopy(marked[index])
        if _mark(candidate):
            marked[index] = candidate
            budget -= 1
    return marked
