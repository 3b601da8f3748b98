"""What a model's context window is: the ``[models.X] context_window`` override first, else
litellm's model info (``max_input_tokens``), else 128k. One answer for the agent's compaction,
the request's output cap and the status bar."""

from __future__ import annotations

import functools
from typing import Any

DEFAULT_CONTEXT_WINDOW = 128_000


@functools.lru_cache(maxsize=256)
def _litellm_window(model: str) -> int | None:
    from loopcraft.models.litellm_loader import load_litellm
    from loopcraft.models.spec import parse_model

    spec = parse_model(model)
    if spec.provider in ("scripted", "openai_compatible"):
        return None
    try:
        info = load_litellm().get_model_info(spec.litellm_model)
    except Exception:  # litellm raises for a model it does not map
        return None
    window = info.get("max_input_tokens") or info.get("max_tokens")
    return window if isinstance(window, int) and window > 0 else None


def context_window(model: str, configured: int | None = None, *, load: bool = True) -> int:
    """The input window of ``model``: ``configured`` (the config override), else litellm's model
    info, else 128k. ``load=False`` never imports litellm (the status bar before it has loaded)."""
    if configured:
        return configured
    from loopcraft.models.litellm_loader import litellm_loaded

    if not load and not litellm_loaded():
        return DEFAULT_CONTEXT_WINDOW
    try:
        return _litellm_window(model) or DEFAULT_CONTEXT_WINDOW
    except Exception:  # an unparseable model string has no known window
        return DEFAULT_CONTEXT_WINDOW


def client_context_window(client: Any, model: str) -> int:
    """``client.context_window(model)`` when the client knows (its config override included),
    else :func:`context_window` from litellm's model info."""
    ask = getattr(client, "context_window", None)
    return int(ask(model)) if callable(ask) else context_window(model)
