"""Finding workflows: repo ``.loopcraft/workflows/*.py``, ``~/.loopcraft/workflows/`` and the built-ins.

The built-ins (loopcraft's own code) are imported. The repo's and the user's files are only read
(:mod:`loopcraft.engine.static_workflows`: their ``ast``), and a file is imported when one of its
workflows runs (or declares triggers), on a thread bounded by ``LOOPCRAFT_IMPORT_TIMEOUT`` seconds
(default 30), so a file that hangs or exits at import affects only its own workflows. A broken file
is reported with a one-line error and never stops the others. Later sources override earlier ones
by name (repo > user > built-in).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loopcraft.engine.definition import Workflow
from loopcraft.engine.static_workflows import StaticWorkflow, read_workflows
from loopcraft.errors import LoopcraftError, NotFoundError
from loopcraft.paths import builtin_dir, home_dir, state_dir
from loopcraft.trust import is_trusted


@dataclass
class WorkflowInfo:
    name: str
    description: str
    inputs: dict[str, Any]
    source: str
    nested: bool = False  # ``@workflow(nested=True)``: meant to be called from other workflows

    def input_labels(self) -> list[str]:
        """Each input's name, ``(required)`` after the ones without a default."""
        required = set(self.inputs.get("required", []))
        names = self.inputs.get("properties") or {}
        return [f"{name} (required)" if name in required else name for name in names]


DEFAULT_IMPORT_TIMEOUT = 30.0


def import_timeout() -> float:
    """How long a workflow file may take to import (``LOOPCRAFT_IMPORT_TIMEOUT``, seconds)."""
    try:
        value = float(os.environ.get("LOOPCRAFT_IMPORT_TIMEOUT", DEFAULT_IMPORT_TIMEOUT))
    except ValueError:
        return DEFAULT_IMPORT_TIMEOUT
    return value if 0 < value < 86_400 else DEFAULT_IMPORT_TIMEOUT


@dataclass
class WorkflowCatalog:
    """The workflows found, by name, plus the files that failed to load.

    ``by_name`` holds imported workflows (built-ins, ones registered in code, files imported
    because one of their workflows was asked for); ``static`` those only read from their files."""

    by_name: dict[str, Workflow] = field(default_factory=dict)
    errors: list[tuple[str, str]] = field(default_factory=list)
    untrusted: Path | None = None  # the repo's workflow folder, not imported: the folder is not trusted
    static: dict[str, StaticWorkflow] = field(default_factory=dict)
    _failed: dict[str, str] = field(default_factory=dict)  # file -> why importing it failed
    undeclared: dict[str, tuple[Path, str]] = field(default_factory=dict)  # name -> a file with no @workflow

    def names(self) -> list[str]:
        return sorted({*self.by_name, *self.static})

    def list(self) -> list[WorkflowInfo]:
        infos = [
            WorkflowInfo(wf.name, wf.description, wf.inputs_schema(), str(wf.source or "<code>"), wf.nested)
            for wf in self.by_name.values()
        ]
        infos += [
            WorkflowInfo(s.name, s.description, s.inputs, str(s.path), s.nested) for s in self.static.values()
        ]
        return sorted(infos, key=lambda i: i.name)

    def get(self, name: str) -> Workflow:
        """The workflow ``name``; ``review_change`` finds ``review-change`` (the canonical name:
        the function's name with ``-`` for ``_``) and the other way round. A workflow only read
        from its file is imported now (that file only)."""
        for candidate in (name, name.replace("_", "-"), name.replace("-", "_")):
            if candidate in self.by_name:
                return self.by_name[candidate]
            if candidate in self.static:
                return self._import_one(self.static[candidate])
        stem = name.replace("_", "-")
        if stem in self.undeclared:  # no @workflow read, but a file of that name: import it
            file, source = self.undeclared.pop(stem)  # (bounded); it may define it another way
            self._import(StaticWorkflow(stem, "", "", {}, file, source), adopt=True)
            return self.get(name)
        for path, error in self.errors:  # its own file exists but failed to load: bad input
            if Path(path).stem.replace("_", "-") == name.replace("_", "-"):
                raise LoopcraftError(
                    f"workflow {name!r} could not be loaded: {path}: {error}; fix the file and retry"
                )
        raise NotFoundError(self._not_found(name))

    def with_triggers(self) -> tuple[Workflow, ...]:
        """Every workflow that may declare triggers: the imported ones, and the files whose
        ``@workflow(triggers=...)`` says so (imported now; one that fails is a load error)."""
        for entry in [s for s in self.static.values() if s.has_triggers]:
            try:
                self._import_one(entry)
            except LoopcraftError:
                continue  # listed in errors; its triggers are not loaded
        return tuple(sorted(self.by_name.values(), key=lambda w: w.name))

    def _import_one(self, entry: StaticWorkflow) -> Workflow:
        loaded = self._import(entry)
        assert loaded is not None
        return loaded

    def _import(self, entry: StaticWorkflow, *, adopt: bool = False) -> Workflow | None:
        """Import ``entry``'s file (bounded); its workflows become imported ones (``adopt``: also
        those not read statically, from a file that declared none)."""
        where = str(entry.path)
        if where not in self._failed:
            try:
                found = load_file_bounded(entry.path, entry.source, import_timeout())
            except BaseException as exc:
                if isinstance(exc, KeyboardInterrupt):
                    raise
                self._failed[where] = _one_line(exc)
                self.errors.append((where, self._failed[where]))
            else:
                for wf in found:
                    known = self.static.get(wf.name)
                    if known is not None and known.path == entry.path:
                        del self.static[wf.name]
                        self.by_name[wf.name] = wf
                    elif adopt and known is None and wf.name not in self.by_name:
                        self.by_name[wf.name] = wf
        if where in self._failed:
            raise LoopcraftError(
                f"workflow {entry.name!r} could not be loaded: {where}: {self._failed[where]}; "
                "fix the file and retry"
            )
        if adopt:
            return None
        loaded = self.by_name.get(entry.name)
        if loaded is None or loaded.source != entry.path:
            raise LoopcraftError(
                f"workflow {entry.name!r} could not be loaded: importing {where} did not define it "
                "(workflows are found by their `@workflow` decorator on a top-level `async def`)"
            )
        return loaded

    def _not_found(self, name: str) -> str:
        """Why ``name`` is missing: it isn't defined (other files may have failed to load)."""
        known = ", ".join(self.names()) or "none found"
        broken = f" ({len(self.errors)} workflow file(s) failed to load: `loopcraft workflows` lists them)"
        return f"unknown workflow {name!r}; available: {known}" + (broken if self.errors else "")

    def add(self, wf: Workflow) -> None:
        self.by_name[wf.name] = wf
        self.static.pop(wf.name, None)

    def add_static(self, entry: StaticWorkflow) -> None:
        self.by_name.pop(entry.name, None)
        self.static[entry.name] = entry


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, SyntaxError):
        return f"SyntaxError: {exc.msg} (line {exc.lineno})"
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def load_file(path: Path, source: str) -> list[Workflow]:
    """Import one workflow file and return the workflows defined in it."""
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:10]
    module_name = f"loopcraft_workflows.{source}.{path.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
    found = []
    for value in vars(module).values():
        if isinstance(value, Workflow) and getattr(value.fn, "__module__", None) == module_name:
            value.source = path
            found.append(value)
    return found


class ImportExit(BaseException):
    """A workflow file called ``os._exit`` while it was imported (stopped, not obeyed)."""


def load_file_bounded(path: Path, source: str, timeout: float) -> list[Workflow]:
    """:func:`load_file` on a daemon thread, waited for at most ``timeout`` seconds; ``os._exit``
    called meanwhile raises :class:`ImportExit` instead of ending the process."""
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["found"] = load_file(path, source)
        except BaseException as exc:  # reported on the caller's thread
            outcome["error"] = exc

    real_exit = os._exit

    def refuse_exit(code: int) -> None:
        if threading.current_thread() is worker:
            raise ImportExit(f"the file called os._exit({code}) at import")
        real_exit(code)

    worker = threading.Thread(target=work, name=f"import {path.name}", daemon=True)
    os._exit = refuse_exit  # type: ignore[assignment]
    try:
        worker.start()
        worker.join(timeout)
    finally:
        os._exit = real_exit
    if worker.is_alive():
        raise TimeoutError(
            f"importing it took longer than {timeout:g}s (it hangs at import; "
            "LOOPCRAFT_IMPORT_TIMEOUT sets the limit)"
        )
    if "error" in outcome:
        raise outcome["error"]
    found: list[Workflow] = outcome["found"]
    return found


def search_dirs(root: Path) -> list[tuple[str, Path]]:
    """Workflow folders, lowest precedence first."""
    return [
        ("builtin", builtin_dir("workflows")),
        ("user", home_dir() / "workflows"),
        ("repo", state_dir(root) / "workflows"),
    ]


def discover(root: Path, extra: list[Workflow] | None = None) -> WorkflowCatalog:
    """Import the built-ins and read the user's and the repo's files; errors are collected, not raised."""
    catalog = WorkflowCatalog()
    for source, folder in search_dirs(root):
        if not folder.is_dir():
            continue
        if source == "repo" and not is_trusted(root):  # an untrusted repo's code is never imported
            catalog.untrusted = folder
            continue
        for path in sorted(folder.glob("*.py")):
            if path.name.startswith("_"):
                continue
            try:
                if source == "builtin":
                    for wf in load_file(path, source):
                        catalog.add(wf)
                else:
                    entries = read_workflows(path, source)
                    for entry in entries:
                        catalog.add_static(entry)
                    if not entries:
                        catalog.undeclared[path.stem.replace("_", "-")] = (path, source)
            except BaseException as exc:  # a broken file must never take the others down
                if isinstance(exc, KeyboardInterrupt):
                    raise
                catalog.errors.append((str(path), _one_line(exc)))
    for wf in extra or []:
        catalog.add(wf)
    return catalog
