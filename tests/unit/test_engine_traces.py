"""Trace review's checks, pure: rendering a transcript line, and ``check_findings`` failing closed on
a citation of a run, stage, line or quote that does not hold (or too few runs)."""

from __future__ import annotations

import json
from pathlib import Path

from loopcraft.engine.traces import (
    Evidence,
    TraceFinding,
    TraceFindings,
    TracePack,
    TraceRun,
    TraceStage,
    check_findings,
    render_entry,
)


def pack(tmp_path: Path) -> TracePack:
    transcript = tmp_path / "writer.txt"
    transcript.write_text("header: {}\nuser (prompt): Summarize x\nassistant: no marker here\n")
    stage = TraceStage(stage="writer", key="root/0:task:writer", kind="task", status="completed")
    stage.transcript, stage.lines = str(transcript), 3
    runs = [TraceRun(id=rid, status="failed", picked="failed", stages=[stage]) for rid in ("r1", "r2")]
    return TracePack(workflow="wf", folder=str(tmp_path), index_file="i", stats_file="s", runs=runs)


def finding(title: str, *evidence: Evidence) -> TraceFinding:
    return TraceFinding(title=title, proposal="fix it", evidence=list(evidence))


def test_check_findings_keeps_only_findings_whose_every_citation_holds(tmp_path: Path) -> None:
    good = Evidence(run="r1", stage="writer", line=3, quote="NO   marker")  # case and spaces don't matter
    answer = TraceFindings(
        findings=[
            finding("kept", good, Evidence(run="r2", stage="writer", line=2)),
            finding("ghost run", good, Evidence(run="r9", stage="writer", line=1)),
            finding("ghost stage", Evidence(run="r1", stage="reviewer", line=1)),
            finding("past the end", Evidence(run="r1", stage="writer", line=4)),
            finding("misquoted", Evidence(run="r1", stage="writer", line=2, quote="marker")),
            finding("no evidence"),
        ]
    )
    kept, dropped = check_findings(answer, pack(tmp_path))
    assert [f.title for f in kept] == ["kept"]
    reasons = {d["title"]: d["reason"] for d in dropped}
    assert reasons == {
        "ghost run": "run 'r9' was not reviewed (or does not exist)",
        "ghost stage": "run r1 has no stage 'reviewer'",
        "past the end": "stage 'writer' of run r1 has no line 4 (it has 3)",
        "misquoted": "line 2 of stage 'writer' of run r1 does not say 'marker'",
        "no evidence": "it cites no evidence",
    }
    kept, dropped = check_findings(
        TraceFindings(findings=[finding("once", good)]), pack(tmp_path), min_runs=2
    )
    assert not kept and dropped[0]["reason"] == "it shows in 1 run(s), fewer than 2"


def test_render_entry_puts_one_transcript_line_on_one_line() -> None:
    call = {"function": {"name": "read", "arguments": '{"path": "a.md"}'}}
    message = {"role": "assistant", "content": "Let me\nlook.", "tool_calls": [call]}
    failed = [{"model": "m", "error_class": "rate_limit"}]
    line = render_entry(json.dumps({"type": "message", "message": message, "failed_attempts": failed}))
    assert line == 'assistant: Let me look. → read({"path": "a.md"}) failed attempts: m rate_limit'
    assert render_entry('{"type": "status", "status": "failed"}') == 'status: {"status": "failed"}'
    assert render_entry("torn {") == "torn {"
    assert len(render_entry(json.dumps({"type": "x", "v": "y" * 5000}))) == 1500
