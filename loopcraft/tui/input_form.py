"""The input form ``/workflow run NAME`` opens when required inputs are missing: one field per input
of the workflow's signature (its type, default and description), pre-filled with what was given and
the defaults, checked with the workflow's own pydantic validation before the run starts. Submit
(or Enter) dismisses it with the validated inputs; Esc (or Cancel) with None."""

from __future__ import annotations

import json
import types
import typing
from dataclasses import dataclass
from typing import Any

from pydantic.fields import FieldInfo
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from loopcraft.engine.definition import InputError, Workflow


@dataclass(frozen=True)
class FormField:
    """One workflow input as the form shows it."""

    name: str
    type_name: str
    required: bool
    default: str  # the default as the user would type it ("" when required or None)
    description: str
    text: bool = False  # a plain text input: an empty (non-blank) value is kept as typed


_FRIENDLY = {str: "text", int: "whole number", float: "number", bool: "yes/no"}


def _type_name(annotation: Any) -> str:
    """The input's type as a user reads it: ``text``, ``number``, ``one of ask, yes, no``…"""
    if annotation is None or annotation is Any:
        return "any"
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return "one of " + ", ".join(str(a) for a in args)
    if args and type(None) in args and origin in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        inner = _type_name(rest[0]) if len(rest) == 1 else " or ".join(_type_name(a) for a in rest)
        return f"{inner}, optional"
    if origin in (list, tuple, set):
        return f"list of {_type_name(args[0])}" if args else "list"
    if origin is dict or annotation is dict:
        return "JSON object"
    if isinstance(annotation, type):
        return _FRIENDLY.get(annotation, annotation.__name__)
    return str(annotation).replace("typing.", "")


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value)


def _field(name: str, info: FieldInfo) -> FormField:
    required = info.is_required()
    default = "" if required else _as_text(info.get_default(call_default_factory=True))
    return FormField(
        name, _type_name(info.annotation), required, default, info.description or "", info.annotation is str
    )


def form_fields(workflow: Workflow) -> list[FormField]:
    """The workflow's inputs, in signature order."""
    return [_field(name, info) for name, info in workflow.input_model.model_fields.items()]


def missing_required(workflow: Workflow, given: dict[str, Any]) -> list[str]:
    """The required inputs ``given`` lacks (empty: the run can start without the form)."""
    return [f.name for f in form_fields(workflow) if f.required and f.name not in given]


class InputForm(ModalScreen[dict[str, Any] | None]):
    """Asks for a workflow's inputs; dismissed with the validated inputs, or None when cancelled."""

    DEFAULT_CSS = """
    InputForm { align: center middle; }
    InputForm > Vertical { width: 84; max-height: 90%; height: auto; border: thick $accent;
        padding: 1 2; background: $surface; }
    InputForm > Vertical > VerticalScroll { height: auto; max-height: 1fr; }
    InputForm .form-title { text-style: bold; }
    InputForm .form-label { margin-top: 1; }
    InputForm .form-help { color: $text-muted; }
    InputForm #form-error { color: $error; height: auto; }
    InputForm #form-buttons { height: auto; margin-top: 1; dock: bottom; }
    InputForm Button { margin-right: 2; }
    """
    BINDINGS = [Binding("escape", "cancel", "cancel")]

    def __init__(self, workflow: Workflow, given: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.workflow = workflow
        self.given = dict(given or {})
        self.fields = form_fields(workflow)

    def compose(self) -> ComposeResult:
        with Vertical():  # title and error on top, the fields scroll, the buttons always show
            yield Static(f"Run {self.workflow.name}", classes="form-title", markup=False)
            yield Static("", id="form-error", markup=False)
            with VerticalScroll(id="form-fields"):
                if self.workflow.description:
                    yield Static(self.workflow.description, classes="form-help", markup=False)
                for field in self.fields:
                    need = "required" if field.required else f"default {field.default or 'none'}"
                    yield Static(
                        f"{field.name}: {field.type_name} ({need})", classes="form-label", markup=False
                    )
                    if field.description:
                        yield Static(field.description, classes="form-help", markup=False)
                    value = _as_text(self.given[field.name]) if field.name in self.given else field.default
                    yield Input(value=value, id=f"input-{field.name}", placeholder=field.type_name)
            with Horizontal(id="form-buttons"):
                yield Button("Submit", id="form-submit", variant="primary")
                yield Button("Cancel", id="form-cancel")

    def on_mount(self) -> None:
        self.call_after_refresh(self._focus_first)

    def _focus_first(self) -> None:
        first = next((f for f in self.fields if f.required and f.name not in self.given), None)
        target = first or (self.fields[0] if self.fields else None)
        if target is not None:
            for widget in self.query(f"#input-{target.name}").results(Input):
                widget.focus()

    def values(self) -> dict[str, str]:
        """What the fields hold; an empty optional field means its default."""
        raw: dict[str, str] = {}
        for field in self.fields:
            text = self.query_one(f"#input-{field.name}", Input).value
            if text.strip() or field.required or (field.text and text):
                raw[field.name] = text
        return raw

    def submit(self) -> None:
        """Validate through the workflow's own input validation; dismiss only when it passes."""
        raw = self.values()
        missing = [f.name for f in self.fields if f.required and not raw.get(f.name, "").strip()]
        error = self.query_one("#form-error", Static)
        if missing:
            error.update(f"fill in the required input {missing[0]!r}")
            return
        try:
            inputs = self.workflow.coerce_cli_inputs(raw)
        except InputError as exc:
            error.update(str(exc))
            return
        self.dismiss(inputs)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "form-submit":
            self.submit()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)
