"""What the app's first frame shows of the configuration (theme, model, permission mode), read
from the same layers as :func:`loopcraft.config.load_config` but without validating them.

pydantic and the config models were about a quarter of the app's first paint, so the app
validates the whole configuration right after its first frame and then uses only the validated
values; a layer that does not parse is left to that validation, which reports it.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loopcraft.paths import home_dir, state_dir
from loopcraft.trust import is_trusted, limit_untrusted

_ENV = {
    "theme": "LOOPCRAFT_THEME",
    "model": "LOOPCRAFT_MODEL",
    "permission_mode": "LOOPCRAFT_AGENT__PERMISSION_MODE",
}


@dataclass(frozen=True)
class ConfigPreview:
    """The first frame's settings; the validated configuration replaces them after it."""

    theme: str = "loopcraft-dark"
    model: str | None = None
    permission_mode: str = "default"


def _table(path: Path) -> Mapping[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (OSError, ValueError):  # reported by the validation after the first frame
        return {}


def _values(layer: Mapping[str, Any]) -> dict[str, Any]:
    agent = layer.get("agent")
    mode = agent.get("permission_mode") if isinstance(agent, Mapping) else None
    found = {"theme": layer.get("theme"), "model": layer.get("model"), "permission_mode": mode}
    return {key: value for key, value in found.items() if isinstance(value, str)}


def preview_config(
    root: Path, model_flag: str | None = None, environ: Mapping[str, str] | None = None
) -> ConfigPreview:
    """Defaults < user config < repo config (limited when untrusted) < environment < ``--model``."""
    environ = os.environ if environ is None else environ
    repo: Mapping[str, Any] = _table(state_dir(root) / "config.toml")
    if repo and not is_trusted(root, environ):
        repo, _ = limit_untrusted(repo)
    merged: dict[str, Any] = {}
    for layer in (_table(home_dir() / "config.toml"), repo):
        merged.update(_values(layer))
    merged.update({key: environ[name] for key, name in _ENV.items() if name in environ})
    if model_flag:
        merged["model"] = model_flag
    return ConfigPreview(**merged)
