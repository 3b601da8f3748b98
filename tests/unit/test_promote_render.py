"""The promoted workflow's source: the request lifted into the ``request`` input, every option
kept, and laid out exactly as ``ruff format`` would."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from loopcraft.engine.dynamic import parse_spec
from loopcraft.engine.promote import render

SPEC = {
    "kind": "chain",
    "request": "fix the bug",
    "stages": [
        {
            "name": "plan",
            "prompt": "Plan how to fix the bug, briefly",
            "model": "scripted/x",
            "context": "fork",
        },
        {"name": "do", "prompt": 'Do it\'s "q" {not a field}', "tools": ["read", "edit"], "worktree": True},
    ],
}


def test_the_request_becomes_an_input_and_the_options_stay(tmp_path: Path) -> None:
    source = render("fixer", "RID", parse_spec(SPEC))
    assert 'async def fixer(ctx: Context, request: str = "fix the bug")' in source
    assert 'prompt="Plan how to " + request + ", briefly"' in source
    assert 'context="fork"' in source and "worktree=True" in source and 'model="scripted/x"' in source
    namespace: dict[str, object] = {}
    exec(compile(source, "fixer.py", "exec"), namespace)  # it is valid Python that defines the workflow
    assert getattr(namespace["fixer"], "name", None) == "fixer"


def test_the_source_is_what_ruff_format_writes(tmp_path: Path) -> None:
    path = tmp_path / "fixer.py"
    path.write_text(render("fixer", "RID", parse_spec(SPEC)))
    ruff = Path(sys.executable).parent / "ruff"
    done = subprocess.run([str(ruff), "format", "--diff", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout
