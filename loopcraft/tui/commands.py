"""Slash commands: the registry, parsing a typed line into a command, and completion.

Pure logic with no Textual imports, so it is unit-testable. The app maps a
:class:`ParsedCommand` to a handler; a bad line raises :class:`CommandError` whose
message ends with the command's usage.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from loopcraft.errors import LoopcraftError

PERMISSION_MODES = ("default", "accept-edits", "plan", "yolo")


class CommandError(LoopcraftError):
    """A slash command that is unknown or has bad arguments; the message carries the usage."""


@dataclass(frozen=True)
class CommandSpec:
    """One command: its full name (``"workflow run"``), usage line, help and argument bounds."""

    name: str
    usage: str
    help: str
    min_args: int = 0
    max_args: int | None = 0  # None: any number
    choices: tuple[str, ...] = ()  # allowed values of the first argument, when fixed
    options: tuple[str, ...] = ()  # accepted ``--option VALUE`` names


@dataclass
class ParsedCommand:
    name: str
    args: list[str] = field(default_factory=list)
    options: dict[str, str] = field(default_factory=dict)

    def arg(self, index: int, default: str | None = None) -> str | None:
        return self.args[index] if index < len(self.args) else default


def _spec(name: str, usage: str, help: str, **kw: object) -> CommandSpec:
    return CommandSpec(name, usage, help, **kw)  # type: ignore[arg-type]


def _bare(name: str, help: str) -> CommandSpec:
    """``/NAME`` with no arguments."""
    return CommandSpec(name, f"/{name}", help)


def _one(name: str, arg: str, help: str, **kw: object) -> CommandSpec:
    """``/NAME [ARG]``: one optional argument."""
    return _spec(name, f"/{name} [{arg}]", help, max_args=1, **kw)


COMMANDS: tuple[CommandSpec, ...] = (
    _spec("help", "/help [COMMAND|keys]", "list commands and keys, or show one command's usage", max_args=2),
    _bare("new", "start a new chat session"),
    _one("sessions", "ID", "list saved chat sessions, or resume one"),
    _one("model", "MODEL", "show or switch the chat model (provider/model[:effort])"),
    _bare("compact", "compact the chat history now"),
    _bare("cost", "show tokens and cost of this session and of the runs"),
    _one("skills", "NAME", "list skills, or load one into your next message"),
    _bare("memory", "show the project memory files (AGENTS.md) the agent got"),
    _bare("mcp", "show the MCP servers, their status and tools"),
    _one(
        "permissions",
        "|".join(PERMISSION_MODES),
        "show or set the chat agent's permission mode",
        choices=PERMISSION_MODES,
    ),
    _one("theme", "NAME", "list themes, or switch to one (remembered)"),
    _bare("quit", "leave loopcraft"),
    _spec(
        "stats",
        "/stats [WORKFLOW] [--since AGE]",
        "run analytics per workflow with sparklines of cost and completion over time",
        max_args=1,
        options=("since",),
    ),
    _bare("triggers", "list the repo's triggers: next fire, last event, last run"),
    _bare("inbox", "runs started by triggers: needing attention, or archived"),
    _bare("workflow list", "list the workflows you can run"),
    _spec(
        "workflow run",
        "/workflow run NAME [key=value ...]",
        "start a workflow run with its inputs",
        min_args=1,
        max_args=None,
    ),
    _one("workflow status", "RUN", "show runs, or one run's status"),
    _spec(
        "workflow attach",
        "/workflow attach [RUN] [STAGE]",
        "watch a stage's transcript (default: the selected run's live stage); typing steers it",
        max_args=2,
    ),
    _bare("workflow detach", "stop watching the attached stage"),
    _one("workflow pause", "RUN", "pause a run at its next safe point"),
    _spec(
        "workflow resume",
        "/workflow resume [RUN] [--message TEXT]",
        "resume a paused or stopped run",
        max_args=1,
        options=("message",),
    ),
    _one("workflow interrupt", "RUN", "interrupt a run's running stages"),
    _one("workflow kill", "RUN", "kill a run"),
    _spec(
        "workflow answer",
        "/workflow answer [--prompt ID] [ANSWER ...]",
        "answer the selected or attached run's prompt, else the only pending one (no answer: focus it)",
        max_args=None,
        options=("prompt",),
    ),
    _bare("workflow reload", "re-discover workflow files"),
    _spec(
        "workflow promote",
        "/workflow promote RUN NAME [force]",
        "write a dynamic run as .loopcraft/workflows/NAME.py (force: overwrite it)",
        min_args=2,
        max_args=3,
    ),
)

_BY_NAME = {spec.name: spec for spec in COMMANDS}
GROUPS = {"workflow": tuple(s.name.split(" ", 1)[1] for s in COMMANDS if s.name.startswith("workflow "))}


def get_spec(name: str) -> CommandSpec:
    return _BY_NAME[name]


def help_text(name: str | None = None, keys: str = "") -> str:
    """All commands and ``keys`` (the app's key table, as text), or one command's (or group's)
    usage, or (``keys``) the keys."""
    if name:
        name = name.lstrip("/")
        if name == "keys":
            return "keys:\n" + keys
        specs = [s for s in COMMANDS if s.name == name or s.name.startswith(name + " ")]
        if not specs:
            raise CommandError(f"unknown command /{name}; usage: {get_spec('help').usage}")
    else:
        specs = list(COMMANDS)
    width = max(len(s.usage) for s in specs)
    text = "\n".join(f"{s.usage.ljust(width)}  {s.help}" for s in specs)
    return text if name else f"commands:\n{text}\n\nkeys (F1):\n{keys}"


def _split(line: str) -> list[str]:
    try:
        return shlex.split(line)
    except ValueError as exc:
        raise CommandError(f"cannot parse {line!r}: {exc}") from exc


def parse(line: str) -> ParsedCommand:
    """Parse ``/name args…``; raises :class:`CommandError` with the usage on any problem."""
    text = line.strip()
    if not text.startswith("/"):
        raise CommandError("commands start with '/'; type /help for the list")
    words = _split(text[1:])
    if not words:
        raise CommandError("empty command; type /help for the list")
    head, rest = words[0].lower(), words[1:]
    if head in GROUPS:
        subs = GROUPS[head]
        usage = f"/{head} {'|'.join(subs)} …"
        if not rest:
            raise CommandError(f"/{head} needs a subcommand; usage: {usage}")
        if rest[0].lower() not in subs:
            raise CommandError(f"unknown subcommand /{head} {rest[0]}; usage: {usage}")
        head, rest = f"{head} {rest[0].lower()}", rest[1:]
    spec = _BY_NAME.get(head)
    if spec is None:
        raise CommandError(f"unknown command /{head}; type /help for the list")
    args, options = _take_options(spec, rest)
    if len(args) < spec.min_args or (spec.max_args is not None and len(args) > spec.max_args):
        raise CommandError(f"wrong number of arguments for /{spec.name}; usage: {spec.usage}")
    if spec.choices and args and args[0] not in spec.choices:
        raise CommandError(f"invalid value {args[0]!r} for /{spec.name}; usage: {spec.usage}")
    return ParsedCommand(spec.name, args, options)


def _take_options(spec: CommandSpec, words: list[str]) -> tuple[list[str], dict[str, str]]:
    args: list[str] = []
    options: dict[str, str] = {}
    index = 0
    while index < len(words):
        word = words[index]
        if word.startswith("--") and len(word) > 2:
            name, _, value = word[2:].partition("=")
            if name not in spec.options:
                raise CommandError(f"unknown option --{name} for /{spec.name}; usage: {spec.usage}")
            if not value:
                index += 1
                if index >= len(words):
                    raise CommandError(f"option --{name} needs a value; usage: {spec.usage}")
                value = words[index]
            options[name] = value
        else:
            args.append(word)
        index += 1
    return args, options


def parse_inputs(pairs: list[str], usage: str) -> dict[str, str]:
    """``key=value`` words into a dict (values stay strings; the engine coerces them)."""
    inputs: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CommandError(f"expected key=value, got {pair!r}; usage: {usage}")
        inputs[key] = value
    return inputs


def complete(text: str, dynamic: dict[str, list[str]] | None = None) -> list[str]:
    """Whole-line completions of ``text`` (a partial slash command), best first.

    ``dynamic`` offers values for arguments: keys ``"theme"``, ``"model"``, ``"workflow"``
    (workflow names for run and stats), ``"run"`` (run ids), ``"session"``, and ``"inputs:NAME"`` (the
    inputs of workflow NAME, completed as ``key=`` after ``/workflow run NAME``).
    """
    if not text.startswith("/"):
        return []
    dynamic = dynamic or {}
    body = text[1:]
    words = body.split(" ")
    top = sorted({s.name.split(" ")[0] for s in COMMANDS})
    if len(words) == 1:
        return [f"/{name}" for name in top if name.startswith(words[0].lower())]
    head = words[0].lower()
    if head in GROUPS and len(words) == 2:
        return [f"/{head} {sub}" for sub in GROUPS[head] if sub.startswith(words[1].lower())]
    prefix_words, last = words[:-1], words[-1]
    values = _argument_values(prefix_words, dynamic)
    prefix = "/" + " ".join(prefix_words) + " "
    return [prefix + value for value in values if value.startswith(last) and value != last]


def _argument_values(words: list[str], dynamic: dict[str, list[str]]) -> list[str]:
    head = words[0].lower()
    if head == "permissions" and len(words) == 1:
        return list(PERMISSION_MODES)
    if head == "theme" and len(words) == 1:
        return dynamic.get("theme", [])
    if head == "model" and len(words) == 1:
        return dynamic.get("model", [])
    if head == "sessions" and len(words) == 1:
        return dynamic.get("session", [])
    if head == "help" and len(words) == 1:
        return sorted({s.name.split(" ")[0] for s in COMMANDS} | {"keys"})
    if head == "stats" and len(words) == 1:
        return dynamic.get("workflow", [])
    if head == "workflow" and len(words) == 2:
        sub = words[1].lower()
        if sub == "run":
            return dynamic.get("workflow", [])
        if sub in ("status", "attach", "pause", "resume", "interrupt", "kill"):
            return dynamic.get("run", [])
    if head == "workflow" and len(words) > 2 and words[1].lower() == "run":
        given = {word.partition("=")[0] for word in words[3:]}
        return [f"{key}=" for key in dynamic.get(f"inputs:{words[2]}", []) if key not in given]
    return []
