"""Reading workflow files without running them: the ``ast`` of a file gives its ``@workflow``
functions, their names, descriptions, typed inputs and whether they declare triggers.

Listing workflows (``loopcraft workflows``, the app's list, name resolution for ``run``) uses only
this, so a file that hangs or exits at import affects nobody until its own workflow runs. Input
annotations are evaluated in a closed namespace (builtins, ``typing``, ``pathlib.Path``, pydantic's
``Field`` with literal arguments); anything else (a class defined in the file) reads as "any value",
and a default that is not a literal is shown as "has a default" without its value.
"""

from __future__ import annotations

import ast
import pathlib
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ConfigDict, Field, create_model

_NAMESPACE: dict[str, Any] = {
    **{name: getattr(typing, name) for name in ("Any", "Literal", "Optional", "Union", "Annotated")},
    **{name: getattr(typing, name) for name in ("List", "Dict", "Tuple", "Set")},
    "str": str,
    "int": int,
    "float": float,
    "bool": bool,
    "bytes": bytes,
    "list": list,
    "dict": dict,
    "tuple": tuple,
    "set": set,
    "None": None,
    "Path": Path,
    "typing": typing,
    "t": typing,
    "pathlib": pathlib,
    "Field": Field,
}
_NO_DEFAULT = object()
_UNSAFE = object()
_UNKNOWN_DEFAULT = object()


class StaticError(Exception):
    """A workflow file whose workflows cannot be read (syntax, a bad signature); one line."""


@dataclass
class StaticWorkflow:
    """A workflow as its file declares it (nothing imported)."""

    name: str
    function: str
    description: str
    inputs: dict[str, Any]
    path: Path
    source: str  # "user" or "repo"
    has_triggers: bool = False
    nested: bool = False  # ``@workflow(nested=True)``


def _workflow_aliases(tree: ast.Module) -> tuple[set[str], set[str]]:
    """Names the ``workflow`` decorator goes by in this file, and module aliases of ``loopcraft``."""
    names, modules = {"workflow"}, {"loopcraft"}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "loopcraft":
            names |= {a.asname or a.name for a in node.names if a.name == "workflow"}
        elif isinstance(node, ast.Import):
            modules |= {a.asname for a in node.names if a.name == "loopcraft" and a.asname}
    return names, modules


def _decorator(node: ast.expr, names: set[str], modules: set[str]) -> ast.Call | ast.expr | None:
    """``node`` when it is ``@workflow``/``@workflow(...)``/``@loopcraft.workflow(...)``, else None."""
    target = node.func if isinstance(node, ast.Call) else node
    if isinstance(target, ast.Name) and target.id in names:
        return node
    if (
        isinstance(target, ast.Attribute)
        and target.attr == "workflow"
        and isinstance(target.value, ast.Name)
        and target.value.id in modules
    ):
        return node
    return None


_TYPE_NODES = (
    ast.Name, ast.Attribute, ast.Subscript, ast.Tuple, ast.List, ast.Constant, ast.BinOp, ast.BitOr,
    ast.Load, ast.keyword, ast.Call, ast.UnaryOp, ast.USub, ast.Expression,
)  # fmt: skip


def _safe_node(sub: ast.AST) -> bool:
    if isinstance(sub, ast.Call):  # only pydantic's Field(...), with literal arguments
        func = sub.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        return name == "Field" and all(_literal(a) for a in [*sub.args, *(k.value for k in sub.keywords)])
    if isinstance(sub, ast.BinOp):
        return isinstance(sub.op, ast.BitOr)
    if isinstance(sub, ast.Attribute):
        return not sub.attr.startswith("_")
    return isinstance(sub, _TYPE_NODES)


def _safe(node: ast.AST) -> bool:
    """Whether an annotation's expression only names and subscripts types (and calls ``Field``)."""
    return all(_safe_node(sub) for sub in ast.walk(node))


def _literal(node: ast.AST) -> bool:
    try:
        ast.literal_eval(node)  # type: ignore[arg-type]
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def _evaluate(node: ast.expr, names: dict[str, Any]) -> Any:
    """The value of a type expression (or ``Field(...)``) in the closed namespace plus ``names``
    (the file's own type aliases); :data:`_UNSAFE` when it is anything else."""
    if not _safe(node):
        return _UNSAFE
    try:
        code = compile(ast.Expression(node), "<annotation>", "eval")
        return eval(code, {"__builtins__": {}}, {**_NAMESPACE, **names})  # names checked by _safe
    except Exception:
        return _UNSAFE


def _annotation(node: ast.expr | None, names: dict[str, Any]) -> Any:
    """The type an annotation names; ``Any`` when it cannot be known without importing."""
    if node is None:
        return Any
    if isinstance(node, ast.Constant) and isinstance(node.value, str):  # "str", a forward reference
        try:
            node = ast.parse(node.value, mode="eval").body
        except SyntaxError:
            return Any
    value = _evaluate(node, names)
    return Any if value is _UNSAFE else value


def _aliases(tree: ast.Module) -> dict[str, Any]:
    """The file's top-level type aliases (``Direction = Literal["min", "max"]``), in order."""
    names: dict[str, Any] = {}
    for node in tree.body:
        target, value = None, None
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            target, value = node.targets[0].id, node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value:
            target, value = node.target.id, node.value
        if target is not None and value is not None and not isinstance(value, ast.Constant):
            evaluated = _evaluate(value, names)
            if evaluated is not _UNSAFE:
                names[target] = evaluated
    return names


def _default(node: ast.expr | None, names: dict[str, Any]) -> Any:
    if node is None:
        return _NO_DEFAULT
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        pass
    if isinstance(node, ast.Call):  # Field(default=2, ge=1)
        value = _evaluate(node, names)
        if value is not _UNSAFE:
            return value
    return _UNKNOWN_DEFAULT


def _inputs(fn: ast.AsyncFunctionDef, names: dict[str, Any]) -> dict[str, Any]:
    """The JSON schema of the function's inputs, as pydantic gives it for the imported function."""
    args = fn.args
    if args.vararg or args.kwarg:
        raise StaticError(f"workflow {fn.name!r}: *args/**kwargs are not allowed as inputs")
    positional = [*args.posonlyargs, *args.args]
    if not positional and not args.kwonlyargs:
        raise StaticError(f"workflow {fn.name!r} must take `ctx` as its first parameter")
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    params = list(zip(positional, defaults, strict=True))[1:] + list(
        zip(args.kwonlyargs, args.kw_defaults, strict=True)
    )
    fields: dict[str, Any] = {}
    unknown: list[str] = []
    for arg, default_node in params:
        default = _default(default_node, names)
        if default is _UNKNOWN_DEFAULT:
            unknown.append(arg.arg)
            default = None
        fields[arg.arg] = (_annotation(arg.annotation, names), ... if default is _NO_DEFAULT else default)
    try:
        model = create_model(  # type: ignore[call-overload]
            f"{fn.name}_inputs", __config__=ConfigDict(extra="forbid"), **fields
        )
        schema: dict[str, Any] = model.model_json_schema()
    except Exception:  # an annotation pydantic cannot take: each input as "any value"
        model = create_model(  # type: ignore[call-overload]
            f"{fn.name}_inputs",
            __config__=ConfigDict(extra="forbid"),
            **{name: (Any, default) for name, (_, default) in fields.items()},
        )
        schema = model.model_json_schema()
    for name in unknown:  # a default only the import knows: "has a default", no value shown
        schema.get("properties", {}).get(name, {}).pop("default", None)
    return schema


def _keyword(call: ast.Call | ast.expr, name: str) -> ast.expr | None:
    if not isinstance(call, ast.Call):
        return None
    return next((k.value for k in call.keywords if k.arg == name), None)


def _text(node: ast.expr | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def read_workflows(path: Path, source: str) -> list[StaticWorkflow]:
    """The workflows ``path`` declares at its top level; :class:`StaticError` or ``SyntaxError`` when
    it cannot be read."""
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise StaticError(f"cannot read the file: {exc.strerror}") from exc
    tree = ast.parse(text, filename=str(path))
    names, modules = _workflow_aliases(tree)
    aliases = _aliases(tree)
    found: list[StaticWorkflow] = []
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        decorators = [d for d in (_decorator(d, names, modules) for d in node.decorator_list) if d]
        if not decorators:
            continue
        if not isinstance(node, ast.AsyncFunctionDef):
            raise StaticError(f"workflow {node.name!r} must be an `async def` function")
        call = decorators[0]
        doc = (ast.get_docstring(node) or "").split("\n", 1)[0]
        triggers = _keyword(call, "triggers")
        found.append(
            StaticWorkflow(
                name=_text(_keyword(call, "name")) or node.name.replace("_", "-"),
                function=node.name,
                description=_text(_keyword(call, "description")) or doc,
                inputs=_inputs(node, aliases),
                path=path,
                source=source,
                nested=_is_true(_keyword(call, "nested")),
                has_triggers=triggers is not None
                and not (isinstance(triggers, ast.List | ast.Tuple) and not triggers.elts)
                and not (isinstance(triggers, ast.Constant) and triggers.value is None),
            )
        )
    return found


def _is_true(node: ast.expr | None) -> bool:
    """A keyword given as the literal ``True``."""
    return isinstance(node, ast.Constant) and node.value is True
