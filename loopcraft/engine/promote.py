"""Promotion: a dynamic run's structure (its stages, prompts, models, options, parallel group or
chain, order) written as a readable workflow file ``.loopcraft/workflows/NAME.py``. The user's
request the run served becomes the input ``request: str`` (its text in the prompts is replaced by
``{request}``), so the file reruns the pattern on any request."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from loopcraft.engine.dynamic import DynamicSpec, StageArgs, is_dynamic, parse_spec
from loopcraft.errors import LoopcraftError
from loopcraft.paths import state_dir

NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
INDENT = "    "


def workflow_file(root: Path, name: str) -> Path:
    return state_dir(root) / "workflows" / f"{name}.py"


def check_name(name: str) -> None:
    if not NAME_RE.match(name):
        raise LoopcraftError(
            f"bad workflow name {name!r}: use lowercase letters, digits, '-' and '_', starting with a letter"
        )


def _lit(value: Any) -> str:
    """``repr`` with double-quoted strings, as ruff formats them."""
    if isinstance(value, str):
        body = repr(value)
        if body.startswith("'") and '"' not in value:
            body = '"' + body[1:-1].replace("\\'", "'") + '"'
        return body
    if isinstance(value, list):
        return "[" + ", ".join(_lit(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_lit(k)}: {_lit(v)}" for k, v in value.items()) + "}"
    return repr(value)


def _text(value: str, request: str) -> str:
    """A Python expression for ``value``: the request's text in it becomes the ``request`` input."""
    if not request or request not in value:
        return _lit(value)
    parts = value.split(request)
    pieces: list[str] = []
    for index, part in enumerate(parts):
        if part:
            pieces.append(_lit(part))
        if index < len(parts) - 1:
            pieces.append("request")
    return " + ".join(pieces)


def _call(stage: StageArgs, request: str, name: str, depth: int) -> str:
    pad = INDENT * (depth + 1)
    lines = [f"{pad}{_lit(stage.name)},", f"{pad}prompt={_text(stage.prompt, request)},"]
    for key, value in stage.options().items():
        lines.append(f"{pad}{key}={_lit(value)},")
    output = stage.output or f"{name}/{stage.name}.md"
    lines.append(f"{pad}output={_lit(output)},")
    if stage.schema_ is not None:
        lines.append(f"{pad}schema=schema_model({_lit(stage.name)}, {_lit(stage.schema_)}),")
    return "\n".join(lines)


def render(name: str, run_id: str, spec: DynamicSpec) -> str:
    """The workflow file's source."""
    request = spec.request
    func = name.replace("-", "_")
    stages = ", ".join(s.name for s in spec.stages)
    doc = f"``{name}``: promoted from dynamic run {run_id} ({spec.kind} of {stages})."
    imports = ["from loopcraft import Context, workflow"]
    if any(s.schema_ is not None for s in spec.stages):
        imports.append("from loopcraft.engine.dynamic import schema_model")
    default = f" = {_lit(request)}" if request else ""
    summary = f"{spec.kind} of {stages}"
    head = [
        f'"""{doc}"""',
        "",
        "from __future__ import annotations",
        "",
        *imports,
        "",
        "",
        f"@workflow(name={_lit(name)}, description={_lit(summary)})",
        f"async def {func}(ctx: Context, request: str{default}) -> dict[str, str]:",
        f'{INDENT}"""``request``: what the stages work on (the request the run was made for)."""',
    ]
    if spec.kind == "task":
        only = spec.stages[0]
        body = [
            f"{INDENT}result = await ctx.task(",
            _call(only, request, name, 1),
            f"{INDENT})",
            f"{INDENT}return {{{_lit(only.name)}: result.text}}",
        ]
    else:
        specs = [f"{INDENT * 2}ctx.spec(\n{_call(s, request, name, 2)}\n{INDENT * 2})," for s in spec.stages]
        if spec.kind == "chain":
            opener, closer = f"{INDENT}results = await ctx.chain(\n{INDENT * 2}[", f"{INDENT * 2}]\n{INDENT})"
            specs = [INDENT + line for item in specs for line in item.splitlines()]
        else:
            opener = f"{INDENT}results = await ctx.parallel("
            extra = f"{INDENT * 2}concurrency={spec.concurrency},\n" if spec.concurrency else ""
            closer = f"{extra}{INDENT})"
        names = ", ".join(_lit(s.name) for s in spec.stages)
        body = [
            opener,
            *specs,
            closer,
            f"{INDENT}names = [{names}]",
            f"{INDENT}return {{n: r.text for n, r in zip(names, results, strict=True)}}",
        ]
    return "\n".join([*head, *body]) + "\n"


def _formatted(source: str) -> str:
    """``source`` through ``ruff format`` when ruff is installed (it is laid out to match anyway)."""
    ruff = shutil.which("ruff")
    if ruff is None:
        return source
    done = subprocess.run([ruff, "format", "-"], input=source, capture_output=True, text=True, timeout=30)
    return done.stdout if done.returncode == 0 and done.stdout else source


def promote(root: Path, run: Any, name: str, *, force: bool = False) -> Path:
    """Write the dynamic ``run``'s workflow file as ``name``; refuses file workflows' runs, bad
    names and an existing file (unless ``force``)."""
    check_name(name)
    if not is_dynamic(run.workflow):
        raise LoopcraftError(
            f"run {run.id} is a run of the workflow {run.workflow!r}, which is already a file; "
            "only dynamic runs (the workflow tool's task/chain/parallel) can be promoted"
        )
    path = workflow_file(root, name)
    if path.exists() and not force:
        raise LoopcraftError(f"{path} exists; choose another name or pass --force to overwrite it")
    spec = parse_spec(run.inputs.get("spec") or {})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_formatted(render(name, run.id, spec)), encoding="utf-8")
    return path
