"""Project memory: ``AGENTS.md`` (or ``CLAUDE.md`` where a folder has no AGENTS.md) at the repo
root and in each folder between it and the current one, added to the agent's system prompt
once, when a session starts (``agent.memory_files`` changes the names and their order)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_MEMORY_FILES = ["AGENTS.md", "CLAUDE.md"]
MAX_MEMORY_CHARS = 32_000  # per file: a huge file must not eat the context window


@dataclass(frozen=True)
class MemoryFile:
    path: Path
    text: str
    truncated: bool = False


def memory_folders(workspace: Path, cwd: Path | None = None) -> list[Path]:
    """The workspace root, then each folder down to ``cwd`` (when ``cwd`` is inside it)."""
    root = Path(workspace).resolve()
    here = Path(cwd).resolve() if cwd is not None else root
    if here != root and root not in here.parents:
        return [root]
    chain = [here, *here.parents]
    return list(reversed(chain[: chain.index(root) + 1]))


def load_memory(workspace: Path, names: list[str], cwd: Path | None = None) -> list[MemoryFile]:
    """Per folder, the first of ``names`` that is a readable file; each file once."""
    found: list[MemoryFile] = []
    seen: set[Path] = set()
    for folder in memory_folders(workspace, cwd):
        for name in names:
            path = folder / name
            if not path.is_file():
                continue
            real = path.resolve()
            if real not in seen:
                seen.add(real)
                found.append(_read(path))
            break
    return [m for m in found if m.text.strip()]


def _read(path: Path) -> MemoryFile:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return MemoryFile(path, "")
    if len(text) > MAX_MEMORY_CHARS:
        return MemoryFile(path, text[:MAX_MEMORY_CHARS], truncated=True)
    return MemoryFile(path, text)


def memory_section(files: list[MemoryFile], workspace: Path) -> str:
    """The system-prompt part carrying the memory files (empty when there are none)."""
    if not files:
        return ""
    parts = ["Project instructions (from the repository's memory files; follow them):"]
    for memory in files:
        shown = _shown(memory.path, workspace)
        cut = f"\n[cut at {MAX_MEMORY_CHARS} characters]" if memory.truncated else ""
        parts.append(f'<memory path="{shown}">\n{memory.text.strip()}{cut}\n</memory>')
    return "\n\n".join(parts)


def _shown(path: Path, workspace: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path(workspace).resolve()))
    except ValueError:
        return str(path)
