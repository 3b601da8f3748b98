"""The edit tool: unique exact match, ambiguity, whitespace tolerance, feedback, idempotence, atomicity."""

from __future__ import annotations

from pathlib import Path

import pytest

from loopcraft.agent.tools.base import ToolContext
from loopcraft.agent.tools.edit import EditFailed, EditSpec, EditTool, apply_edit

SOURCE = """\
def greet(name):
    if name:
        return "hello " + name
    return "hello"


def farewell(name):
    return "bye " + name
"""


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    (tmp_path / "m.py").write_text(SOURCE)
    return tmp_path


@pytest.fixture
def ctx(ws: Path) -> ToolContext:
    return ToolContext(workspace=ws)


async def edit(ctx: ToolContext, **args):
    return await EditTool().run({"path": "m.py", **args}, ctx)


async def test_unique_exact_match_replaced_with_diff(ws: Path, ctx: ToolContext) -> None:
    result = await edit(ctx, old_string='return "bye " + name', new_string='return "goodbye " + name')
    assert not result.is_error, result.output
    assert 'return "goodbye " + name' in (ws / "m.py").read_text()
    diff = result.metadata["diff"]
    assert diff.startswith("--- a/m.py\n+++ b/m.py\n")
    assert '-    return "bye " + name' in diff and '+    return "goodbye " + name' in diff
    assert "+1 -1" in result.output


async def test_ambiguous_match_is_error_naming_lines(ws: Path, ctx: ToolContext) -> None:
    result = await edit(ctx, old_string="(name):", new_string="(who):")
    assert result.is_error
    assert "matches 2 places" in result.output and "lines 1, 7" in result.output
    assert (ws / "m.py").read_text() == SOURCE


async def test_replace_all(ws: Path, ctx: ToolContext) -> None:
    result = await edit(ctx, old_string="name", new_string="who", replace_all=True)
    assert not result.is_error
    assert "name" not in (ws / "m.py").read_text()
    assert "replaced 5 occurrences" in result.output


@pytest.mark.parametrize(
    ("old", "new", "expected", "note"),
    [
        pytest.param(  # the model lost the indentation and added trailing spaces; new text is at its indent
            'if name:   \n    return "hello " + name\n',
            'if name and name.strip():\n    return "hello " + name.strip()\n',
            '    if name and name.strip():\n        return "hello " + name.strip()\n    return "hello"\n',
            "ignoring whitespace",
            id="reindents",
        ),
        pytest.param(
            '        return "hello " + name\n    return "hello"',
            '        return "hi " + name\n    return "hi"\n\n\ndef extra():\n    return 1',
            '        return "hi " + name\n    return "hi"\n\n\ndef extra():\n    return 1\n',
            "",  # an exact match: no note
            id="dedented-lines",
        ),
    ],
)
async def test_whitespace_tolerant_fallback(
    ws: Path, ctx: ToolContext, old: str, new: str, expected: str, note: str
) -> None:
    result = await edit(ctx, old_string=old, new_string=new)
    assert not result.is_error, result.output
    text = (ws / "m.py").read_text()
    assert expected in text
    assert note in result.output
    compile(text, "m.py", "exec")


async def test_no_match_gives_closest_lines_with_numbers(ws: Path, ctx: ToolContext) -> None:
    result = await edit(ctx, old_string='def farewel(nme):\n    return "by " + nme', new_string="x")
    assert result.is_error
    assert "was not found" in result.output
    assert "closest lines are 7-8" in result.output
    assert "     7\tdef farewell(name):" in result.output
    assert (ws / "m.py").read_text() == SOURCE


async def test_no_match_and_nothing_similar(ws: Path, ctx: ToolContext) -> None:
    result = await edit(ctx, old_string="zzzzqqqq###", new_string="x")
    assert result.is_error and "Nothing similar" in result.output


async def test_already_applied_is_recognised_not_repeated(ws: Path, ctx: ToolContext) -> None:
    args = {
        "old_string": '    return "hello"\n',
        "new_string": '    return "hello"\n    # default greeting\n',
    }
    # new_string contains old_string, so repeating naively would add the comment twice.
    first = await edit(ctx, **args)
    assert not first.is_error and "1 edit(s) applied" in first.output
    repeat = await edit(ctx, **args)
    assert not repeat.is_error and "already applied" in repeat.output
    once = (ws / "m.py").read_text()
    args2 = {"old_string": 'return "bye " + name', "new_string": 'return "ciao " + name'}
    await edit(ctx, **args2)
    after = (ws / "m.py").read_text()
    second = await edit(ctx, **args2)
    assert not second.is_error
    assert "already applied" in second.output and "not repeated" in second.output
    assert second.metadata["diff"] == ""
    assert (ws / "m.py").read_text() == after
    assert once.count("# default greeting") == 1


async def test_already_applied_after_reindent(ws: Path, ctx: ToolContext) -> None:
    old = 'if name:\n    return "hello " + name'
    new = 'if name:\n    return "hey " + name'
    assert not (await edit(ctx, old_string=old, new_string=new)).is_error
    again = await edit(ctx, old_string=old, new_string=new)
    assert not again.is_error and "already applied" in again.output


async def test_multi_edit_applies_all(ws: Path, ctx: ToolContext) -> None:
    edits = [
        {"old_string": "def greet(name):", "new_string": "def greet(name, punct='!'):"},
        {"old_string": 'return "hello " + name', "new_string": 'return "hello " + name + punct'},
        {"old_string": "def farewell(name):", "new_string": "def farewell(name, punct='.'):"},
    ]
    result = await EditTool().run({"path": "m.py", "edits": edits}, ctx)
    assert not result.is_error, result.output
    assert "3 edit(s) applied" in result.output
    text = (ws / "m.py").read_text()
    assert "punct='!'" in text and "name + punct" in text and "punct='.'" in text


async def test_multi_edit_is_atomic(ws: Path, ctx: ToolContext) -> None:
    edits = [
        {"old_string": "def greet(name):", "new_string": "def hello(name):"},
        {"old_string": "this text is not in the file", "new_string": "x"},
    ]
    result = await EditTool().run({"path": "m.py", "edits": edits}, ctx)
    assert result.is_error
    assert result.output.startswith("edit 2 of 2:")
    assert (ws / "m.py").read_text() == SOURCE


async def test_edits_apply_in_order_on_evolving_text(ws: Path, ctx: ToolContext) -> None:
    edits = [
        {"old_string": "def greet(name):", "new_string": "def greet2(name):"},
        {"old_string": "def greet2(name):", "new_string": "def greet3(name):"},
    ]
    assert not (await EditTool().run({"path": "m.py", "edits": edits}, ctx)).is_error
    assert "def greet3(name):" in (ws / "m.py").read_text()


async def test_bad_arguments_are_error_results(ws: Path, ctx: ToolContext) -> None:
    assert "`old_string` is required" in (await edit(ctx, new_string="x")).output
    assert "identical" in (await edit(ctx, old_string="greet", new_string="greet")).output
    assert "empty" in (await edit(ctx, old_string="", new_string="x")).output
    assert "not both" in (await edit(ctx, old_string="a", new_string="b", edits=[])).output
    assert "non-empty list" in (await EditTool().run({"path": "m.py", "edits": []}, ctx)).output
    missing = await EditTool().run({"path": "nope.py", "old_string": "a", "new_string": "b"}, ctx)
    assert missing.is_error and "use write" in missing.output


async def test_crlf_file_keeps_line_endings(tmp_path: Path) -> None:
    (tmp_path / "w.txt").write_bytes(b"alpha\r\nbeta\r\ngamma\r\n")
    ctx = ToolContext(workspace=tmp_path)
    result = await EditTool().run(
        {"path": "w.txt", "old_string": "beta\ngamma", "new_string": "BETA\ngamma"}, ctx
    )
    assert not result.is_error, result.output
    assert (tmp_path / "w.txt").read_bytes() == b"alpha\r\nBETA\r\ngamma\r\n"


def test_apply_edit_pure_function_feedback() -> None:
    with pytest.raises(EditFailed, match="matches 2 places"):
        apply_edit("x\nx\n", EditSpec("x", "y"))
    text, outcome = apply_edit("a\n  b\n", EditSpec("b", "c"))
    assert text == "a\n  c\n" and outcome.status == "applied" and outcome.line == 2


async def test_short_new_string_present_elsewhere_is_not_taken_as_applied(ws: Path, ctx: ToolContext) -> None:
    result = await edit(ctx, old_string="def missing():", new_string="name")
    assert result.is_error and "was not found" in result.output
