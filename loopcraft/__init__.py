"""loopcraft: a loop engine for coding agents.

The public workflow API is re-exported here lazily so that ``import loopcraft``
stays fast and never imports litellm.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["Context", "StageResult", "__version__", "workflow"]

if TYPE_CHECKING:
    from loopcraft.engine.context import Context, StageResult
    from loopcraft.engine.definition import workflow


def __getattr__(name: str) -> Any:
    if name == "workflow":
        from loopcraft.engine.definition import workflow

        return workflow
    if name in ("Context", "StageResult"):
        from loopcraft.engine import context

        return getattr(context, name)
    raise AttributeError(f"module 'loopcraft' has no attribute {name!r}")
