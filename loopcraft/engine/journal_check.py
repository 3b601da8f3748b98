"""``loopcraft doctor --journal``: check the whole journal file and every stage transcript.

Read-only (the database is opened ``mode=ro``; nothing is created, migrated or repaired):
``PRAGMA integrity_check``, every JSON cell and time of every row decoded as the engine decodes
it (:mod:`loopcraft.engine.journal`), and every line of every transcript under ``.loopcraft/runs``.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from loopcraft.engine.journal import _RUN_COLS, _STEP_COLS, RowCells, _run_row, _step_row
from loopcraft.engine.steps.stage import scan_transcript

_OTHER_JSON = (  # table, key column(s) naming the row, JSON columns
    ("events", "run_id || ' #' || seq", ("payload",)),
    ("mailbox", "run_id || ' mail ' || id", ("payload",)),
    ("prompts", "run_id || ' prompt ' || id", ("options", '"default"', "answer")),
)


@dataclass
class JournalReport:
    """What the check found: counts and one line per problem."""

    path: Path
    runs: int = 0
    steps: int = 0
    transcripts: int = 0
    problems: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        head = (
            f"journal    {self.path}: {self.runs} runs, {self.steps} steps, "
            f"{self.transcripts} transcripts checked"
        )
        if not self.problems:
            return [head, "journal    no damage found"]
        tail = (
            f"journal    {len(self.problems)} problem(s): a damaged run is listed as `damaged` and "
            "cannot be shown or resumed; restore the file from a backup, or remove the run with "
            "`loopcraft rm RUN`"
        )
        return [head, *(f"damaged    {p}" for p in self.problems), tail]


def check_journal(path: Path, runs_dir: Path) -> JournalReport:
    """Check the journal at ``path`` and the transcripts in ``runs_dir`` (``.loopcraft/runs``)."""
    report = JournalReport(path)
    if path.is_file():
        try:
            conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        except sqlite3.Error as exc:
            report.problems.append(f"{path}: cannot be opened ({exc})")
        else:
            try:
                _check_rows(conn, report)
            except sqlite3.Error as exc:
                report.problems.append(f"{path}: {exc}")
            finally:
                conn.close()
    elif path.exists():
        report.problems.append(f"{path} is not a file")
    if runs_dir.is_dir():
        for transcript in sorted(runs_dir.glob("*/stages/*.jsonl")):
            report.transcripts += 1
            scan = scan_transcript(transcript)
            if scan.damaged:
                numbers = ", ".join(map(str, scan.damaged[:10])) + (", …" if len(scan.damaged) > 10 else "")
                report.problems.append(
                    f"transcript {transcript}: {len(scan.damaged)} damaged line(s) (line {numbers})"
                )
    return report


def _check_rows(conn: sqlite3.Connection, report: JournalReport) -> None:
    integrity = [str(r[0]) for r in conn.execute("PRAGMA integrity_check")]
    if integrity != ["ok"]:
        report.problems.extend(f"integrity: {line}" for line in integrity[:20])
    for r in conn.execute(f"SELECT {_RUN_COLS} FROM runs"):
        report.runs += 1
        row = _run_row(r)
        if row.damage:
            report.problems.append(f"run {row.id}: {'; '.join(row.damage)}")
    for r in conn.execute(f"SELECT {_STEP_COLS} FROM steps"):
        report.steps += 1
        step = _step_row(r)
        if step.damage:
            report.problems.append(f"run {step.run_id} step {step.key}: {'; '.join(step.damage)}")
    for table, name, columns in _OTHER_JSON:
        for r in conn.execute(f"SELECT {name}, {', '.join(columns)} FROM {table}"):
            cells = RowCells(table)
            for column, text in zip(columns, r[1:], strict=True):
                cells.json(column.strip('"'), text)
            if cells.damage:
                report.problems.append(f"{table} {r[0]}: {'; '.join(cells.damage)}")
