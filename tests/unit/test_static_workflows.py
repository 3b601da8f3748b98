"""Static discovery (issue 20 item 6) reads what importing gives: for every built-in workflow,
the name, description, input schema and whether it declares triggers, read from the file's
``ast`` alone, equal what the imported function says."""

from __future__ import annotations

from pathlib import Path

import pytest

from loopcraft.engine.discovery import load_file
from loopcraft.engine.static_workflows import StaticError, read_workflows
from loopcraft.paths import builtin_dir

BUILTINS = sorted(p for p in builtin_dir("workflows").glob("*.py") if not p.name.startswith("_"))


@pytest.mark.parametrize("path", BUILTINS, ids=lambda p: p.stem)
def test_static_reading_matches_the_import(path: Path) -> None:
    read = {s.name: s for s in read_workflows(path, "user")}
    imported = {w.name: w for w in load_file(path, "builtin")}
    assert set(read) == set(imported)
    for name, wf in imported.items():
        assert read[name].description == wf.description
        assert read[name].inputs == wf.inputs_schema()
        assert read[name].has_triggers == bool(wf.extras.get("triggers"))


def test_what_cannot_be_known_statically_reads_as_any_value(tmp_path: Path) -> None:
    path = tmp_path / "odd.py"
    path.write_text(
        "import loopcraft as lc\nfrom pydantic import BaseModel\n\n"
        "class Spec(BaseModel):\n    x: int\n\nLIMIT = 3\n\n"
        "@lc.workflow(triggers=[lc.cron('0 * * * *')])\n"
        "async def odd(ctx, spec: Spec, n: int = LIMIT, s: '__import__(\"os\").system(\"x\")' = 'a') -> str:\n"
        "    return ''\n"
    )
    (found,) = read_workflows(path, "repo")
    props = found.inputs["properties"]
    assert found.name == "odd" and found.has_triggers and found.inputs["required"] == ["spec"]
    assert props["spec"] == {"title": "Spec"}  # a class of the file: any value in the listing
    assert props["n"] == {"title": "N", "type": "integer"}  # a default only the import knows
    assert props["s"] == {"default": "a", "title": "S"}  # never evaluated


def test_a_sync_workflow_function_is_a_load_error(tmp_path: Path) -> None:
    path = tmp_path / "sync.py"
    path.write_text("from loopcraft import workflow\n\n@workflow\ndef sync(ctx):\n    return 1\n")
    with pytest.raises(StaticError, match="must be an `async def`"):
        read_workflows(path, "repo")
