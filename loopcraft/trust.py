"""Repo trust: whether a folder's own ``.loopcraft/config.toml`` and workflow files may be used in
full. Decided once, at config load, before any repo file is imported. Trusted folders are listed in
the user's home (``~/.loopcraft/trusted.txt``, one resolved path a line); ``LOOPCRAFT_TRUST=1``
trusts the current folder for one command (CI). The user's own config is always trusted.

An untrusted repo's config keeps only harmless keys: nothing that sends a key elsewhere
(``api_base``, ``api_key_env``, headers), loosens permissions or containment, or runs code."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from loopcraft.paths import home_dir

TRUST_ENV = "LOOPCRAFT_TRUST"
# The keys an untrusted repo may set (everything else it sets is ignored and reported).
_HARMLESS_TOP = {"model", "fallback_models", "theme"}
_HARMLESS_AGENT = {
    "max_turns",
    "max_tool_calls",
    "wall_time",
    "max_tokens",
    "max_dollars",
    "repeat_limit",
    "max_malformed",
    "compaction_threshold",
    "keep_recent_turns",
    "bash_timeout",
    "max_tool_output",
}
_HARMLESS_MODEL = {
    "context_window",
    "max_output_tokens",
    "input_cost_per_mtok",
    "output_cost_per_mtok",
    "cache_read_cost_per_mtok",
    "cache_write_cost_per_mtok",
    "script",
}
_HARMLESS_SECTIONS = {"retry", "engine", "budget", "notify"}


def trust_file() -> Path:
    return home_dir() / "trusted.txt"


def trusted_folders() -> set[str]:
    path = trust_file()
    if not path.is_file():
        return set()
    return {line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()}


def is_trusted(root: Path, environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``root`` is trusted: listed in the home trust file, or ``LOOPCRAFT_TRUST=1``."""
    env = os.environ if environ is None else environ
    if env.get(TRUST_ENV, "").strip().lower() in {"1", "true", "yes"}:
        return True
    return str(root.resolve()) in trusted_folders()


def trust(root: Path) -> Path:
    """Record ``root`` as trusted (idempotent); the resolved path written."""
    resolved = root.resolve()
    folders = trusted_folders() | {str(resolved)}
    path = trust_file()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.write_text("".join(f"{f}\n" for f in sorted(folders)), encoding="utf-8")
    os.chmod(path, 0o600)
    return resolved


def limit_untrusted(layer: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """An untrusted repo's config reduced to harmless keys, and the dotted keys that were dropped."""
    kept: dict[str, Any] = {}
    dropped: list[str] = []
    for key, value in layer.items():
        if key in _HARMLESS_TOP or key in _HARMLESS_SECTIONS:
            kept[key] = value
        elif key == "agent" and isinstance(value, Mapping):
            kept[key] = {k: v for k, v in value.items() if k in _HARMLESS_AGENT}
            dropped += [f"agent.{k}" for k in value if k not in _HARMLESS_AGENT]
        elif key == "models" and isinstance(value, Mapping):
            kept[key] = {}
            for name, opts in value.items():
                if not isinstance(opts, Mapping):
                    continue
                kept[key][name] = {k: v for k, v in opts.items() if k in _HARMLESS_MODEL}
                dropped += [f'models."{name}".{k}' for k in opts if k not in _HARMLESS_MODEL]
        else:
            dropped.append(key)
    return kept, dropped


def untrusted_notice(root: Path, dropped: list[str], workflows: bool) -> str:
    """The one line a headless command prints about what an untrusted folder did not get."""
    parts = []
    if dropped:
        parts.append(f"its config keys {', '.join(dropped)}")
    if workflows:
        parts.append("its .loopcraft/workflows files")
    return (
        f"note: {root} is not a trusted folder, so {' and '.join(parts)} were ignored; "
        f"trust it with `loopcraft trust {root}` (or LOOPCRAFT_TRUST=1 for one command)"
    )
