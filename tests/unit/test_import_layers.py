"""Dependencies point down: the engine never imports the TUI, and no import circle remains among
the TUI's modules (every import counts: top-level, inside functions and under TYPE_CHECKING)."""

from __future__ import annotations

import re
from pathlib import Path

import loopcraft

PACKAGE = Path(loopcraft.__file__).parent


def _module(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


# ``from loopcraft.x import a, b`` (also parenthesised over lines) and ``import loopcraft.x``, at any
# indentation: inside functions and under TYPE_CHECKING too. (Text, not ``ast``: CPython 3.11's
# ``ast.parse`` can fail spuriously deep inside a test run's stack.)
_FROM = re.compile(r"^[ \t]*from[ \t]+(loopcraft[\w.]*)[ \t]+import[ \t]+(\([^)]*\)|[^\n]*)", re.MULTILINE)
_IMPORT = re.compile(r"^[ \t]*import[ \t]+(loopcraft[\w.]*)", re.MULTILINE)


def _imports(path: Path) -> set[str]:
    text = path.read_text(encoding="utf-8")
    found = set(_IMPORT.findall(text))
    for module, names in _FROM.findall(text):
        found.add(module)
        for name in names.strip("()").replace("\n", ",").split(","):
            word = name.split("#")[0].split(" as ")[0].strip()
            if word:
                found.add(f"{module}.{word}")
    return found


def _graph() -> dict[str, set[str]]:
    modules = {_module(p): p for p in PACKAGE.rglob("*.py")}
    return {name: {i for i in _imports(path) if i in modules and i != name} for name, path in modules.items()}


def _cycle(graph: dict[str, set[str]], nodes: set[str]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node] & nodes):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(nodes):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_engine_and_agent_never_import_the_tui() -> None:
    graph = _graph()
    below = [m for m in graph if m.startswith(("loopcraft.engine", "loopcraft.agent", "loopcraft.models"))]
    bad = {m: sorted(i for i in graph[m] if i.startswith("loopcraft.tui")) for m in below}
    assert {m: v for m, v in bad.items() if v} == {}


def test_the_workflow_tool_lives_below_the_tui() -> None:
    graph = _graph()
    assert "loopcraft.engine.workflow_tool" in graph
    assert "loopcraft.tui.workflow_tool" not in graph


def test_no_import_circle_among_the_app_workflows_and_the_tool() -> None:
    graph = _graph()
    core = {"loopcraft.tui.app", "loopcraft.tui.workflows", "loopcraft.engine.workflow_tool"}
    assert _cycle(graph, core) is None


def test_imports_are_found_in_functions_and_parentheses(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text(
        "if TYPE_CHECKING:\n    from loopcraft.tui.app import (\n        LoopcraftApp,  # x\n        other,\n    )\n"
        "def f():\n    import loopcraft.engine.dynamic\n"
    )
    assert _imports(source) == {
        "loopcraft.tui.app",
        "loopcraft.tui.app.LoopcraftApp",
        "loopcraft.tui.app.other",
        "loopcraft.engine.dynamic",
    }


def test_a_planted_circle_is_found() -> None:
    assert _cycle({"a": {"b"}, "b": {"a"}}, {"a", "b"}) == ["a", "b", "a"]
