"""Default model resolution: which model to use when the user did not say exactly.

Precedence: flag > stage option > config ``model`` > ``LOOPCRAFT_MODEL`` > a detected
provider (API key in the environment, or an Ollama answering locally) > the offline
scripted demo model, with a notice saying so.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from loopcraft.models.spec import parse_model

if TYPE_CHECKING:
    from loopcraft.config import Config

DEMO_MODEL = "scripted/demo"
DEMO_NOTICE = (
    "no real model configured: using the offline scripted demo model (set LOOPCRAFT_MODEL or an API key)"
)
OLLAMA_MODEL = "ollama/qwen2.5-coder"

# Environment variable -> the model used when only that key is present (first wins).
KEY_MODELS: tuple[tuple[str, str], ...] = (
    ("ANTHROPIC_API_KEY", "anthropic/claude-sonnet-4-5"),
    ("OPENAI_API_KEY", "openai/gpt-5.5"),
    ("GEMINI_API_KEY", "gemini/gemini-2.5-pro"),
)


@dataclass(frozen=True)
class ResolvedModel:
    model: str
    source: str  # flag, stage, config, env, detected:<VAR>, detected:ollama, demo
    notice: str | None = None


def api_key_status(environ: Mapping[str, str] = os.environ) -> dict[str, bool]:
    """Which known API keys are set (presence only, never values)."""
    return {var: bool(environ.get(var)) for var, _ in KEY_MODELS}


def ollama_running(environ: Mapping[str, str] = os.environ, timeout: float = 0.3) -> bool:
    """True when something accepts connections where Ollama is (``OLLAMA_API_BASE`` / ``OLLAMA_HOST``)."""
    from loopcraft.models.environment import ollama_base, reachable

    return reachable(ollama_base(environ).url, timeout)


def _validated(model: str, source: str, notice: str | None = None) -> ResolvedModel:
    return ResolvedModel(str(parse_model(model)), source, notice)


def resolve_model(
    flag: str | None = None,
    stage_option: str | None = None,
    config: Config | None = None,
    environ: Mapping[str, str] = os.environ,
) -> ResolvedModel:
    """The model to use and where it came from; bad strings raise ``ModelSpecError``."""
    explicit = (
        (flag, "flag"),
        (stage_option, "stage"),
        (config.model if config else None, "config"),
        (environ.get("LOOPCRAFT_MODEL"), "env"),
    )
    for value, source in explicit:
        if value and value.strip():
            return _validated(value, source)
    for var, model in KEY_MODELS:
        if environ.get(var):
            return _validated(model, f"detected:{var}")
    if not environ.get("LOOPCRAFT_NO_OLLAMA_PROBE") and ollama_running(environ):
        return _validated(OLLAMA_MODEL, "detected:ollama")
    return _validated(DEMO_MODEL, "demo", DEMO_NOTICE)
