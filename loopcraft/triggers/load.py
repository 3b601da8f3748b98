"""Loading triggers: ``.loopcraft/triggers.toml`` (only in a trusted repo) and the workflows'
``@workflow(triggers=[...])``, each checked at load (workflow, schedule, time zone, inputs) with a
one-line :class:`TriggerError` naming the file and the problem. Also fills a trigger's input
templates (``{commit}``, ``{paths}``, ``{payload.key}``) from an event."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ValidationError

from loopcraft.engine.definition import Workflow
from loopcraft.engine.discovery import WorkflowCatalog
from loopcraft.errors import LoopcraftError
from loopcraft.paths import state_dir
from loopcraft.triggers.spec import GIT_HOOKS, Trigger, TriggerError, parse_interval
from loopcraft.trust import is_trusted

_KINDS = ("cron", "every", "files", "git", "webhook")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][\w.\-]*)\}")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]*$")


@dataclass
class TriggerSet:
    """The triggers of a repo, plus the notes to print (e.g. an untrusted triggers.toml)."""

    triggers: list[Trigger] = field(default_factory=list)
    max_concurrent_runs: int = 4
    notes: list[str] = field(default_factory=list)

    def for_event(self, name: str) -> list[Trigger]:
        return [t for t in self.triggers if t.event == name]

    def get(self, name: str) -> Trigger | None:
        return next((t for t in self.triggers if t.name == name), None)


def triggers_file(root: Path) -> Path:
    return state_dir(root) / "triggers.toml"


def load_triggers(root: Path, catalog: WorkflowCatalog) -> TriggerSet:
    """Every trigger of the repo, checked; raises :class:`TriggerError` on the first bad one."""
    found = TriggerSet()
    for wf in catalog.with_triggers():
        for index, raw in enumerate(wf.extras.get("triggers") or []):
            where = f"workflow {wf.name!r} ({wf.source or '<code>'})"
            if not isinstance(raw, Trigger):
                raise TriggerError(
                    f"{where}: triggers= takes cron(), every(), on_files(), on_git(), on_webhook()"
                )
            trig = raw.with_defaults(wf.name, index).model_copy(update={"source": where})
            found.triggers.append(check_trigger(trig, catalog, where))
    path = triggers_file(root)
    if path.is_file():
        if is_trusted(root):
            _load_file(path, catalog, found)
        else:
            found.notes.append(
                f"note: {root} is not a trusted folder, so {path} was ignored (no triggers from it); "
                f"trust it with `loopcraft trust {root}`"
            )
    names = [t.name for t in found.triggers]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise TriggerError(f"{path}: two triggers are named {dupes[0]!r}; give each its own `name`")
    return found


def _load_file(path: Path, catalog: WorkflowCatalog, found: TriggerSet) -> None:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise TriggerError(f"{path}: not valid TOML ({exc}); fix the file") from exc
    limit = data.pop("max_concurrent_runs", found.max_concurrent_runs)
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise TriggerError(f"{path}: max_concurrent_runs must be a whole number of at least 1")
    found.max_concurrent_runs = limit
    entries = data.pop("trigger", [])
    if data:
        raise TriggerError(f"{path}: unknown key {sorted(data)[0]!r}; use [[trigger]] tables")
    if not isinstance(entries, list):
        raise TriggerError(f"{path}: `trigger` must be an array of tables: [[trigger]]")
    for number, entry in enumerate(entries, 1):
        where = f"{path}: trigger {number}"
        found.triggers.append(check_trigger(_from_table(entry, where, number), catalog, where))


def _from_table(entry: Any, where: str, number: int) -> Trigger:
    """A ``[[trigger]]`` table as a :class:`Trigger` (unnamed: ``WORKFLOW.KIND.N``, N its place)."""
    if not isinstance(entry, dict):
        raise TriggerError(f"{where}: must be a table")
    table = dict(entry)
    kinds = [k for k in _KINDS if k in table]
    if len(kinds) != 1:
        raise TriggerError(f"{where}: give exactly one of cron, every, files, git or webhook")
    kind = kinds[0]
    spec = table.pop(kind)
    if kind == "files" and isinstance(spec, list):
        spec = " ".join(str(s) for s in spec)
    if "webhook_secret_env" in table:
        table["secret_env"] = table.pop("webhook_secret_env")
    workflow = table.get("workflow")
    if not isinstance(workflow, str) or not workflow:
        raise TriggerError(f'{where}: `workflow = "NAME"` is required')
    try:
        trig = Trigger.model_validate({"kind": kind, "spec": str(spec), **table})
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        reason = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        raise TriggerError(f"{where}: {loc}: {reason}") from exc
    return trig if trig.name else trig.model_copy(update={"name": f"{workflow}.{kind}.{number}"})


def check_trigger(trig: Trigger, catalog: WorkflowCatalog, where: str) -> Trigger:
    """The trigger if it can be used: its workflow exists, its schedule parses, its inputs fit."""
    where = f"{where} ({trig.name})"
    if not _NAME.match(trig.name):
        raise TriggerError(f"{where}: bad name {trig.name!r}: use letters, digits, '.', '-' or '_'")
    try:
        wf = catalog.get(trig.workflow)
    except LoopcraftError as exc:
        raise TriggerError(f"{where}: {exc}") from exc
    _check_spec(trig, where)
    sample = fill_inputs(trig.inputs, _sample_context(trig.inputs), strict=False)
    try:
        wf.input_model.model_validate(sample)
    except ValidationError as exc:
        for err in exc.errors():
            key = str(err["loc"][0]) if err["loc"] else ""
            templated = isinstance(trig.inputs.get(key), str) and _PLACEHOLDER.fullmatch(trig.inputs[key])
            if templated and err["type"] not in ("missing", "extra_forbidden"):
                continue  # its type is only known once an event fills it
            names = ", ".join(wf.input_names) or "none"
            what = {"missing": "missing input", "extra_forbidden": "unknown input"}.get(err["type"])
            problem = f"{what} {key!r}" if what else f"input {key!r}: {err['msg']}"
            raise TriggerError(f"{where}: {problem} for workflow {wf.name!r} (inputs: {names})") from exc
    return trig.model_copy(update={"workflow": wf.name})


def _check_spec(trig: Trigger, where: str) -> None:
    if trig.kind == "cron":
        from croniter import croniter

        if not croniter.is_valid(trig.spec):
            raise TriggerError(f'{where}: bad cron expression {trig.spec!r}; e.g. "0 9 * * 1-5"')
        try:
            ZoneInfo(trig.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise TriggerError(f'{where}: unknown time zone {trig.timezone!r}; e.g. "Europe/Berlin"') from exc
    elif trig.kind == "every":
        try:
            parse_interval(trig.spec)
        except TriggerError as exc:
            raise TriggerError(f"{where}: {exc}") from exc
    elif trig.kind == "git" and trig.spec not in GIT_HOOKS:
        raise TriggerError(f"{where}: unknown git hook {trig.spec!r}; one of {', '.join(GIT_HOOKS)}")
    elif trig.kind == "webhook" and not _NAME.match(trig.spec):
        raise TriggerError(f"{where}: bad webhook name {trig.spec!r}: use letters, digits, '.', '-' or '_'")
    elif trig.kind == "files" and not trig.spec.strip():
        raise TriggerError(f'{where}: files needs at least one glob, e.g. "src/**/*.py"')
    if trig.debounce < 0:
        raise TriggerError(f"{where}: debounce must not be negative")


def text_fields(wf: Workflow) -> frozenset[str]:
    """The workflow's inputs annotated ``str``: a placeholder fills them as text."""
    return frozenset(n for n, f in wf.input_model.model_fields.items() if f.annotation is str)


def _sample_context(inputs: dict[str, Any]) -> dict[str, Any]:
    keys = {m for v in inputs.values() if isinstance(v, str) for m in _PLACEHOLDER.findall(v)}
    context: dict[str, Any] = {}
    for key in keys:
        node = context
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = "x"
    return context


def _lookup(context: dict[str, Any], key: str) -> Any:
    value: Any = context
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            raise TriggerError(
                f"placeholder {{{key}}} is not in the event (it has: {', '.join(sorted(context))})"
            )
        value = value[part]
    return value


def _text(value: Any) -> str:
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    return str(value)


def fill_inputs(
    inputs: dict[str, Any],
    context: dict[str, Any],
    *,
    strict: bool = True,
    text_fields: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """Inputs with ``{placeholders}`` filled from the event; a value that is only one placeholder
    keeps the event value's type unless its input is a ``str`` (``text_fields``: a list of paths
    becomes space-separated). A missing key raises :class:`TriggerError` (``strict``)."""
    out: dict[str, Any] = {}
    for name, value in inputs.items():
        if not isinstance(value, str):
            out[name] = value
            continue
        whole = _PLACEHOLDER.fullmatch(value)
        try:
            if whole and name not in text_fields:
                out[name] = _lookup(context, whole.group(1))
            else:
                out[name] = _PLACEHOLDER.sub(lambda m: _text(_lookup(context, m.group(1))), value)
        except TriggerError:
            if strict:
                raise
            out[name] = value
    return out
