"""A run's folder on disk: ``.loopcraft/runs/<run-id>/`` with stage transcripts, artifacts and
large step outputs kept out of the journal."""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

from loopcraft.paths import state_dir

LARGE_OUTPUT = 64_000  # characters of JSON above which a step output goes to a file
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_key(key: str) -> str:
    """A file name for a step key: readable, unique (short hash suffix), no path separators."""
    readable = _UNSAFE.sub("_", key).strip("_")[:80]
    digest = hashlib.sha1(key.encode()).hexdigest()[:8]
    return f"{readable}-{digest}"


def write_durably(path: Path, text: str) -> None:
    """Write ``text`` atomically (temp file, fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def session_key(kind: str, key: str) -> str:
    """The key whose transcript holds step ``key``'s conversation: a long-lived stage's prompts
    (``stage_prompt``) all talk in the stage's one session."""
    return key.rpartition("/")[0] if kind == "stage_prompt" else key


class RunFiles:
    """Paths and file writes of one run."""

    def __init__(self, root: Path, run_id: str) -> None:
        self.root = root
        self.run_id = run_id
        self.dir = state_dir(root) / "runs" / run_id

    @property
    def stages_dir(self) -> Path:
        return self.dir / "stages"

    @property
    def artifacts_dir(self) -> Path:
        return self.dir / "artifacts"

    def session_path(self, key: str) -> Path:
        return self.stages_dir / f"{safe_key(key)}.jsonl"

    def artifact_path(self, name: str) -> Path:
        path = (self.artifacts_dir / name).resolve()
        if not path.is_relative_to(self.artifacts_dir.resolve()):
            raise ValueError(f"artifact name {name!r} escapes the run's artifacts folder")
        return path

    def write_artifact(self, name: str, text: str) -> Path:
        path = self.artifact_path(name)
        write_durably(path, text)
        return path

    def resolve_read(self, name: str) -> Path | None:
        """A ``reads=`` entry: an artifact of this run, else a path relative to the repo (or absolute)."""
        candidates = (
            [self.artifacts_dir / name, self.root / name] if not Path(name).is_absolute() else [Path(name)]
        )
        return next((c for c in candidates if c.is_file()), None)

    def store_output(self, key: str, value: Any) -> Any:
        """The value to journal: the value itself, or ``{"$file": ...}`` when its JSON is large."""
        text = json.dumps(value, default=str)
        if len(text) <= LARGE_OUTPUT:
            return value
        path = self.dir / "steps" / f"{safe_key(key)}.json"
        write_durably(path, text)
        return {"$file": str(path.relative_to(self.dir))}

    def load_output(self, stored: Any) -> Any:
        if isinstance(stored, dict) and set(stored) == {"$file"}:
            return json.loads((self.dir / stored["$file"]).read_text(encoding="utf-8"))
        return stored
