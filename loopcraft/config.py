"""Configuration: defaults < ``~/.loopcraft/config.toml`` < repo ``.loopcraft/config.toml``
< ``LOOPCRAFT_*`` environment variables < CLI flags, validated with pydantic.

Environment variables map onto keys: ``LOOPCRAFT_MODEL`` is ``model``;
``LOOPCRAFT_AGENT__MAX_TURNS`` is ``agent.max_turns`` (double underscore nests).
A bad value anywhere is one :class:`ConfigError` line naming the source, the key
and the problem.
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from loopcraft.errors import ConfigError, ModelSpecError
from loopcraft.numbers import (
    Count,
    Delay,
    Dollars,
    LeaseSeconds,
    Timeout,
    Tokens,
    Whole0To20,
    Whole1To1000,
    Whole1To10000,
    Whole2To1000,
    Whole101To100000000,
)
from loopcraft.paths import home_dir, repo_root, state_dir
from loopcraft.trust import is_trusted, limit_untrusted

PermissionMode = Literal["default", "accept-edits", "plan", "yolo"]

# Shell commands that need a human's approval token in every permission mode (yolo included);
# headless runs refuse them. Regexes searched anywhere in the command line; override the whole
# list with ``agent.destructive_commands``. Covers: recursive/forced rm, force pushes, hard
# resets, git clean -f, deleting branches, discarding the work tree, dropping or truncating
# database objects (any case), formatting disks, dd onto devices, chmod -R 777, a fork bomb.
DEFAULT_DESTRUCTIVE = [
    r"\brm\s+(-[a-zA-Z]*[rRf][a-zA-Z]*\s+)+",
    r"\brm\s+(.*\s)?--(recursive|force)\b",
    r"\bgit\s+push\s+.*(--force\b|-f\b|--force-with-lease\b)",
    r"\bgit\s+reset\s+--hard\b",
    r"\bgit\s+clean\s+-[a-zA-Z]*f",
    r"\bgit\s+branch\s+-D\b",
    r"\bgit\s+checkout\s+--\s+\.",
    r"(?i)\bdrop\s+(database|table|schema)\b",
    r"(?i)\btruncate\s+table\b",
    r"\bmkfs(\.\w+)?\b",
    r"\bdd\s+.*\bof=/dev/",
    r"\bchmod\s+-R\s+777\b",
    r":\(\)\s*\{\s*:\|:&\s*\};:",
]


def _valid_regex(text: str) -> str:
    try:
        re.compile(text)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression ({exc}); fix or remove it") from exc
    return text


Regex = Annotated[str, AfterValidator(_valid_regex)]


def _budget_value(value: dict[str, float]) -> dict[str, float]:
    from loopcraft.engine.budgets import BudgetError, check_budget

    try:
        return check_budget(value) or {}
    except BudgetError as exc:
        raise ValueError(str(exc)) from None


SandboxMode = Literal["workspace-write", "read-only", "off"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelOptions(_Strict):
    """Per-model settings, keyed by the model string (``[models."openai/gpt-5.5"]``)."""

    api_base: str | None = None
    api_key_env: str | None = None
    context_window: Tokens | None = None
    max_output_tokens: Tokens | None = None
    input_cost_per_mtok: float | None = Field(default=None, ge=0, le=1_000_000, allow_inf_nan=False)
    output_cost_per_mtok: float | None = Field(default=None, ge=0, le=1_000_000, allow_inf_nan=False)
    cache_read_cost_per_mtok: float | None = Field(default=None, ge=0, le=1_000_000, allow_inf_nan=False)
    cache_write_cost_per_mtok: float | None = Field(default=None, ge=0, le=1_000_000, allow_inf_nan=False)
    script: str | None = None  # scripted models: path of the script file
    # The effort when the model string gives none (``provider/model:effort`` wins).
    effort: Literal["off", "minimal", "low", "medium", "high", "max"] | None = None

    @field_validator("effort", mode="before")
    @classmethod
    def _effort_lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value


class RetryConfig(_Strict):
    max_retries: Whole0To20 = 3
    base_delay: Delay = 1.0
    max_delay: Delay = 60.0
    request_timeout: Timeout = 600.0

    @field_validator("max_delay")
    @classmethod
    def _delays_ordered(cls, value: float, info: ValidationInfo) -> float:
        base = info.data.get("base_delay")
        if base is not None and value < base:
            raise ValueError(f"must be at least retry.base_delay ({base:g}), got {value:g}")
        return value


class PermissionRule(_Strict):
    tool: str = "*"
    pattern: str = "*"
    action: Literal["allow", "ask", "deny"]


class ShellEnvConfig(_Strict):
    """Which variables the shell gets: secret-like names are dropped; ``include`` keeps a name,
    ``exclude`` (globs) drops more."""

    include: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)


class AgentConfig(_Strict):
    max_turns: Count = 100
    max_tool_calls: Count = 500
    wall_time: Timeout = 3600.0
    max_tokens: Tokens | None = None
    max_dollars: Dollars | None = None
    repeat_limit: Whole2To1000 = 3
    max_malformed: Whole1To1000 = 3
    compaction_threshold: float = Field(default=0.8, gt=0, le=1, allow_inf_nan=False)
    keep_recent_turns: Whole1To10000 = 4
    bash_timeout: Timeout = 120.0
    max_tool_output: Whole101To100000000 = 30_000
    permission_mode: PermissionMode = "default"
    permissions: list[PermissionRule] = Field(default_factory=list)
    # extra regexes on top of the built-in parsed-command checks (which can't be switched off)
    destructive_commands: list[Regex] = Field(default_factory=lambda: list(DEFAULT_DESTRUCTIVE))
    sandbox: SandboxMode = "workspace-write"  # the shell's OS sandbox (bubblewrap) where one works
    sandbox_required: bool = False  # refuse to run the shell when no sandbox works
    sandbox_network: bool = False
    shell_env: ShellEnvConfig = Field(default_factory=ShellEnvConfig)
    allow_paths: list[str] = Field(default_factory=list)  # protected paths granted to file tools
    secret_env: list[str] = Field(default_factory=list)  # more variables whose values are redacted
    # Project memory: per folder (repo root down to the current one) the first of these that exists.
    memory_files: list[str] = Field(default_factory=lambda: ["AGENTS.md", "CLAUDE.md"])


_SERVER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _env_names(names: list[str]) -> list[str]:
    bad = [n for n in names if not _ENV_NAME.match(n)]
    if bad:
        raise ValueError(f"{bad[0]!r} is not an environment variable name (give names, never values)")
    return names


class McpServerConfig(_Strict):
    """One MCP server: ``command`` (+ ``args``) over stdio, or ``url`` over streamable HTTP."""

    command: str | None = None
    args: list[str] = Field(default_factory=list)
    env: Annotated[list[str], AfterValidator(_env_names)] = Field(default_factory=list)  # names passed
    url: str | None = None
    headers_env: dict[str, str] = Field(default_factory=dict)  # HTTP header -> variable holding its value
    enabled: bool = True
    tools: list[str] | None = None  # the server's tools to use (globs); None: all
    timeout: Timeout = 60.0  # seconds per call; start-up waits at least 30

    @field_validator("headers_env")
    @classmethod
    def _header_vars(cls, value: dict[str, str]) -> dict[str, str]:
        _env_names(list(value.values()))
        return value

    @model_validator(mode="after")
    def _one_transport(self) -> McpServerConfig:
        if (self.command is None) == (self.url is None):
            raise ValueError("set exactly one of `command` (stdio) or `url` (streamable HTTP)")
        if self.url is not None and not self.url.startswith(("http://", "https://")):
            raise ValueError("`url` must start with http:// or https://")
        return self


class McpConfig(_Strict):
    servers: dict[str, McpServerConfig] = Field(default_factory=dict)

    @field_validator("servers")
    @classmethod
    def _names(cls, value: dict[str, McpServerConfig]) -> dict[str, McpServerConfig]:
        bad = [n for n in value if not _SERVER_NAME.match(n) or "__" in n]
        if bad:
            raise ValueError(f"server name {bad[0]!r}: use letters, digits, `-` or `_` (no `__`), at most 32")
        return value


class EngineConfig(_Strict):
    max_output: Count = 20_000
    max_depth: Whole1To1000 = 8
    lease_seconds: LeaseSeconds = 10.0
    heartbeat_seconds: LeaseSeconds = 2.0
    poll_seconds: LeaseSeconds = 0.1
    default_concurrency: Whole1To10000 = 8
    # ceiling of a dynamic run's budget (tokens, dollars, seconds)
    dynamic_budget: Annotated[dict[str, float], AfterValidator(_budget_value)] | None = None
    max_dynamic_stages: Whole1To10000 = 16  # per workflow-tool call
    # A running stage with no model or tool activity for this long is marked stalled (seconds).
    stall_after: Timeout = 300.0
    # A rate or usage limit whose reset is further away than this stops the run as blocked (seconds).
    max_limit_wait: Timeout = 6 * 3600.0
    # The journal's SQLite synchronous setting: "normal" (a finished step survives a crash of the
    # process, the default) or "full" (it also survives a power loss or an OS crash; slower).
    synchronous: Literal["normal", "full"] = "normal"

    @field_validator("heartbeat_seconds")
    @classmethod
    def _beat_within_lease(cls, value: float, info: ValidationInfo) -> float:
        lease = info.data.get("lease_seconds")
        if lease is not None and value > lease / 2:
            raise ValueError(
                f"must be at most half of engine.lease_seconds ({lease:g}), got {value:g}: "
                "a lease must be renewed before it runs out"
            )
        return value


class BudgetConfig(_Strict):
    """How budgets are watched: a notice once a run has spent ``warn_at`` of a limit."""

    warn_at: float = Field(default=0.8, gt=0, le=1, allow_inf_nan=False)


class NotifyConfig(_Strict):
    """Lifecycle notices: a long run posts a heartbeat every ``heartbeat_minutes`` (0: never)."""

    heartbeat_minutes: float = Field(default=10.0, ge=0, le=7 * 24 * 60, allow_inf_nan=False)


class Config(_Strict):
    model: str | None = None
    fallback_models: list[str] = Field(default_factory=list)
    theme: str = "loopcraft-dark"
    serve: bool = False  # the app fires the repo's triggers while open (as `loopcraft serve`)
    models: dict[str, ModelOptions] = Field(default_factory=dict)
    retry: RetryConfig = Field(default_factory=RetryConfig)
    agent: AgentConfig = Field(default_factory=AgentConfig)
    engine: EngineConfig = Field(default_factory=EngineConfig)
    budget: BudgetConfig = Field(default_factory=BudgetConfig)
    notify: NotifyConfig = Field(default_factory=NotifyConfig)
    mcp: McpConfig = Field(default_factory=McpConfig)
    _origin: dict[tuple[str, ...], str] = PrivateAttr(default_factory=dict)

    def source_of(self, *key: str) -> str:
        """Where the value at ``key`` came from: ``user config <path>``, ``repo config <path>``,
        ``env LOOPCRAFT_<KEY>``, ``flag`` or ``default``."""
        source = _source_of(key, self._origin)
        if source.startswith(_ENV_SOURCE):
            return f"env {source.removeprefix(_ENV_SOURCE).strip()}"
        if source == _FLAG_SOURCE:
            return "flag"
        if source == "configuration":
            return "default"
        return f"{'user' if Path(source) == user_config_path() else 'repo'} config {source}"

    _untrusted_ignored: list[str] = PrivateAttr(default_factory=list)  # repo keys an untrusted folder lost

    @property
    def untrusted_ignored(self) -> list[str]:
        return self._untrusted_ignored

    @model_validator(mode="after")
    def _key_names_are_secret(self) -> Config:
        """Provider ``api_key_env`` targets are secrets: their values are redacted from tool output."""
        names = [o.api_key_env for o in self.models.values() if o.api_key_env]
        for server in self.mcp.servers.values():  # what MCP servers are given is secret too
            names += [*server.env, *server.headers_env.values()]
        self.agent.secret_env = list(dict.fromkeys([*self.agent.secret_env, *names]))
        return self

    def model_options(self, model: str) -> ModelOptions:
        """Options for ``model`` (its exact string, then without ``:effort``), else defaults."""
        if model in self.models:
            return self.models[model]
        from loopcraft.models.spec import split_effort  # models depend on config, not the other way round

        return self.models.get(split_effort(model)[0], ModelOptions())


_ENV_PREFIX = "LOOPCRAFT_"
_ENV_SOURCE = "environment variable"
_FLAG_SOURCE = "command-line flags"
_ENV_RESERVED = {"TRUST", "HOME", "SCRIPTED_CALL_LOG", "SCRIPT", "NO_BACKGROUND", "DB", "NO_OLLAMA_PROBE"}


def user_config_path() -> Path:
    return home_dir() / "config.toml"


def repo_config_path(root: Path | None = None) -> Path:
    return state_dir(root) / "config.toml"


def _read_toml(path: Path) -> dict[str, Any]:
    """The TOML table in ``path`` ({} when there is none); a file that is there but can't be used
    (a directory, unreadable, a broken link, not UTF-8, bad TOML, a NUL in a value) is a
    :class:`ConfigError` naming it."""
    try:
        mode = path.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        if path.is_symlink():
            raise ConfigError(
                f"config error: {path}: is a broken link (to {os.readlink(path)}); fix or remove it"
            ) from None
        return {}
    except OSError as exc:
        raise ConfigError(f"config error: {path}: cannot be read ({exc.strerror}); fix or remove it") from exc
    if stat.S_ISDIR(mode):
        raise ConfigError(
            f"config error: {path}: is a directory, not a file; remove it or make it a TOML file"
        )
    if not stat.S_ISREG(mode):
        raise ConfigError(f"config error: {path}: is not a regular file; make it a TOML file")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"config error: {path}: is not UTF-8 text (byte {exc.start}); save it as UTF-8"
        ) from exc
    except OSError as exc:
        raise ConfigError(f"config error: {path}: cannot be read ({exc.strerror}); fix or remove it") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config error: {path}: not valid TOML ({exc}); fix the file's syntax") from exc
    nul = _nul_key(data)
    if nul is not None:
        nul = nul.replace("\0", "\\0")
        raise ConfigError(f"config error: {path}: {nul}: contains a NUL character (\\u0000); remove it")
    return data


def _nul_key(value: Any, key: str = "") -> str | None:
    """The key (``agent.allow_paths[0]``) of the first string holding a NUL character, if any."""
    if isinstance(value, str):
        return (key or "(top level)") if "\0" in value else None
    items: list[tuple[str, Any]] = []
    if isinstance(value, dict):
        items = [(f"{key}.{k}" if key else str(k), v) for k, v in value.items()]
        items += [(f"{key}.{k}" if key else str(k), k) for k in value]  # a NUL in a key, too
    elif isinstance(value, list):
        items = [(f"{key}[{i}]", v) for i, v in enumerate(value)]
    for sub, item in items:
        found = _nul_key(item, sub)
        if found is not None:
            return found
    return None


def _env_layers(environ: Mapping[str, str]) -> list[tuple[str, dict[str, Any]]]:
    """One layer per ``LOOPCRAFT_*`` variable, its source naming the variable (for errors)."""
    layers: list[tuple[str, dict[str, Any]]] = []
    for key, value in sorted(environ.items()):
        if not key.startswith(_ENV_PREFIX):
            continue
        name = key[len(_ENV_PREFIX) :]
        if name in _ENV_RESERVED or not name:
            continue
        path = [part.lower() for part in name.split("__")]
        if path[0] not in Config.model_fields:
            continue
        parsed: Any = value
        if path == ["fallback_models"]:
            parsed = [v.strip() for v in value.split(",") if v.strip()]
        layer: dict[str, Any] = {}
        _set_path(layer, path, parsed)
        layers.append((f"{_ENV_SOURCE} {key}", layer))
    return layers


def _set_path(target: dict[str, Any], path: list[str], value: Any) -> None:
    for part in path[:-1]:
        target = target.setdefault(part, {})
    target[path[-1]] = value


def _merge(
    base: dict[str, Any],
    top: Mapping[str, Any],
    origin: dict[tuple[str, ...], str],
    source: str,
    prefix: tuple[str, ...] = (),
) -> None:
    for key, value in top.items():
        loc = (*prefix, key)
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge(base[key], value, origin, source, loc)
        else:
            base[key] = dict(value) if isinstance(value, Mapping) else value
            origin[loc] = source


def _source_of(loc: tuple[str, ...], origin: dict[tuple[str, ...], str]) -> str:
    for end in range(len(loc), 0, -1):
        if loc[:end] in origin:
            return origin[loc[:end]]
    return "configuration"


def load_config(
    root: Path | None = None, flags: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> Config:
    """Merge every layer and validate; raises :class:`ConfigError` with one clear line."""
    root = root or repo_root()
    merged: dict[str, Any] = {}
    origin: dict[tuple[str, ...], str] = {}
    user_path, repo_path = user_config_path(), repo_config_path(root)
    repo_layer: Mapping[str, Any] = _read_toml(repo_path)
    ignored: list[str] = []
    if repo_layer and not is_trusted(root):
        repo_layer, ignored = limit_untrusted(repo_layer)
    layers: list[tuple[str, Mapping[str, Any]]] = [
        (str(user_path), _read_toml(user_path)),
        (str(repo_path), repo_layer),
        *_env_layers(os.environ if environ is None else environ),
        (_FLAG_SOURCE, {k: v for k, v in (flags or {}).items() if v is not None}),
    ]
    for source, layer in layers:
        _merge(merged, layer, origin, source)
    try:
        config = Config.model_validate(merged)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(str(p) for p in err["loc"])
        key = "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in loc).lstrip(".") or "(top level)"
        source = _source_of(loc, origin)
        problem = (
            "unknown key; remove it or check its spelling"
            if err["type"] == "extra_forbidden"
            else err["msg"].removeprefix("Value error, ")
        )
        raise ConfigError(f"config error: {source}: {key}: {problem}") from exc
    _check_model_strings(config, origin)
    config._origin = origin
    config._untrusted_ignored = ignored
    return config


def load_repo_config(model: str | None = None, sandbox: str | None = None) -> tuple[Path, Config]:
    """The repository the command runs in, and its configuration with ``model`` and ``sandbox``
    (``--sandbox required`` or a sandbox mode) as the command-line flags."""
    root = repo_root()
    flags: dict[str, Any] = {"model": model}
    if sandbox == "required":
        flags["agent"] = {"sandbox_required": True}
    elif sandbox is not None:
        flags["agent"] = {"sandbox": sandbox}
    return root, load_config(root, flags=flags)


def _check_model_strings(config: Config, origin: dict[tuple[str, ...], str]) -> None:
    """A bad ``model`` or ``fallback_models`` entry fails at load, naming where it came from."""
    from loopcraft.models.spec import parse_model  # models depend on config, not the other way round

    checks = [("model", config.model)] + [
        (f"fallback_models.{i}", m) for i, m in enumerate(config.fallback_models)
    ]
    for key, text in checks:
        if text is None:
            continue
        try:
            parse_model(text)
        except ModelSpecError as exc:
            source = _source_of((key.split(".")[0],), origin)
            raise ConfigError(f"config error: {source}: {key}: {exc}") from exc
