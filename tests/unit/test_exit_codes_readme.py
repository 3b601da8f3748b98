"""The README's exit-code table ("Headless commands and exit codes") is complete and matches the
code: every run status's exit code, every user-facing error's, the chat's and Ctrl+C's."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import loopcraft
from loopcraft.engine.results import EXIT_CODES
from loopcraft.errors import LoopcraftError
from loopcraft.headless_chat import CHAT_EXIT_CODES

README = Path(__file__).resolve().parents[2] / "README.md"
INTERRUPTED = 130  # loopcraft.cli: Ctrl+C


def readme_rows() -> list[tuple[int, str]]:
    section = README.read_text().split("### Headless commands and exit codes", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| (\d+) \| (.+) \|$", section, flags=re.MULTILINE)
    return [(int(code), text) for code, text in rows]


def readme_table() -> dict[int, str]:
    return dict(readme_rows())


def error_codes() -> dict[int, list[str]]:
    """Every LoopcraftError subclass's exit code (each module imported; the app's skipped)."""
    for info in pkgutil.walk_packages(loopcraft.__path__, "loopcraft."):
        if not info.name.startswith(("loopcraft.tui", "loopcraft.__main__")):
            importlib.import_module(info.name)
    codes: dict[int, list[str]] = {}
    todo = [LoopcraftError]
    while todo:
        cls = todo.pop()
        codes.setdefault(cls.exit_code, []).append(cls.__name__)
        todo += cls.__subclasses__()
    return codes


def test_readme_exit_codes_match_the_code() -> None:
    table = readme_table()
    assert len(readme_rows()) == len(table), "a code listed twice"
    in_code = set(EXIT_CODES.values()) | set(CHAT_EXIT_CODES.values()) | set(error_codes()) | {INTERRUPTED}
    assert set(table) == in_code, f"README lists {sorted(table)}, the code uses {sorted(in_code)}"
    for status, code in EXIT_CODES.items():
        assert status in table[code], f"README row {code} does not name status {status!r}"


def test_a_run_not_in_a_state_for_this_has_its_own_code() -> None:
    from loopcraft.engine.control import RunStateError
    from loopcraft.engine.history import RunInUse

    assert RunStateError.exit_code == RunInUse.exit_code == 10
    assert "not in a state" in readme_table()[10]
