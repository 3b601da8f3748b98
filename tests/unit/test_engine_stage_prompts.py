"""Which prompt of a long-lived stage a transcript already holds (resume decides from it)."""

from __future__ import annotations

import json
from typing import Any

from loopcraft.engine.runtime import read_transcript, sent_prompt_state
from loopcraft.engine.tasks import correction_prompt


def prompt(text: str) -> dict[str, Any]:
    return {"type": "message", "source": "prompt", "message": {"role": "user", "content": text}}


def answer(text: str) -> dict[str, Any]:
    return {"type": "message", "message": {"role": "assistant", "content": text}}


HEADER = {"type": "header", "stage": "s"}


def test_a_prompt_not_in_the_transcript_is_sent() -> None:
    entries = [HEADER, prompt("one"), answer("a")]
    assert sent_prompt_state(entries, 1) == (False, 0)
    assert sent_prompt_state([], 0) == (False, 0)


def test_a_prompt_in_the_transcript_without_its_step_is_resumed() -> None:
    entries = [HEADER, prompt("one"), answer("a"), prompt("two")]
    assert sent_prompt_state(entries, 1) == (True, 0)
    assert sent_prompt_state(entries[:2], 0) == (True, 0)


def test_corrections_after_the_resumed_prompt_are_counted_not_taken_for_prompts() -> None:
    fix = prompt(correction_prompt("x: field required"))
    entries = [HEADER, prompt("one"), answer("{}"), fix, answer("{}"), fix, answer("ok"), prompt("two")]
    assert sent_prompt_state(entries, 1) == (True, 0)
    assert sent_prompt_state(entries[:-1], 1) == (False, 0)
    assert sent_prompt_state(entries[:-1], 0) == (True, 2)
    assert sent_prompt_state([*entries, answer("{}"), fix], 1) == (True, 1)


def test_prompts_before_a_fork_belong_to_the_source_session() -> None:
    fork = {"type": "status", "status": "forked", "reason": "forked from x.jsonl"}
    entries = [HEADER, prompt("theirs"), answer("t"), fork]
    assert sent_prompt_state(entries, 0) == (False, 0)
    assert sent_prompt_state([*entries, prompt("mine")], 0) == (True, 0)


def test_read_transcript_stops_at_a_torn_line(tmp_path: Any) -> None:
    path = tmp_path / "s.jsonl"
    assert read_transcript(path) == []
    path.write_text('{"type": "header"}\n{"type": "message", "source": "prompt", "mess')
    assert read_transcript(path) == [{"type": "header"}]


def test_read_transcript_keeps_unicode_line_separators_inside_strings(tmp_path: Any) -> None:
    path = tmp_path / "s.jsonl"
    entries = [HEADER, prompt("one\u2028two\u2029three\x85four"), answer("a"), prompt("next")]
    path.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in entries), encoding="utf-8")
    assert read_transcript(path) == entries
    assert sent_prompt_state(read_transcript(path), 1) == (True, 0)
