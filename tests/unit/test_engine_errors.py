"""Bad input gives one clear line and the right exit code, and never loses what was recorded:
unknown workflow or run, bad inputs, broken workflow files, locked or corrupted journals."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import get_args

import pytest

from loopcraft import Context, workflow
from loopcraft.engine.discovery import discover
from loopcraft.engine.journal import Journal, JournalError
from loopcraft.engine.results import EXIT_CODES, RunState, exit_code_for
from loopcraft.errors import LoopcraftError, NotFoundError
from tests.engine_fakes import open_engine


@workflow(name="typed")
async def typed(ctx: Context, count: int, tags: list[str] | None = None, label: str = "x") -> int:
    return count


async def test_unknown_workflow_and_run(git_repo: Path) -> None:
    engine = await open_engine(git_repo)
    engine.register(typed)
    with pytest.raises(NotFoundError) as err:
        await engine.start("nope", {})
    assert "unknown workflow 'nope'" in str(err.value) and "typed" in str(err.value)
    assert err.value.exit_code == 4
    with pytest.raises(NotFoundError) as err2:
        await engine.get_run("does-not-exist")
    assert "unknown run 'does-not-exist'" in str(err2.value)
    with pytest.raises(NotFoundError):
        await engine.resume("does-not-exist")
    await engine.close()


async def test_bad_inputs_are_one_line_errors(git_repo: Path) -> None:
    engine = await open_engine(git_repo)
    engine.register(typed)
    cases = {
        "unknown input 'colour'": {"count": 1, "colour": "red"},
        "input 'count'": {"count": "many"},
        "missing input 'count'": {},
    }
    for expected, inputs in cases.items():
        with pytest.raises(LoopcraftError) as err:
            await engine.start("typed", inputs)
        assert expected in str(err.value) and "\n" not in str(err.value)
        assert err.value.exit_code == 2
    assert await engine.runs() == []  # nothing was recorded for rejected inputs
    info = await engine.run("typed", {"count": "3", "tags": '["a"]', "label": "5"}, cli_strings=True)
    assert info.status == "completed" and info.output == 3
    assert info.inputs == {"count": 3, "tags": ["a"], "label": "5"}
    await engine.close()


async def test_bad_output_fails_the_run(git_repo: Path) -> None:
    @workflow(name="liar")
    async def liar(ctx: Context) -> int:
        return "not a number"  # type: ignore[return-value]

    engine = await open_engine(git_repo)
    engine.register(liar)
    info = await engine.run("liar", {})
    assert info.status == "failed" and "returned a bad output" in (info.error or "")
    await engine.close()


def test_broken_workflow_file_does_not_hide_others(git_repo: Path) -> None:
    folder = git_repo / ".loopcraft" / "workflows"
    folder.mkdir(parents=True)
    (folder / "good.py").write_text(
        "from loopcraft import workflow, Context\n\n@workflow(description='fine')\n"
        "async def good(ctx: Context, n: int = 1) -> int:\n    return n\n"
    )
    (folder / "syntax.py").write_text("def broken(:\n")
    (folder / "raises.py").write_text("raise RuntimeError('cannot import this\\nsecond line')\n")
    (folder / "hello.py").write_text(
        "from loopcraft import workflow, Context\n\n@workflow(description='repo override')\n"
        "async def hello(ctx: Context) -> str:\n    return 'mine'\n"
    )
    catalog = discover(git_repo)
    names = {info.name: info for info in catalog.list()}
    assert "good" in names and names["good"].inputs["properties"]["n"]["type"] == "integer"
    assert names["hello"].description == "repo override"  # repo beats built-in
    errors = dict(catalog.errors)
    assert errors[str(folder / "syntax.py")].startswith("SyntaxError")
    assert str(folder / "raises.py") not in errors  # read, not imported: it declares no workflow
    with pytest.raises(
        LoopcraftError, match=r"workflow 'syntax' could not be loaded: .*syntax\.py: SyntaxError"
    ) as broken:
        catalog.get("syntax")
    assert not isinstance(broken.value, NotFoundError)  # its file exists: bad input (exit 2), not exit 4
    with pytest.raises(NotFoundError, match=r"unknown workflow 'nope'.*1 workflow file\(s\) failed to load"):
        catalog.get("nope")


async def test_locked_journal_is_a_clear_error(git_repo: Path) -> None:
    engine = await open_engine(git_repo)
    engine.register(typed)
    info = await engine.run("typed", {"count": 1})
    await engine.close()
    db = git_repo / ".loopcraft" / "loopcraft.db"
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(JournalError) as err:
            engine = await open_engine(git_repo, busy_timeout=0.2)
            engine.register(typed)
            await engine.start("typed", {"count": 2})
        assert "locked" in str(err.value) and "\n" not in str(err.value)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    engine = await open_engine(git_repo)
    assert (await engine.get_run(info.id)).output == 1  # nothing lost
    await engine.close()


async def test_corrupted_journal_is_a_clear_error_and_untouched(git_repo: Path) -> None:
    db = git_repo / ".loopcraft" / "loopcraft.db"
    db.parent.mkdir(parents=True)
    garbage = b"this is not sqlite" * 100
    db.write_bytes(garbage)
    with pytest.raises(JournalError) as err:
        await open_engine(git_repo)
    assert "damaged" in str(err.value) and str(db) in str(err.value)
    assert db.read_bytes() == garbage


async def test_newer_schema_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "j.db"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(JournalError, match="newer loopcraft"):
        await Journal.open(db)


async def test_mailbox_dedupe_and_prompt_answered_once(tmp_path: Path) -> None:
    journal = await Journal.open(tmp_path / "j.db")
    await journal.create_run("r1", "wf", {})
    first = await journal.post("r1", "steer", {"text": "a"}, dedupe_key="k1")
    again = await journal.post("r1", "steer", {"text": "a"}, dedupe_key="k1")
    assert first is not None and again is None
    assert [m.kind for m in await journal.pending_mail("r1")] == ["steer"]
    assert await journal.consume_mail(first) and not await journal.consume_mail(first)
    prompt = await journal.create_prompt("r1", "root/0:prompt:confirm", "confirm", "ok?")
    assert (await journal.create_prompt("r1", "root/0:prompt:confirm", "confirm", "ok?")).id == prompt.id
    assert await journal.answer_prompt(prompt.id, True)
    assert not await journal.answer_prompt(prompt.id, False)
    stored = await journal.get_prompt(prompt.id)
    assert stored is not None and stored.answer is True
    await journal.close()


def test_exit_codes() -> None:
    codes = {"completed": 0, "failed": 1, "blocked": 3, "needs_human": 5, "awaiting_input": 5}
    codes |= {"budget_exceeded": 6, "cancelled": 7, "killed": 7, "crashed": 8, "no-such-status": 1}
    assert {status: exit_code_for(status) for status in codes} == codes
    assert set(get_args(RunState)) <= set(EXIT_CODES), "every run state has an exit code"
