"""The runs pane: every run with status, elapsed time and cost; Enter selects one. A run a
trigger started shows the trigger after its workflow's name (``fix ⏰ nightly``)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.coordinate import Coordinate
from textual.message import Message
from textual.widgets import DataTable, Static

from loopcraft.engine.names import short_id
from loopcraft.tui.statusbar import format_elapsed

ACTIVE_STATES = frozenset({"pending", "running", "paused", "awaiting_input"})
STATUS_STYLE = {
    "running": "bold cyan", "awaiting_input": "bold yellow", "paused": "yellow", "completed": "green",
    "failed": "bold red", "crashed": "bold red", "killed": "red", "cancelled": "red",
    "blocked": "yellow", "needs_human": "yellow", "budget_exceeded": "yellow", "damaged": "bold red",
}  # fmt: skip


GAP = " "  # ends each cell: the table's own padding (one cell each side) cost 10 columns
HEADERS = (*(h + GAP for h in ("run", "workflow", "status", "time")), "cost")
NARROW_HEADERS = (HEADERS[0], "name" + GAP, *HEADERS[2:])  # too narrow for the word "workflow"
MIN_NAME = 4  # a workflow's name keeps at least this many cells
TRIGGER_MARK = "⏰"  # before the name of the trigger that started a run
EMPTY_RUNS = "no runs yet — try /workflow run demo (/workflow list shows every workflow)"


def live_elapsed(run: Any, now: float | None = None) -> float:
    """A run's elapsed time, counting up while it is active."""
    if run.status in ACTIVE_STATES and run.status != "paused":
        return max(float(run.elapsed or 0.0), (now or time.time()) - float(run.created))
    return float(run.elapsed or 0.0)


class RunsPane(Vertical):
    """A table of runs (newest first); Enter or a click selects the run for the graph."""

    @dataclass
    class Selected(Message):
        run_id: str

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.runs: dict[str, Any] = {}
        self.selected: str | None = None
        self.sources: dict[str, str] = {}  # run id -> the trigger that started it
        self._drawn_room = 0  # the names' room when the rows were last drawn

    def compose(self) -> ComposeResult:
        yield Static("Runs", classes="pane-title")
        table: DataTable[Any] = DataTable(
            id="runs-table", cursor_type="row", zebra_stripes=False, cell_padding=0
        )
        table.add_columns(*HEADERS)
        yield table
        yield Static(EMPTY_RUNS, id="runs-empty", classes="pane-empty")

    @property
    def table(self) -> DataTable[Any]:
        return self.query_one("#runs-table", DataTable)

    def on_mount(self) -> None:
        self.set_interval(1.0, self._tick)

    def set_runs(self, runs: list[Any]) -> None:
        self.runs = {run.id: run for run in runs}
        self._redraw()

    def update_run(self, run: Any) -> None:
        known = run.id in self.runs
        self.runs[run.id] = run
        if known:
            self._update_row(run, time.time())
        else:
            self._redraw()

    def set_sources(self, sources: dict[str, str]) -> None:
        """Note which trigger started which run (runs started by hand are not in ``sources``)."""
        if any(self.sources.get(run_id) != trigger for run_id, trigger in sources.items()):
            self.sources.update(sources)
            self._redraw()

    def active_count(self) -> int:
        return sum(1 for run in self.runs.values() if run.status in ACTIVE_STATES)

    def _tick(self) -> None:
        now = time.time()
        for run in self.runs.values():
            if run.status in ACTIVE_STATES:
                self._update_row(run, now)

    def _cells(self, run: Any, now: float) -> tuple[Any, ...]:
        """The row of ``run``: its short handle (commands accept it, the full id or a unique prefix).
        One space ends each cell (the table pads none); the workflow's name is shortened to
        :meth:`_name_room`, so a narrow pane keeps the elapsed time and cost."""
        return (
            short_id(run.id) + GAP,
            self._name_cell(run),
            Text(run.status + GAP, style=STATUS_STYLE.get(run.status, "")),
            format_elapsed(live_elapsed(run, now)) + GAP,
            f"${float(run.cost or 0.0):.4f}",
        )

    def _name_cell(self, run: Any) -> str | Text:
        """The workflow's name, then the trigger that started the run (if one did), both fitted to
        :meth:`_name_room` (the name shortened first, down to :data:`MIN_NAME`)."""
        room = self._name_room()
        name = str(run.workflow)
        trigger = self.sources.get(run.id)
        mark = Text(f" {TRIGGER_MARK} {trigger}", style="magenta") if trigger else None
        fit = room if mark is None else max(MIN_NAME, room - mark.cell_len)
        if len(name) > fit:
            name = name[: max(1, fit - 1)] + "…"
        if mark is None:
            return name + GAP
        cell = Text(name) + mark
        cell.truncate(room, overflow="ellipsis")
        return cell + GAP

    def _name_room(self) -> int:
        """Cells left for the workflow's name once the other columns (at their widest) fit."""
        width = self.size.width - 2  # a vertical scrollbar, and the pane's edge
        if width <= 0:
            return 24
        statuses = [len(r.status) for r in self.runs.values()] or [len("status")]
        others = 7 + max(statuses) + len(GAP) + 7 + 7  # handle, status, elapsed (59m59s), cost
        return max(MIN_NAME, width - others - len(GAP))

    def on_resize(self) -> None:
        if self.runs:
            self._redraw()

    def _update_row(self, run: Any, now: float) -> None:
        """Change only the cells that differ (no table rebuild)."""
        table = self.table
        if run.id not in table.rows or self._name_room() != self._drawn_room:
            self._redraw()  # new, or the names' room changed (a longer status): every row again
            return
        row = table.get_row(run.id)
        for column, (old, new) in enumerate(zip(row, self._cells(run, now), strict=True)):
            if old != new:
                table.update_cell_at(Coordinate(table.get_row_index(run.id), column), new, update_width=True)

    def _redraw(self) -> None:
        table = self.table
        cursor_key = self.selected
        self._drawn_room = self._name_room()
        table.clear(columns=True)  # the header's widths follow the rows from the first draw
        table.add_columns(*(HEADERS if self._drawn_room >= len(HEADERS[1]) - 1 else NARROW_HEADERS))
        now = time.time()
        ordered = sorted(self.runs.values(), key=lambda r: r.created, reverse=True)
        for run in ordered:
            table.add_row(*self._cells(run, now), key=run.id)
        self.query_one("#runs-empty", Static).display = not self.runs
        if cursor_key is not None and cursor_key in self.runs:
            table.move_cursor(row=table.get_row_index(cursor_key), animate=False)

    def select(self, run_id: str) -> None:
        self.selected = run_id
        if run_id in self.runs:
            self.table.move_cursor(row=self.table.get_row_index(run_id), animate=False)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if event.row_key.value is not None:
            self.selected = str(event.row_key.value)
            self.post_message(self.Selected(self.selected))
