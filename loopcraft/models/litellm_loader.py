"""The one place litellm is imported: offline cost map, silenced logging, scripted provider,
and litellm's own per-call cost pricing switched off (loopcraft prices usage in cost.py).

Call :func:`load_litellm` inside functions, never at module import time, so that
``import loopcraft`` stays fast and works without touching the network. A command that will
call a model starts the import at once in a background thread (:func:`preload_litellm`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import warnings
from typing import Any

from loopcraft.logs import quiet_litellm

_loaded: Any = None
_load_lock = threading.Lock()
_preloading: threading.Thread | None = None
_preload_lock = threading.Lock()  # not _load_lock: that one is held for the whole import


def load_litellm() -> Any:
    """Import litellm once, configured for loopcraft; returns the module (thread-safe)."""
    global _loaded
    if _loaded is None:
        with _load_lock:  # one thread imports and configures; the others wait for it
            if _loaded is None:
                _loaded = _import_and_configure()
    return _loaded


def preload_litellm() -> None:
    """Start importing litellm in a daemon thread, for a command that will call a model: the
    import (seconds) overlaps config, journal and workflow loading. Idempotent; a failed import
    is left for the first call to raise."""
    global _preloading
    with _preload_lock:
        if _loaded is not None or _preloading is not None:
            return
        _preloading = threading.Thread(target=_preload, name="loopcraft-litellm-import", daemon=True)
    _preloading.start()


def _preload() -> None:
    try:
        warm_litellm(load_litellm())
    except Exception:  # the call that needs litellm imports it again and reports the error
        logging.getLogger(__name__).debug("background import of litellm failed", exc_info=True)


# Modules litellm 1.106 imports on its first call, not at import (0.3 s together): the token
# counter's default encoding, anyio's backend (stream assembly runs in a thread), file-id helpers,
# the stream assembler's types.
_FIRST_CALL_MODULES = (
    "litellm.litellm_core_utils.default_encoding",
    "anyio._backends._asyncio",
    "litellm.proxy.openai_files_endpoints.common_utils",
    "litellm.types.litellm_core_utils.streaming_chunk_builder_utils",
    "litellm.llms.vertex_ai.vertex_ai_partner_models.anthropic.transformation",
)


def warm_litellm(litellm: Any) -> None:
    """Do now, off the event loop, what litellm would do lazily on the first call: import
    :data:`_FIRST_CALL_MODULES`, build its provider-config map, resolve a scripted model.
    Best effort: a step that fails (another litellm version) is left to the first call."""
    import importlib

    for name in _FIRST_CALL_MODULES:
        try:
            importlib.import_module(name)
        except Exception:
            continue
    steps = (
        lambda: litellm.get_llm_provider(model="scripted/warm-up"),
        lambda: litellm.utils.ProviderConfigManager.get_provider_chat_config(
            model="warm-up", provider=litellm.LlmProviders.OPENAI_LIKE
        ),
    )
    for step in steps:
        try:
            step()
        except Exception:
            continue


def litellm_loaded() -> bool:
    """True once :func:`load_litellm` has imported litellm (asking never imports it)."""
    return _loaded is not None


async def load_litellm_async() -> Any:
    """:func:`load_litellm` without blocking the event loop (the first import takes seconds)."""
    return _loaded if _loaded is not None else await asyncio.to_thread(load_litellm)


def _import_and_configure() -> Any:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("LITELLM_TELEMETRY", "False")
    import litellm

    litellm.suppress_debug_info = True
    litellm.set_verbose = False
    litellm.telemetry = False
    litellm.turn_off_message_logging = True
    litellm.drop_params = True
    # Per-call work for logging loopcraft never reads (its usage and cost come from the stream):
    litellm.disable_streaming_logging = True  # no success-logging job per streamed chunk
    litellm.disable_end_user_cost_tracking = True  # no end-user id lookup in the logging payload
    quiet_litellm()  # never on the terminal; warnings into loopcraft's log file, when there is one
    _register_scripted(litellm)
    _skip_litellm_pricing()
    _warnings_to_log()
    return litellm


_LIBRARY_WARNINGS = ("litellm", "pydantic", "httpx", "openai")
_warning_log = logging.getLogger("loopcraft.models.warnings")


def _warnings_to_log() -> None:
    """Send warnings raised inside litellm and the libraries it drives (e.g. pydantic's
    serializer warnings on Responses usage) to the log instead of stderr, where they would
    land in headless output. Warnings from anywhere else are shown as before."""
    shown = warnings.showwarning
    if getattr(shown, "_loopcraft", False):
        return

    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int, *rest: Any) -> None:
        if any(f"/{name}/" in filename.replace("\\", "/") for name in _LIBRARY_WARNINGS):
            _warning_log.debug("%s: %s (%s:%s)", category.__name__, message, filename, lineno)
            return
        shown(message, category, filename, lineno, *rest)

    show._loopcraft = True  # type: ignore[attr-defined]
    warnings.showwarning = show  # type: ignore[assignment]


def _no_cost(self: Any, *args: Any, **kwargs: Any) -> None:
    return None


def _skip_litellm_pricing() -> None:
    """Stop litellm pricing each call; loopcraft never reads its figure (see cost.py).

    litellm prices every streamed call twice (the stream wrapper's hidden params and the
    assembled response), walking its model-name generalisations for models it does not
    know (``scripted/*``, ``openai_compatible/*``): a quarter to a third of its per-call CPU.
    No setting turns this off, so this is loopcraft's one patch of litellm: the logging
    object's calculator answers ``None`` ("cost unknown"), which litellm already handles
    when its own pricing fails. ``_hidden_params["response_cost"]`` is then None.
    """
    from litellm.litellm_core_utils.litellm_logging import Logging

    Logging.response_cost_calculator = _no_cost  # type: ignore[method-assign]


def _register_scripted(litellm: Any) -> None:
    """Add the ``scripted`` provider to litellm's custom-provider map (idempotent)."""
    from loopcraft.models.scripted import make_handler

    if any(item.get("provider") == "scripted" for item in litellm.custom_provider_map):
        return
    litellm.custom_provider_map.append({"provider": "scripted", "custom_handler": make_handler()})
    setup = getattr(getattr(litellm, "utils", None), "custom_llm_setup", None)
    if callable(setup):
        setup()
