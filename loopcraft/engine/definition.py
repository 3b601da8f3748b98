"""``@workflow``: turns an ``async def f(ctx, <typed inputs>) -> <output>`` into a :class:`Workflow`
whose inputs and output are validated with pydantic models built from the signature."""

from __future__ import annotations

import inspect
import json
import math
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, overload

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError, create_model
from pydantic.fields import FieldInfo

from loopcraft.errors import LoopcraftError

WorkflowFn = Callable[..., Awaitable[Any]]


class WorkflowDefinitionError(LoopcraftError):
    """A workflow function cannot be used as a workflow (bad signature)."""


class InputError(LoopcraftError):
    """Inputs given to a workflow do not match its signature."""


class OutputError(LoopcraftError):
    """A workflow returned a value that does not match its return annotation."""


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    if err["type"] == "extra_forbidden":
        return f"unknown input {loc!r}"
    if err["type"] == "missing":
        return f"missing input {loc!r}"
    return f"input {loc!r}: {err['msg']}" if loc else err["msg"]


def _no_constant(name: str) -> Any:
    """JSON's non-standard ``NaN``/``Infinity`` are not numbers here (they stay text)."""
    raise ValueError(f"{name} is not JSON")


def _non_finite(value: Any) -> bool:
    """Whether ``value`` is, or holds, a NaN or an infinity."""
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_non_finite(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_non_finite(v) for v in value)
    return False


def _allows_non_finite(info: FieldInfo) -> bool:
    """Whether a field's annotation allows NaN and infinity (``Field(allow_inf_nan=True)``)."""
    return any(getattr(meta, "allow_inf_nan", None) is True for meta in info.metadata)


@dataclass
class Workflow:
    """A registered workflow: its function, name, description and typed contracts."""

    fn: WorkflowFn
    name: str
    description: str
    input_model: type[BaseModel]
    output_adapter: TypeAdapter[Any]
    source: Path | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    nested: bool = False  # meant only to be called from other workflows (``ctx.workflow``)

    @property
    def input_names(self) -> list[str]:
        return list(self.input_model.model_fields)

    def inputs_schema(self) -> dict[str, Any]:
        return self.input_model.model_json_schema()

    def validate_inputs(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """Validated inputs (defaults filled), as JSON-able data; raises :class:`InputError`."""
        try:
            model = self.input_model.model_validate(inputs)
        except ValidationError as exc:
            expected = ", ".join(self.input_names) or "none"
            raise InputError(
                f"bad input for workflow {self.name!r}: {_first_error(exc)} (inputs: {expected})"
            ) from exc
        for name, value in model.model_dump().items():
            if _non_finite(value) and not _allows_non_finite(self.input_model.model_fields[name]):
                raise InputError(
                    f"bad input for workflow {self.name!r}: input {name!r}: NaN and infinity are not "
                    "allowed (annotate it `Annotated[float, Field(allow_inf_nan=True)]` to allow them)"
                )
        return model.model_dump(mode="json")

    def coerce_cli_inputs(self, raw: dict[str, str]) -> dict[str, Any]:
        """``k=v`` strings from the command line: JSON-decoded for non-string fields, then validated."""
        out: dict[str, Any] = {}
        for key, value in raw.items():
            info = self.input_model.model_fields.get(key)
            wants_str = info is not None and info.annotation is str
            if not wants_str and isinstance(value, str):
                try:
                    out[key] = json.loads(value, parse_constant=_no_constant)
                    continue
                except ValueError:
                    pass
            out[key] = value
        return self.validate_inputs(out)

    def call_kwargs(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """Keyword arguments for the function (typed values, e.g. nested models rebuilt)."""
        model = self.input_model.model_validate(inputs)
        return {name: getattr(model, name) for name in self.input_model.model_fields}

    def validate_output(self, value: Any) -> Any:
        """The output as JSON-able data; raises :class:`OutputError` when it breaks the annotation."""
        try:
            checked = self.output_adapter.validate_python(value)
            return self.output_adapter.dump_python(checked, mode="json")
        except ValidationError as exc:
            err = exc.errors()[0]
            raise OutputError(f"workflow {self.name!r} returned a bad output: {err['msg']}") from exc


def _build(
    fn: WorkflowFn,
    name: str | None,
    description: str | None,
    budget: dict[str, Any] | None = None,
    triggers: list[Any] | None = None,
    nested: bool = False,
) -> Workflow:
    if not inspect.iscoroutinefunction(fn):
        raise WorkflowDefinitionError(f"workflow {fn.__name__!r} must be an `async def` function")
    params = list(inspect.signature(fn).parameters.values())
    if not params:
        raise WorkflowDefinitionError(f"workflow {fn.__name__!r} must take `ctx` as its first parameter")
    try:
        hints = typing.get_type_hints(fn, include_extras=True)  # keeps Annotated[..., Field(description=…)]
    except Exception:
        hints = {}
    fields: dict[str, Any] = {}
    for param in params[1:]:
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise WorkflowDefinitionError(
                f"workflow {fn.__name__!r}: *args/**kwargs are not allowed as inputs"
            )
        annotation = hints.get(param.name, Any)
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[param.name] = (annotation, default)
    wf_name = name or fn.__name__.replace("_", "-")
    input_model = create_model(  # type: ignore[call-overload]
        f"{fn.__name__}_inputs", __config__=ConfigDict(extra="forbid", allow_inf_nan=False), **fields
    )
    output_type = hints.get("return", Any)
    doc = description or (inspect.getdoc(fn) or "").split("\n", 1)[0]
    extras: dict[str, Any] = {}
    if budget:
        from loopcraft.engine.budgets import check_budget

        extras["budget"] = check_budget(budget)
    if triggers:
        extras["triggers"] = list(triggers)  # loopcraft.triggers.spec.Trigger; checked at load
    return Workflow(
        fn=fn,
        name=wf_name,
        description=doc,
        input_model=input_model,
        output_adapter=TypeAdapter(output_type),
        extras=extras,
        nested=bool(nested),
    )


@overload
def workflow(fn: WorkflowFn, /) -> Workflow: ...
@overload
def workflow(
    *,
    description: str | None = None,
    name: str | None = None,
    budget: dict[str, Any] | None = None,
    triggers: list[Any] | None = None,
    nested: bool = False,
) -> Callable[[WorkflowFn], Workflow]: ...


def workflow(
    fn: WorkflowFn | None = None,
    /,
    *,
    description: str | None = None,
    name: str | None = None,
    budget: dict[str, Any] | None = None,
    triggers: list[Any] | None = None,
    nested: bool = False,
) -> Workflow | Callable[[WorkflowFn], Workflow]:
    """Declare a workflow: ``@workflow`` or ``@workflow(description=..., name=..., budget=...)``.

    ``budget`` (tokens, dollars, seconds, stages) limits every run of it (``--budget`` overrides it
    key by key) and, when it runs nested under another workflow, its own stages. ``triggers``
    (``cron(...)``, ``on_git(...)``, … from :mod:`loopcraft`) start it from ``loopcraft serve``.
    ``nested=True`` marks a workflow meant only to be called from other workflows
    (``ctx.workflow``): lists mark it ``nested`` and ``loopcraft run`` of it says so in a note."""
    if fn is not None:
        return _build(fn, name, description, budget, triggers, nested)
    return lambda f: _build(f, name, description, budget, triggers, nested)
