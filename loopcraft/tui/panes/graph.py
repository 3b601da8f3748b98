"""The stage graph pane: the selected run's stages as a live tree.

:class:`GraphModel` is the pure part: stages keyed by their step key, nested under the
nearest enclosing scope (so parallel branches are siblings under their group and a
nested workflow's stages sit, collapsible, under the workflow node; a parallel fan-out is a
group ``parallel · 3 branches · 2 at a time`` with its branches, queued ones too, under it).
Nodes read as names, never step keys; a label puts the status first so a narrow pane cuts only
the least useful details (the model). :class:`GraphPane` renders it in a Textual ``Tree``,
redrawing at most every 0.25 s, and posts :class:`GraphPane.Attach` when Enter is pressed on a
stage (:class:`GraphPane.FocusPrompt` on a human gate, whose answer lives in the prompts pane;
:class:`GraphPane.ShowRound` on a group with a check and review round).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Static, Tree
from textual.widgets.tree import TreeNode

from loopcraft.engine.activity import ago, clock, flag_text
from loopcraft.engine.graph import (
    KILLED_MESSAGE,
    check_outcome,
    display_status,
    group_summary,
    parallel_name,
    verdict_outcome,
)
from loopcraft.engine.names import node_name
from loopcraft.tui.statusbar import format_elapsed, format_tokens

ICONS = {
    "pending": ("·", "dim"),
    "queued": ("◌", "dim"),
    "running": ("⟳", "bold cyan"),
    "awaiting_input": ("?", "bold yellow"),
    "paused": ("‖", "yellow"),
    "completed": ("✓", "green"),
    "failed": ("✗", "bold red"),
    "skipped": ("–", "dim"),
    "killed": ("⊘", "red"),
    "cancelled": ("⊘", "yellow"),
}
GROUP_KINDS = frozenset({"parallel", "workflow", "stage", "chain", "group"})
TICKING = frozenset({"running", "awaiting_input"})  # statuses whose elapsed time counts up
QUIET = frozenset({"completed", "running", "pending"})  # statuses the icon alone says
TAGGED_KINDS = frozenset({"check", "tool", "stage"})  # kinds named after the node's name
FLUSH_S = 0.25  # the tree is redrawn at most this often
GUIDE = 3  # cells of tree guide per level
MIN_NAME = 12  # a stage's name is shortened to no fewer characters (then the pane cuts the line's end)


@dataclass
class StageNode:
    key: str
    name: str
    kind: str = "task"
    status: str = "pending"
    model: str | None = None
    elapsed: float = 0.0
    tokens: int = 0
    cost: float = 0.0
    error: str | None = None
    started: float | None = None  # monotonic, while ticking here (running or awaiting input)
    parents: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)  # check outcome, verdict, parallel branches
    summary: str | None = None  # a group's check and review round
    grants: list[str] = field(default_factory=list)
    turns: int = 0  # its latest model turn (in flight or answered)
    last_active: float | None = None  # epoch seconds of its last agent event
    flag: str | None = None  # "stalled" or "waiting" (for a limit to reset at ``until``)
    flag_detail: str = ""
    until: float | None = None
    since: float | None = None  # epoch seconds it started (running or awaiting input), if known
    held: bool = False  # awaiting input in a run no process executes (needs_human): no clock

    def live_elapsed(self, now: float | None = None) -> float:
        if self.status in TICKING and self.started is not None:
            return self.elapsed + ((now or time.monotonic()) - self.started)
        return self.elapsed


def node_label(
    node: StageNode,
    now: float | None = None,
    *,
    parallel: bool = False,
    joins: int = 0,
    summary: bool = True,
    width: int | None = None,
) -> Text:
    """``icon name [kind] status · outcome  time · tokens · join · model  error``: most important
    first, so a narrow pane cuts the model and the error's start, never the status; in ``width``
    cells the name is shortened (``review-maint…``) before the time or tokens would be cut."""
    status = display_status(node.status, node.info)
    icon, style = ICONS.get(status, ("•", ""))
    outcome = check_outcome(node.info) or verdict_outcome(node.info) or (node.summary if summary else None)
    after: list[tuple[str, str]] = []  # what follows the name, in order
    if node.kind in TAGGED_KINDS:
        after.append((f" ({node.kind})", "dim"))
    if status not in QUIET and not (outcome and outcome.startswith(status)):  # not "failed · failed (exit 3)"
        after.append((f" {status.replace('_', ' ')}", style))
    if node.flag and node.status == "running":  # the mark matters more than any detail
        mark = flag_text(node.flag, "", node.until)
        after.append((f" {mark}", "bold red" if node.flag == "stalled" else "bold yellow"))
    if outcome:
        after.append((f" · {outcome}", _outcome_style(node, outcome)))
    details = _details(node, now, joins)
    activity = _activity(node)  # after the time and tokens, cut before them (never shortens the name)
    lead = f"{icon} " + ("∥ " if parallel else "")
    name = display_name(node)
    if width is not None:  # shorten the name (then the join's words): status, time, tokens, count fit
        used = len(lead) + sum(len(part) for part, _ in after) + len("  " + " · ".join(details))
        if used + len(name) > width and node.kind == "parallel":
            name = _short_parallel_name(node.info, width - used)
        over = used + len(name) - width
        if over > 0 and len(name) > MIN_NAME:
            name = name[: max(MIN_NAME, len(name) - over - 1)] + "…"
        if used + len(name) > width and joins > 1:
            details[-1] = f"⋈ {joins}"
    if details:
        after.append(("  " + " · ".join(details), "dim"))
    text = Text(f"{icon} ", style=style)
    if parallel:
        text.append("∥ ", style="dim")
    text.append(name, style="bold" if node.kind in GROUP_KINDS else "")
    for part, part_style in after:
        text.append(part, style=part_style)
    if activity:
        text.append((" · " if details else "  ") + " · ".join(activity), style="dim")
    if node.model:  # the least useful detail: cut first
        text.append(f" · {node.model}" if details or activity else f"  {node.model}", style="dim")
    if node.grants:
        text.append(f"  grants: {' · '.join(node.grants)}", style="yellow")
    if node.error:  # its start, last (a narrow pane cuts it first); Enter shows it whole
        text.append(f"  {node.error.splitlines()[0][:60]}", style="red")
    return text


def _details(node: StageNode, now: float | None, joins: int) -> list[str]:
    """A node's time, tokens and join (the model is added after them, to be cut first)."""
    details = []
    elapsed = node.live_elapsed(now)
    if node.held and node.since is not None:  # nobody runs it: when it began, not a clock
        details.append(f"since {clock(node.since)}")
    elif node.status in TICKING and node.started is not None:  # whole seconds: one redraw a second
        details.append(f"{int(elapsed)}s" if elapsed < 60 else format_elapsed(elapsed))
    elif elapsed:
        details.append(format_elapsed(elapsed))
    if node.tokens:
        details.append(f"{format_tokens(node.tokens)} tok")
    if joins > 1:
        details.append(f"⋈ join of {joins}")
    return details


def _activity(node: StageNode) -> list[str]:
    """A stage's turn count and, while it runs, how long ago its agent last did something."""
    found = [f"turn {node.turns}"] if node.turns else []
    if node.last_active is not None and node.status == "running":  # whole seconds, like the time
        found.append(ago(time.time() - node.last_active))
    return found


def _short_parallel_name(info: dict[str, Any], room: int) -> str:
    """A fan-out's name in ``room`` cells: ``parallel · 3 branches · 1 at a time``, then
    ``∥ 3 branches · 1 at a time``, ``∥ 3 · 1 at a time``, ``∥ 3``."""
    branches = len(info.get("branches") or [])
    if not branches:
        return "parallel"
    limit = int(info.get("concurrency") or branches)
    at = f" · {limit} at a time" if limit < branches else ""
    noun = f" branch{'es' if branches != 1 else ''}"
    for name in (f"∥ {branches}{noun}{at}", f"∥ {branches}{at}", f"∥ {branches}{noun}"):
        if len(name) <= room:
            return name
    return f"∥ {branches}"


def display_name(node: StageNode) -> str:
    """A node's name as people read it: ``merge fix-parser``, ``parallel · 3 branches · 2 at a time``."""
    if node.kind != "parallel":
        return node_name(node.kind, node.name)
    return parallel_name(node.info)


def _outcome_style(node: StageNode, outcome: str) -> str:
    bad = ("failed", "timed out", "reject", "blocker")
    return "yellow" if any(word in outcome for word in bad) else "green"


class GraphModel:
    """Stages of one run, kept in arrival order, with their tree parents."""

    def __init__(self, run_id: str | None = None) -> None:
        self.run_id = run_id
        self.nodes: dict[str, StageNode] = {}
        self.owners: dict[str, str] = {}  # a parallel's branch given as another ctx call → the parallel

    def add(
        self,
        key: str,
        name: str,
        kind: str = "task",
        parents: list[str] | None = None,
        info: dict[str, Any] | None = None,
    ) -> StageNode:
        """Add a node (or name one added as a queued branch); a parallel group's ``info`` lists its
        branches, and those not started yet are added as ``queued``."""
        node = self.nodes.get(key)
        if node is None:
            node = StageNode(key, name or kind, kind, parents=list(parents or []))
            self.nodes[key] = node
        elif node.status == "queued":  # a queued branch starting: its own name, kind and parents
            node.name, node.kind, node.parents = name or node.name, kind, list(parents or [])
        if info:
            node.info = dict(info)
            for index, branch in enumerate(info.get("branches") or []):
                self._add_branch(key, index, branch)
        return node

    def _add_branch(self, group: str, index: int, branch: dict[str, Any]) -> None:
        bkey = branch.get("key") or f"{group}/~{index}"
        if not bkey.startswith(group + "/"):
            self.owners[bkey] = group
        if bkey not in self.nodes:
            name = branch.get("name") or f"branch {index + 1}"
            self.nodes[bkey] = StageNode(bkey, name, branch.get("kind") or "task", "queued")

    def hold(self, held: bool) -> None:
        """The run stopped needing a human (``held``: no process executes it, so its open gates
        wait with no clock; they show since when) or is executed again (their clocks go on)."""
        now = time.monotonic()
        for node in self.nodes.values():
            if held and node.status in TICKING and not node.held:
                if node.started is not None:
                    node.elapsed += now - node.started
                node.started, node.held = None, True
            elif not held and node.held:
                node.held = False
                node.started = now if node.status in TICKING else None

    def run_ended(self, run_status: str = "failed") -> None:
        """The run ended: branches still queued will never start (a plain coroutine's placeholder,
        whose stages show on their own, goes); a gate still awaiting input or a stage still running
        ended with it (``killed`` by a kill, else ``cancelled``), and its time stops."""
        word = "killed" if run_status == "killed" else "cancelled"
        for key, node in list(self.nodes.items()):
            if node.status == "queued" and "/~" in key:
                del self.nodes[key]
            elif node.status == "queued":
                node.status = "skipped"
            elif node.status in TICKING or node.status == "paused":
                self.set_status(key, word)

    def settle_groups(self) -> None:
        """A parallel group's status and every group's review-round summary, from its children
        (the engine sends no status for a parallel: its branches are its progress)."""
        under: dict[str | None, list[StageNode]] = {}
        for node in self.nodes.values():
            under.setdefault(self.parent_of(node.key), []).append(node)
        for node in reversed(list(self.nodes.values())):  # inner groups first
            if node.kind not in GROUP_KINDS or node.key not in under:
                continue
            children = under[node.key]
            if node.kind == "parallel":
                node.status = _group_status([c.status for c in children], node.status)
            members = [
                m for c in children for m in ([c, *under.get(c.key, [])] if c.kind == "parallel" else [c])
            ]
            node.summary = group_summary(members) or node.summary

    def set_status(
        self, key: str, status: str, model: str | None = None, error: str | None = None
    ) -> StageNode:
        node = self.nodes.get(key) or self.add(key, _name_from_key(key))
        now = time.monotonic()
        if status in TICKING and node.status not in TICKING:
            node.started, node.held, node.since = now, False, time.time()
        elif node.status in TICKING and status not in TICKING and node.started is not None:
            node.elapsed += now - node.started
            node.started = None
        node.status = status
        if status != "running":
            node.flag = None  # a mark belongs to a running stage
        if model:
            node.model = model
        if error:
            node.error = error
        if status == "failed" and error == KILLED_MESSAGE:
            node.info["ended"] = "killed"
        return node

    def saw_activity(self, key: str, kind: str, event: Any) -> None:
        """A stage's agent event: its last activity is now; a turn's start or end gives its turn."""
        node = self.nodes.get(key)
        if node is None:
            return
        node.last_active = time.time()
        if kind in ("turn_start", "turn_end"):  # the turn in flight, or the last answered
            node.turns = int(getattr(event, "turn", node.turns) or node.turns)

    def set_flag(self, key: str, flag: str | None, detail: str = "", until: float | None = None) -> None:
        """Mark a stage ``stalled`` or ``waiting`` (until a limit resets), or clear its mark (None)."""
        node = self.nodes.get(key)
        if node is not None:
            node.flag, node.flag_detail, node.until = flag, detail, until

    def add_usage(self, key: str, tokens: int, cost: float) -> None:
        """Set a stage's usage so far; every enclosing group (a nested workflow, a parallel group…)
        then shows the sum of its children, as the journal's graph does after a reload."""
        node = self.nodes.get(key)
        if node is None:
            return
        node.tokens, node.cost = tokens, cost
        parent = self.parent_of(key)
        while parent is not None:
            group = self.nodes[parent]
            if group.kind in GROUP_KINDS:
                children = self.children(parent)
                group.tokens = sum(c.tokens for c in children)
                group.cost = sum(c.cost for c in children)
            parent = self.parent_of(parent)

    def parent_of(self, key: str) -> str | None:
        """The nearest enclosing scope that is itself a node (``a/1:x`` encloses ``a/1:x/0:y``), or
        the parallel group a branch given as another ``ctx`` call belongs to."""
        owner = self.owners.get(key)
        if owner is not None and owner in self.nodes:
            return owner
        cut = key.rfind("/")
        while cut > 0:
            prefix = key[:cut]
            if prefix in self.nodes:
                return prefix
            cut = prefix.rfind("/")
        return None

    def children(self, key: str | None) -> list[StageNode]:
        return [n for n in self.nodes.values() if self.parent_of(n.key) == key]

    def parallel_keys(self) -> set[str]:
        """Stages that ran side by side: siblings that started after the same stages."""
        groups: dict[tuple[str | None, tuple[str, ...]], list[str]] = {}
        for node in self.nodes.values():
            groups.setdefault((self.parent_of(node.key), tuple(node.parents)), []).append(node.key)
        return {key for keys in groups.values() if len(keys) > 1 for key in keys}

    def counts(self) -> dict[str, int]:
        found: dict[str, int] = {}
        for node in self.nodes.values():
            found[node.status] = found.get(node.status, 0) + 1
        return found


def _group_status(statuses: list[str], current: str) -> str:
    """A parallel group's status: running while a branch runs or waits, failed if one failed,
    completed when all completed (the join), else what it was."""
    if any(s in TICKING or s == "paused" for s in statuses):
        return "running"
    if "failed" in statuses:
        return "failed"
    if all(s in ("completed", "skipped") for s in statuses):
        return "completed"
    stopped = [s for s in statuses if s not in ("completed", "skipped", "queued", "pending")]
    if stopped:  # e.g. budget_exceeded: the branches stopped, and the group with them
        return stopped[0]
    return "running" if "queued" in statuses else current


def _depth(key: str, parents: dict[str, str | None]) -> int:
    """How deep ``key``'s node sits under the tree's root (its top-level stages: 1)."""
    depth, parent = 1, parents.get(key)
    while parent is not None and depth < 50:
        depth, parent = depth + 1, parents.get(parent)
    return depth


def _name_from_key(key: str) -> str:
    last = key.rsplit("/", 1)[-1]
    return last.rsplit(":", 1)[-1]


def model_from_graph(run_id: str, graph: Any) -> GraphModel:
    """Build a :class:`GraphModel` from the engine's ``Graph`` (nodes with key, name, kind,
    status, model, elapsed, tokens, cost, children for nested workflows)."""
    model = GraphModel(run_id)

    def visit(nodes: Any, parent: str | None = None) -> None:
        for item in nodes or []:
            node = model.add(
                item.key,
                getattr(item, "name", ""),
                getattr(item, "kind", "task"),
                list(getattr(item, "parents", []) or []),
            )
            if parent is not None and model.parent_of(item.key) != parent:
                model.owners[item.key] = parent
            node.info = dict(getattr(item, "info", None) or {})
            node.summary = getattr(item, "summary", None)
            node.status = getattr(item, "status", "pending") or "pending"
            node.model = getattr(item, "model", None)
            node.elapsed = float(getattr(item, "elapsed", 0.0) or 0.0)
            node.tokens = int(getattr(item, "tokens", 0) or 0)
            node.cost = float(getattr(item, "cost", 0.0) or 0.0)
            node.error = getattr(item, "error", None)
            node.grants = list(getattr(item, "grants", None) or [])
            node.turns = int(getattr(item, "turns", 0) or 0)
            node.last_active = getattr(item, "last_active", None)
            node.flag = getattr(item, "flag", None)
            node.flag_detail = getattr(item, "flag_detail", "") or ""
            node.until = getattr(item, "until", None)
            node.since = getattr(item, "started", None)
            if node.status in TICKING:
                node.started = time.monotonic()
            visit(getattr(item, "children", None), item.key)

    nodes = getattr(graph, "nodes", graph)
    visit(nodes.values() if isinstance(nodes, dict) else nodes)
    return model


class GraphPane(Vertical):
    """The live stage tree of one run; Enter on a stage attaches to it."""

    @dataclass
    class Attach(Message):
        run_id: str
        key: str

    @dataclass
    class FocusPrompt(Message):
        """Enter on a human gate: it has no transcript; its prompt card takes the focus."""

        run_id: str
        key: str

    @dataclass
    class ShowRound(Message):
        """Enter on a group with a check and review round: the round as a table."""

        run_id: str
        key: str

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model = GraphModel()
        self._dirty = False
        self._tree_nodes: dict[str, TreeNode[str]] = {}
        self._labels: dict[str, Text] = {}  # last label drawn per node: unchanged ones are not redrawn

    def compose(self) -> ComposeResult:
        yield Static("Stages", classes="pane-title", id="graph-title")
        yield Static("", id="graph-status")
        tree: Tree[str] = Tree("no run selected", id="graph-tree")
        tree.show_root = True
        tree.auto_expand = True
        tree.guide_depth = GUIDE  # the narrowest guides that still read as a tree: labels fit 100 columns
        yield tree

    @property
    def tree_widget(self) -> Tree[str]:
        return self.query_one("#graph-tree", Tree)

    def on_mount(self) -> None:
        self.set_interval(FLUSH_S, self._flush)

    def show(self, model: GraphModel, title: str = "") -> None:
        """Replace the shown run."""
        self.model = model
        self._tree_nodes.clear()
        self._labels.clear()
        self.tree_widget.clear()
        self.set_title(title or (model.run_id or ""))
        self._dirty = True
        self._flush()

    def set_title(self, title: str, status: Text | str = "") -> None:
        """The tree's root label (the run) and, wrapped under the pane's title, how it ended."""
        self.tree_widget.root.set_label(Text(title))
        line = self.query_one("#graph-status", Static)
        line.update(status)
        line.display = bool(str(status))

    def mark_dirty(self) -> None:
        self._dirty = True

    def _flush(self) -> None:
        """Redraw changed labels and add new nodes (at most every ``FLUSH_S``)."""
        ticking = any(n.status in TICKING and not n.held for n in self.model.nodes.values())
        if not (self._dirty or ticking):
            return
        self._dirty = False
        now = time.monotonic()
        for gone in [key for key in self._tree_nodes if key not in self.model.nodes]:
            self._tree_nodes.pop(gone).remove()  # a placeholder the model dropped
            self._labels.pop(gone, None)
        self.model.settle_groups()
        parallel = self.model.parallel_keys()
        parents = {key: self.model.parent_of(key) for key in self.model.nodes}
        has_children = {parent for parent in parents.values() if parent is not None}
        room = self.tree_widget.scrollable_content_region.width
        for node in self.model.nodes.values():
            parent_node = self.model.nodes.get(parents[node.key] or "")
            side_by_side = node.key in parallel and (parent_node is None or parent_node.kind != "parallel")
            # a fan-out of reviewers inside a turn: the turn's summary already says it
            inner_round = node.kind == "parallel" and parent_node is not None and bool(parent_node.summary)
            expander = 2 if node.kind in GROUP_KINDS or node.key in has_children else 0
            width = room - GUIDE * _depth(node.key, parents) - expander - 1 if room else None
            label = node_label(
                node,
                now,
                parallel=side_by_side,
                joins=len(node.parents),
                summary=not inner_round,
                width=width,
            )
            tree_node = self._tree_nodes.get(node.key)
            if tree_node is None:
                parent_key = parents[node.key]
                parent = self._tree_nodes.get(parent_key) if parent_key else self.tree_widget.root
                if parent is None:
                    parent = self.tree_widget.root
                tree_node = parent.add(label, data=node.key, expand=True)
                self._tree_nodes[node.key] = tree_node
                if parent is not self.tree_widget.root or not parent.is_expanded:
                    parent.expand()
            elif self._labels.get(node.key) != label:
                tree_node.set_label(label)
            self._labels[node.key] = label
            if node.kind not in GROUP_KINDS and node.key not in has_children:
                tree_node.allow_expand = False
        if not self.tree_widget.root.is_expanded:
            self.tree_widget.root.expand()

    def on_resize(self) -> None:
        if self.model.nodes:
            self._dirty = True  # labels are fitted to the width

    def on_tree_node_selected(self, event: Tree.NodeSelected[str]) -> None:
        event.stop()
        node = event.node
        data = node.data
        if data is None or self.model.run_id is None:
            return
        stage = self.model.nodes[data]
        kind = stage.kind
        if kind == "prompt":
            self.post_message(self.FocusPrompt(self.model.run_id, data))
        elif stage.status == "queued":
            return  # not started: nothing to attach to yet
        elif kind in GROUP_KINDS and stage.summary:
            self.post_message(self.ShowRound(self.model.run_id, data))
        elif kind not in GROUP_KINDS or not node.children:
            self.post_message(self.Attach(self.model.run_id, data))
