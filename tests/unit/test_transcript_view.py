"""``loopcraft show --stage``'s readable transcript: arguments summarised, results trimmed, the
failure shown, bookkeeping left out."""

from __future__ import annotations

from loopcraft.transcript_view import RESULT_LINES, summarise_args, transcript_lines, trim_result


def test_arguments_are_summarised_on_one_line() -> None:
    assert summarise_args('{"path": "a.py", "limit": 20}') == "path='a.py', limit=20"
    long = summarise_args({"content": "x" * 500 + "\nmore"})
    assert long.startswith("content='xxx") and long.endswith("…") and len(long) < 100 and "\n" not in long
    assert summarise_args("not json {") == "not json {"


def test_a_long_result_is_trimmed_and_says_how_much_was_left_out() -> None:
    lines = trim_result("\n".join(f"line {i}" for i in range(50)))
    assert lines[:2] == ["line 0", "line 1"] and len(lines) == RESULT_LINES + 1
    assert lines[-1] == f"… ({50 - RESULT_LINES} more lines)"


def test_a_failed_tool_and_the_stages_status_are_shown_usage_is_not() -> None:
    entries = [
        {"type": "header", "id": "s"},
        {"type": "message", "message": {"role": "user", "content": "fix it"}, "source": "prompt"},
        {"type": "usage", "usage": {"input_tokens": 5}},
        {
            "type": "message",
            "message": {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"function": {"name": "bash", "arguments": '{"command": "make test"}'}}],
            },
        },
        {"type": "tool_result", "name": "bash", "output": "exit 2\nFAILED", "is_error": True},
        {"type": "mail", "kind": "steer", "text": "mind the tests"},
        {"type": "status", "status": "failed", "reason": "turn limit"},
    ]
    assert transcript_lines(entries) == [
        "[user] fix it",
        "  → bash(command='make test')",
        "  ← bash ✗: exit 2",
        "      FAILED",
        "[steer] mind the tests",
        "[status] failed: turn limit",
    ]
    assert transcript_lines([]) == ["(no transcript yet)"]
