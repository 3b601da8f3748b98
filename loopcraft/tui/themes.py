"""Theme files (TOML) loaded into Textual themes, and remembering the chosen theme.

Built-in themes come from ``paths.builtin_dir("themes")``, the user's from
``~/.loopcraft/themes``; a user theme with the same name overrides the built-in. A
broken file is skipped and reported, never fatal.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from textual.theme import Theme

from loopcraft.errors import ConfigError
from loopcraft.paths import builtin_dir, home_dir

COLOR_KEYS = (
    "primary", "secondary", "accent", "background", "surface", "panel",
    "foreground", "success", "warning", "error",
)  # fmt: skip


@dataclass
class ThemeSet:
    themes: dict[str, Theme] = field(default_factory=dict)
    errors: list[tuple[Path, str]] = field(default_factory=list)


def theme_dirs() -> list[Path]:
    """Where theme files are looked for, lowest precedence first."""
    return [builtin_dir("themes"), home_dir() / "themes"]


def parse_theme(path: Path) -> Theme:
    """One theme file into a Textual :class:`Theme`; ValueError with the problem when bad."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"not a readable TOML file ({exc})") from exc
    name = data.get("name") or path.stem
    if "primary" not in data:
        raise ValueError("missing required key 'primary'")
    unknown = set(data) - {"name", "dark", *COLOR_KEYS}
    if unknown:
        raise ValueError(f"unknown keys: {', '.join(sorted(unknown))}")
    colors = {key: str(data[key]) for key in COLOR_KEYS if key in data}
    return Theme(name=str(name), dark=bool(data.get("dark", True)), **colors)  # type: ignore[arg-type]


def load_themes(dirs: list[Path] | None = None) -> ThemeSet:
    """Every theme file in ``dirs`` (later directories override earlier ones by name)."""
    result = ThemeSet()
    for folder in dirs if dirs is not None else theme_dirs():
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.toml")):
            try:
                theme = parse_theme(path)
            except ValueError as exc:
                result.errors.append((path, str(exc)))
                continue
            result.themes[theme.name] = theme
    return result


def remember_theme(name: str, path: Path | None = None) -> Path:
    """Write ``theme = "name"`` into the user config with tomlkit (every comment, key and
    layout kept, the name escaped), replacing the file atomically."""
    from loopcraft.config import user_config_path  # pydantic: not before the first frame

    path = path or user_config_path()
    set_top_level(path, "theme", name)
    return path


def set_top_level(path: Path, key: str, value: str) -> None:
    """Set the top-level ``key`` of the TOML file at ``path`` (created if missing) to ``value``."""
    import tomlkit  # tomlkit and the file tools (git, pathspec): loaded on a write, not at start-up
    import tomlkit.exceptions

    from loopcraft.agent.tools.fs import write_text_atomic

    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    try:
        document = tomlkit.parse(text)
    except tomlkit.exceptions.ParseError as exc:
        raise ConfigError(f"{path} is not valid TOML ({exc}); fix it, then try again") from None
    document[key] = value  # tomlkit keeps a new top-level key before the first table
    write_text_atomic(path, tomlkit.dumps(document))
