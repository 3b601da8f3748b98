"""The editor gate (``ctx.ui.editor``) on a real journal: a multi-line answer given headless
(``Engine.answer``: live, or while no process runs the run) reaches the workflow exactly as typed.
The same across real processes is in tests/integration/test_cli_editor_gate.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from loopcraft import Context, workflow
from loopcraft.engine.control import ControlError
from loopcraft.engine.service import Engine
from tests.engine_fakes import open_engine

TEXT = "Title: fix the parser\n\n  - keep  two spaces\n\t- a tab, ünïcode ✓\n\ntrailing line\n"

ENGINES: list[Engine] = []


@pytest.fixture(autouse=True)
async def _close() -> AsyncIterator[None]:
    yield
    while ENGINES:
        await ENGINES.pop().close()


@workflow(name="notes")
async def notes(ctx: Context) -> dict[str, Any]:
    body = await ctx.ui.editor("Write the release notes", default="draft notes")
    return {"body": body, "lines": len(body.splitlines())}


async def _engine(root: Path) -> Engine:
    engine = await open_engine(root)
    ENGINES.append(engine)
    engine.register(notes)
    return engine


async def _pending(engine: Engine) -> Any:
    for _ in range(500):
        prompts = await engine.prompts(None)
        if prompts:
            return prompts
        await asyncio.sleep(0.01)
    raise AssertionError("no prompt appeared")


async def test_editor_gate_waits_and_gets_the_multi_line_answer_verbatim(git_repo: Path) -> None:
    engine = await _engine(git_repo)
    run_id = await engine.start("notes", {})
    (prompt,) = await _pending(engine)
    assert (prompt.kind, prompt.question, prompt.default) == (
        "editor",
        "Write the release notes",
        "draft notes",
    )
    assert (await engine.get_run(run_id)).status == "awaiting_input"
    assert await engine.answer(run_id, prompt.id, TEXT) == TEXT
    info = await asyncio.wait_for(engine.wait(run_id), 20)
    assert info.status == "completed", info.error
    assert info.output == {"body": TEXT, "lines": 6}
    with pytest.raises(ControlError, match=r"cannot answer|already answered"):  # applied once
        await engine.answer(run_id, prompt.id, "again")


async def test_editor_answer_given_while_no_one_runs_it_is_used_on_resume(git_repo: Path) -> None:
    engine = await _engine(git_repo)
    engine.stop_at_gates = True  # headless without a terminal
    first = await engine.run("notes", {})
    assert first.status == "needs_human"
    other = await _engine(git_repo)  # another process answers, a third resumes
    await other.answer(first.id, None, TEXT)
    third = await _engine(git_repo)
    info = await asyncio.wait_for(third.resume(first.id), 20)
    assert info.status == "completed", info.error
    assert info.output == {"body": TEXT, "lines": 6}


async def test_an_empty_editor_answer_is_an_empty_string(git_repo: Path) -> None:
    engine = await _engine(git_repo)
    run_id = await engine.start("notes", {})
    (prompt,) = await _pending(engine)
    await engine.answer(run_id, prompt.id, "")
    info = await asyncio.wait_for(engine.wait(run_id), 20)
    assert info.output == {"body": "", "lines": 0}
