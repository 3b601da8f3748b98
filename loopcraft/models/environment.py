"""What each configured model needs from the environment, checked the way litellm checks it
(``litellm.validate_environment``), and where Ollama is: the model's ``api_base``, else
``OLLAMA_API_BASE`` (litellm's variable), else ``OLLAMA_HOST`` (Ollama's own), else localhost.
``doctor`` prints these checks; presence of keys only, never their values."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from loopcraft.config import ModelOptions
from loopcraft.models.spec import parse_model

OLLAMA_DEFAULT = "http://localhost:11434"
OLLAMA_PROVIDERS = ("ollama", "ollama_chat")


@dataclass(frozen=True)
class OllamaBase:
    url: str
    source: str  # config api_base, OLLAMA_API_BASE, OLLAMA_HOST, default


@dataclass(frozen=True)
class EnvCheck:
    model: str
    ok: bool
    detail: str  # one line a user reads: what is there, or what is missing and how to fix it


def _ollama_url(value: str) -> str:
    """``OLLAMA_HOST`` read as Ollama reads it (``host``, ``host:port`` or a URL; port 11434 without a
    scheme, else the scheme's own) as a URL to call."""
    value = value.strip().rstrip("/")
    default_port = 11434
    if "://" in value:
        default_port = 443 if value.startswith("https://") else 80
    else:
        value = f"http://{value}"
    parts = urlsplit(value)
    host = parts.hostname or "localhost"
    host = "127.0.0.1" if host == "0.0.0.0" else host  # serve on every interface: call it locally
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}:{parts.port or default_port}{parts.path}"


def ollama_base(environ: Mapping[str, str] = os.environ, configured: str | None = None) -> OllamaBase:
    """Where Ollama answers, and which setting said so."""
    if configured:
        return OllamaBase(configured.rstrip("/"), "config api_base")
    if environ.get("OLLAMA_API_BASE", "").strip():
        return OllamaBase(environ["OLLAMA_API_BASE"].strip().rstrip("/"), "OLLAMA_API_BASE")
    if environ.get("OLLAMA_HOST", "").strip():
        return OllamaBase(_ollama_url(environ["OLLAMA_HOST"]), "OLLAMA_HOST")
    return OllamaBase(OLLAMA_DEFAULT, "default")


def reachable(url: str, timeout: float = 0.3) -> bool:
    """True when something accepts connections at ``url``'s host and port within ``timeout``."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "localhost", port), timeout=timeout):
            return True
    except OSError:
        return False


def check_model(model: str, options: ModelOptions, environ: Mapping[str, str] = os.environ) -> EnvCheck:
    """Whether ``model`` can be called from this environment, in one line."""
    spec = parse_model(model)
    if spec.provider == "scripted":
        return EnvCheck(model, True, "offline scripted model: nothing needed")
    if options.api_key_env:
        present = bool(environ.get(options.api_key_env))
        state = "present" if present else f'not set (api_key_env of [models."{spec.base}"]): export it'
        return EnvCheck(model, present, f"{options.api_key_env} {state}")
    if spec.provider in OLLAMA_PROVIDERS:
        base = ollama_base(environ, options.api_base)
        up = reachable(base.url)
        state = "answering" if up else "not answering: start `ollama serve` or set OLLAMA_HOST"
        return EnvCheck(model, up, f"Ollama at {base.url} (from {base.source}) {state}")
    if spec.provider == "openai_compatible":
        if not options.api_base:
            return EnvCheck(model, False, f'no api_base: set it under [models."{spec.base}"] in config.toml')
        return EnvCheck(model, True, f"api_base {options.api_base} (from config)")
    from loopcraft.models.litellm_loader import load_litellm

    result = load_litellm().validate_environment(model=spec.litellm_model, api_base=options.api_base)
    missing = [str(k) for k in result.get("missing_keys") or []]
    if result.get("keys_in_environment") and not missing:
        return EnvCheck(model, True, "environment complete (litellm validate_environment)")
    if not missing:
        return EnvCheck(model, True, "no key litellm knows of is required")
    return EnvCheck(
        model,
        False,
        f'missing {", ".join(missing)}: export {"it" if len(missing) == 1 else "them"}, or set api_key_env under [models."{spec.base}"]',
    )
