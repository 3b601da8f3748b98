"""The one place litellm is imported: offline cost map, silenced logging, scripted provider.

Call :func:`load_litellm` inside functions, never at module import time, so that
``import loopcraft`` stays fast and works without touching the network.
"""

from __future__ import annotations

import logging
import os
from functools import cache
from typing import Any

_LITELLM_LOGGERS = ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "litellm")


@cache
def load_litellm() -> Any:
    """Import litellm once, configured for loopcraft; returns the module."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("LITELLM_TELEMETRY", "False")
    import litellm

    litellm.suppress_debug_info = True
    litellm.set_verbose = False
    litellm.telemetry = False
    litellm.turn_off_message_logging = True
    litellm.drop_params = True
    for name in _LITELLM_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(logging.CRITICAL)
        logger.propagate = False
    _register_scripted(litellm)
    return litellm


def _register_scripted(litellm: Any) -> None:
    """Add the ``scripted`` provider to litellm's custom-provider map (idempotent)."""
    from loopcraft.models.scripted import make_handler

    if any(item.get("provider") == "scripted" for item in litellm.custom_provider_map):
        return
    litellm.custom_provider_map.append({"provider": "scripted", "custom_handler": make_handler()})
    setup = getattr(getattr(litellm, "utils", None), "custom_llm_setup", None)
    if callable(setup):
        setup()
