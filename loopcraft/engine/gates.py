"""Human-gate answers: normalizing what a person typed into the value ``ctx.ui.*`` returns."""

from __future__ import annotations

from typing import Any

from loopcraft.errors import LoopcraftError

_YES = {"y", "yes", "true", "1", "approve", "approved", "ok", "allow"}
_NO = {"n", "no", "false", "0", "reject", "rejected", "deny"}


class AnswerError(LoopcraftError):
    """An answer that does not fit its prompt (the prompt stays pending)."""


def normalize_answer(kind: str, value: Any, options: list[Any] | None = None) -> Any:
    """The typed answer for a prompt of ``kind``; raises :class:`AnswerError` with the reason."""
    if kind == "confirm":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _YES:
            return True
        if text in _NO:
            return False
        raise AnswerError(f"answer {value!r} is not yes or no")
    if kind == "select":
        choices = list(options or [])
        if value in choices:
            return value
        text = str(value).strip()
        if text in [str(c) for c in choices]:
            return choices[[str(c) for c in choices].index(text)]
        if text.isdigit() and 1 <= int(text) <= len(choices):
            return choices[int(text) - 1]
        raise AnswerError(
            f"answer {value!r} is not one of: {', '.join(map(str, choices))} (or 1-{len(choices)})"
        )
    return "" if value is None else str(value)
