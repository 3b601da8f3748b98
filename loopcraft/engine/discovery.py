"""Finding workflows: repo ``.loopcraft/workflows/*.py``, ``~/.loopcraft/workflows/`` and the built-ins.

Each file is imported under its own module name; a broken file is reported with a one-line
error and never stops the others. Later sources override earlier ones by name
(repo > user > built-in).
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loopcraft.engine.definition import Workflow
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


@dataclass
class WorkflowCatalog:
    """The workflows found, by name, plus the files that failed to load."""

    by_name: dict[str, Workflow] = field(default_factory=dict)
    errors: list[tuple[str, str]] = field(default_factory=list)
    untrusted: Path | None = None  # the repo's workflow folder, not imported: the folder is not trusted

    def list(self) -> list[WorkflowInfo]:
        return [
            WorkflowInfo(wf.name, wf.description, wf.inputs_schema(), str(wf.source or "<code>"), wf.nested)
            for wf in sorted(self.by_name.values(), key=lambda w: w.name)
        ]

    def get(self, name: str) -> Workflow:
        """The workflow ``name``; ``review_change`` finds ``review-change`` (the canonical name:
        the function's name with ``-`` for ``_``) and the other way round."""
        for candidate in (name, name.replace("_", "-"), name.replace("-", "_")):
            if candidate in self.by_name:
                return self.by_name[candidate]
        for path, error in self.errors:  # its own file exists but failed to import: bad input
            if Path(path).stem.replace("_", "-") == name.replace("_", "-"):
                raise LoopcraftError(
                    f"workflow {name!r} could not be loaded: {path}: {error}; fix the file and retry"
                )
        raise NotFoundError(self._not_found(name))

    def _not_found(self, name: str) -> str:
        """Why ``name`` is missing: it isn't defined (other files may have failed to load)."""
        known = ", ".join(sorted(self.by_name)) or "none found"
        broken = f" ({len(self.errors)} workflow file(s) failed to load: `loopcraft workflows` lists them)"
        return f"unknown workflow {name!r}; available: {known}" + (broken if self.errors else "")

    def add(self, wf: Workflow) -> None:
        self.by_name[wf.name] = wf


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


def search_dirs(root: Path) -> list[tuple[str, Path]]:
    """Workflow folders, lowest precedence first."""
    return [
        ("builtin", builtin_dir("workflows")),
        ("user", home_dir() / "workflows"),
        ("repo", state_dir(root) / "workflows"),
    ]


def discover(root: Path, extra: list[Workflow] | None = None) -> WorkflowCatalog:
    """Load every workflow file; errors are collected, not raised."""
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
                for wf in load_file(path, source):
                    catalog.add(wf)
            except BaseException as exc:  # a broken file must never take the others down
                if isinstance(exc, KeyboardInterrupt):
                    raise
                catalog.errors.append((str(path), _one_line(exc)))
    for wf in extra or []:
        catalog.add(wf)
    return catalog
