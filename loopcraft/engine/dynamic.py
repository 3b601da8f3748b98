"""Dynamic runs: a ``task``/``chain``/``parallel`` call of the ``workflow`` tool as a generated
:class:`Workflow` named ``dynamic:<short id>``. The run's inputs hold the call's spec, so the
engine rebuilds the same workflow from the journal when the run is resumed."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, create_model

from loopcraft.engine.definition import Workflow
from loopcraft.errors import LoopcraftError

PREFIX = "dynamic:"
OUTPUT_FOLDER = "dynamic"
_JSON_TYPES: dict[str, Any] = {
    "string": str,
    "integer": int,
    "number": float,
    "boolean": bool,
    "array": list,
    "object": dict,
}


class DynamicError(LoopcraftError):
    """A dynamic run's spec is unusable (bad arguments, over a cap)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StageArgs(_Strict):
    """One stage of a dynamic run, as the model writes it."""

    name: str = Field(min_length=1, max_length=60, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    prompt: str = Field(min_length=1)
    model: str | None = None
    tools: list[str] | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    context: Literal["fresh", "fork"] = "fresh"
    worktree: bool = False
    output: str | None = None
    output_mode: Literal["inline", "file-only"] = "inline"

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def options(self) -> dict[str, Any]:
        """The non-default options, as ``ctx.task`` keyword arguments (``schema`` excluded)."""
        return self.model_dump(exclude_defaults=True, exclude={"name", "prompt", "schema_"})

    def output_path(self) -> str:
        return self.output or f"{OUTPUT_FOLDER}/{self.name}.md"


class DynamicSpec(_Strict):
    """What a dynamic run does: one task, a chain or a parallel group of stages."""

    kind: Literal["task", "chain", "parallel"]
    stages: list[StageArgs] = Field(min_length=1)
    concurrency: int | None = Field(default=None, gt=0)
    request: str = ""  # the user's request that led to it (an input when promoted)
    depth: int = 0  # how many dynamic runs started this one (a stage's tool call adds one)


def parse_spec(data: dict[str, Any]) -> DynamicSpec:
    """The validated spec, or a :class:`DynamicError` naming the first bad field."""
    try:
        spec = DynamicSpec.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"]) or "arguments"
        raise DynamicError(f"bad {data.get('kind', 'workflow')} arguments: {loc}: {err['msg']}") from exc
    names = [s.name for s in spec.stages]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise DynamicError(f"stage names must be unique; repeated: {', '.join(dupes)}")
    if spec.kind == "task" and len(spec.stages) != 1:
        raise DynamicError("action=task runs exactly one stage; use chain or parallel for several")
    return spec


def schema_model(name: str, schema: dict[str, Any]) -> type[BaseModel]:
    """A pydantic model from a JSON schema object's top-level ``properties`` (basic types)."""
    props = schema.get("properties")
    if not isinstance(props, dict) or not props:
        raise DynamicError(f"stage {name!r}: schema needs an object with 'properties'")
    required = set(schema.get("required", list(props)))
    fields: dict[str, Any] = {}
    for key, prop in props.items():
        kind = _JSON_TYPES.get(prop.get("type", "string") if isinstance(prop, dict) else "string", Any)
        fields[key] = (kind, ...) if key in required else (kind | None, None)
    return create_model(f"{name}_output", **fields)  # type: ignore[call-overload,no-any-return]


def stage_kwargs(stage: StageArgs) -> dict[str, Any]:
    """``ctx.task``/``ctx.spec`` keyword arguments for one stage."""
    kwargs = stage.options()
    kwargs["output"] = stage.output_path()
    if stage.schema_ is not None:
        kwargs["schema"] = schema_model(stage.name, stage.schema_)
    return kwargs


def _result(stage: StageArgs, result: Any) -> dict[str, Any]:
    return {
        "name": stage.name,
        "text": result.text,
        "structured": result.structured.model_dump(mode="json")
        if hasattr(result.structured, "model_dump")
        else result.structured,
        "artifact": stage.output_path(),
    }


async def _run(ctx: Any, spec: DynamicSpec) -> list[dict[str, Any]]:
    stages = spec.stages
    if spec.kind == "task":
        only = stages[0]
        return [_result(only, await ctx.task(only.name, only.prompt, **stage_kwargs(only)))]
    specs = [ctx.spec(s.name, s.prompt, **stage_kwargs(s)) for s in stages]
    if spec.kind == "chain":
        results = await ctx.chain(specs)
    else:
        results = await ctx.parallel(*specs, concurrency=spec.concurrency)
    return [_result(s, r) for s, r in zip(stages, results, strict=True)]


class _Inputs(_Strict):
    spec: dict[str, Any]


def build_workflow(name: str, spec_data: dict[str, Any]) -> Workflow:
    """The generated workflow of a dynamic run (``spec_data`` as stored in the run's inputs)."""
    spec = parse_spec(spec_data)

    async def dynamic(ctx: Any, spec: dict[str, Any]) -> list[dict[str, Any]]:
        return await _run(ctx, parse_spec(spec))

    return Workflow(
        fn=dynamic,
        name=name,
        description=f"dynamic {spec.kind} of {len(spec.stages)} stage(s)",
        input_model=_Inputs,
        output_adapter=TypeAdapter(list[dict[str, Any]]),
    )


def is_dynamic(name: str) -> bool:
    return name.startswith(PREFIX)
