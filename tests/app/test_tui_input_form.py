"""Issue 12 §3: ``/workflow run NAME`` with required inputs missing opens a form built from the
workflow's signature (types, defaults, descriptions); the workflow's own validation runs before the
run starts; Esc cancels; Submit starts the run with the values."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field
from textual.widgets import Input, Static

from loopcraft import Context, workflow
from loopcraft.tui.input_form import InputForm, form_fields
from tests.app.tui_support import chat_texts, make_app, wait_for


@workflow(name="aim")
async def aim(
    ctx: Context,
    objective: Annotated[str, Field(description="what the run must achieve")],
    max_turns: int = 4,
) -> str:
    return f"{objective}:{max_turns}"


def test_fields_come_from_the_signature() -> None:
    objective, turns = form_fields(aim)
    assert (objective.name, objective.type_name, objective.required) == ("objective", "text", True)
    assert objective.description == "what the run must achieve"
    assert (turns.name, turns.type_name, turns.required, turns.default) == (
        "max_turns",
        "whole number",
        False,
        "4",
    )


async def _open_form(app, pilot) -> InputForm:  # type: ignore[no-untyped-def]
    controller = await app.open_workflows()
    controller.eng.register(aim)
    await app.run_command("/workflow run aim")
    form = await wait_for(pilot, lambda: isinstance(app.screen, InputForm) and app.screen)
    await wait_for(pilot, lambda: form.query("#form-submit"))  # composed
    return form


def _texts(form: InputForm) -> str:
    return " ".join(str(w.render()) for w in form.query(Static))


async def test_the_form_shows_fields_rejects_a_bad_int_and_starts_with_the_values(git_repo: Path) -> None:
    app = make_app(git_repo, "scripted/demo")
    async with app.run_test(size=(140, 45)) as pilot:
        form = await _open_form(app, pilot)
        assert "objective: text (required)" in _texts(form) and "what the run must achieve" in _texts(form)
        assert "max_turns: whole number (default 4)" in _texts(form)
        assert form.query_one("#input-max_turns", Input).value == "4"
        assert form.query_one("#input-objective", Input).value == ""
        form.query_one("#input-objective", Input).value = "ship it"
        form.query_one("#input-max_turns", Input).value = "many"
        await pilot.click("#form-submit")
        await wait_for(pilot, lambda: "max_turns" in str(form.query_one("#form-error", Static).render()))
        assert isinstance(app.screen, InputForm)
        assert await app.workflows.eng.runs() == []
        field = form.query_one("#input-max_turns", Input)
        field.value = "7"
        field.focus()
        await pilot.press("enter")  # Enter in a field submits too
        await wait_for(pilot, lambda: not isinstance(app.screen, InputForm))
        await wait_for(pilot, lambda: app.workflows.selected)
        run = await app.workflows.eng.get_run(app.workflows.selected)
        assert run.workflow == "aim" and run.inputs == {"objective": "ship it", "max_turns": 7}
        assert any("started aim as run" in t for t in chat_texts(app))


async def test_esc_cancels_and_starts_nothing(git_repo: Path) -> None:
    app = make_app(git_repo, "scripted/demo")
    async with app.run_test(size=(140, 45)) as pilot:
        await _open_form(app, pilot)
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, InputForm))
        await wait_for(pilot, lambda: any("cancelled: aim was not started" in t for t in chat_texts(app)))
        assert await app.workflows.eng.runs() == []


async def test_given_required_inputs_start_without_the_form(git_repo: Path) -> None:
    app = make_app(git_repo, "scripted/demo")
    async with app.run_test(size=(140, 45)) as pilot:
        controller = await app.open_workflows()
        controller.eng.register(aim)
        await app.run_command("/workflow run aim objective=now")
        await wait_for(pilot, lambda: controller.selected)
        assert not isinstance(app.screen, InputForm)


@workflow(name="wide")
async def wide(
    ctx: Context,
    goal: Annotated[str, Field(description="what the run must achieve")],
    mode: Literal["ask", "yes", "no"] = "ask",
    rounds: int = 3,
    ratio: float = 0.5,
    strict: bool = False,
    note: str | None = None,
    a1: str = "x",
    a2: str = "x",
    a3: str = "x",
    a4: str = "x",
    a5: str = "x",
    a6: str = "x",
) -> str:
    return goal


async def test_at_40_rows_the_error_and_buttons_show_and_types_read_as_words(git_repo: Path) -> None:
    """Review-10 defect K: at 40 rows the error and Submit were off-screen and types were raw
    Python. The fields scroll; the error sits under the title; the buttons always show."""
    app = make_app(git_repo, "scripted/demo")
    async with app.run_test(size=(100, 40)) as pilot:
        controller = await app.open_workflows()
        controller.eng.register(wide)
        await app.run_command("/workflow run wide")
        form = await wait_for(pilot, lambda: isinstance(app.screen, InputForm) and app.screen)
        await wait_for(pilot, lambda: form.query("#form-submit"))
        texts = _texts(form)
        assert "mode: one of ask, yes, no (default ask)" in texts
        assert "rounds: whole number" in texts and "ratio: number" in texts
        assert "strict: yes/no" in texts and "note: text, optional" in texts
        form.query_one("#input-goal", Input).value = "x"
        form.query_one("#input-rounds", Input).value = "many"
        await pilot.click("#form-submit")
        error = form.query_one("#form-error", Static)
        await wait_for(pilot, lambda: "rounds" in str(error.render()))
        await pilot.pause(0.1)
        for widget in (error, form.query_one("#form-submit"), form.query_one("#form-cancel")):
            region = widget.region
            assert region.height > 0 and region.y >= 0 and region.bottom <= 40, (widget, region)
