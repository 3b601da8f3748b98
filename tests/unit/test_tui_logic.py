"""Pure TUI logic: slash-command parsing and completion, input history, themes, status
line, and the stage-graph model."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from loopcraft.errors import ConfigError
from loopcraft.tui import commands
from loopcraft.tui.chat import Cut, find_cut
from loopcraft.tui.commands import CommandError, complete, parse, parse_inputs
from loopcraft.tui.gcpolicy import IdleCollector
from loopcraft.tui.panes.graph import GraphModel, node_label
from loopcraft.tui.panes.transcript import transcript_blocks
from loopcraft.tui.prompt_input import History
from loopcraft.tui.statusbar import StatusInfo, format_tokens, hint_text, render_status
from loopcraft.tui.themes import load_themes, parse_theme, remember_theme


def test_parse_simple_and_grouped_commands() -> None:
    assert parse("/help").name == "help"
    cmd = parse("/workflow run demo topic='two words' n=3")
    assert cmd.name == "workflow run"
    assert cmd.args == ["demo", "topic=two words", "n=3"]
    assert parse_inputs(cmd.args[1:], "u") == {"topic": "two words", "n": "3"}
    resumed = parse("/workflow resume abc --message 'go on'")
    assert resumed.args == ["abc"] and resumed.options == {"message": "go on"}
    assert parse("/workflow resume --message=now").options == {"message": "now"}
    assert parse("/permissions plan").args == ["plan"]


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ("/bogus", "unknown command /bogus"),
        ("/workflow", "needs a subcommand"),
        ("/workflow fly", "unknown subcommand /workflow fly"),
        ("/workflow run", "usage: /workflow run NAME"),
        ("/workflow attach a b c", "usage: /workflow attach [RUN] [STAGE]"),
        ("/permissions maybe", "usage: /permissions [default|accept-edits|plan|yolo]"),
        ("/new now", "usage: /new"),
        ("/workflow resume --speed 3", "unknown option --speed"),
        ("/workflow resume --message", "needs a value"),
        ("/model 'unterminated", "cannot parse"),
        ("hello", "commands start with '/'"),
    ],
)
def test_bad_commands_name_the_problem_and_usage(line: str, needle: str) -> None:
    with pytest.raises(CommandError) as err:
        parse(line)
    assert needle in str(err.value)


def test_bad_inputs_are_rejected_with_usage() -> None:
    with pytest.raises(CommandError, match="expected key=value, got 'oops'"):
        parse_inputs(["oops"], "/workflow run NAME [key=value ...]")


def test_every_command_has_a_handler_name_and_help() -> None:
    from loopcraft.tui.app import LoopcraftApp

    for spec in commands.COMMANDS:
        assert hasattr(LoopcraftApp, "cmd_" + spec.name.replace(" ", "_")), spec.name
    text = commands.help_text()
    assert "/workflow attach [RUN] [STAGE]" in text and "/theme [NAME]" in text
    assert "/workflow run" in commands.help_text("workflow") and "/theme" not in commands.help_text(
        "workflow"
    )


def test_completion_of_commands_subcommands_and_values() -> None:
    assert complete("/w") == ["/workflow"]
    assert sorted(complete("/workflow a")) == ["/workflow answer", "/workflow attach"]
    assert complete("/per") == ["/permissions"]
    assert complete("/permissions y") == ["/permissions yolo"]
    dynamic = {
        "workflow": ["demo", "hello"],
        "run": ["r-123"],
        "theme": ["loopcraft-dark", "loopcraft-light"],
    }
    assert complete("/workflow run d", dynamic) == ["/workflow run demo"]
    assert complete("/workflow attach r", dynamic) == ["/workflow attach r-123"]
    inputs = {"inputs:demo": ["topic", "depth"]}
    assert complete("/workflow run demo to", inputs) == ["/workflow run demo topic="]
    assert complete("/workflow run demo topic=x ", inputs) == ["/workflow run demo topic=x depth="]
    assert complete("/theme loopcraft-l", dynamic) == ["/theme loopcraft-light"]
    assert complete("hello") == []


def test_history_browses_and_restores_the_draft() -> None:
    history = History()
    for line in ("one", "two", "two", "three"):
        history.add(line)
    assert history.entries == ["one", "two", "three"]
    assert history.previous("draft") == "three"
    assert history.previous("three") == "two"
    assert history.previous("two") == "one"
    assert history.previous("one") == "one"
    assert history.next("one") == "two"
    assert history.next("two") == "three"
    assert history.next("three") == "draft"


def test_builtin_themes_load_with_dark_light_and_high_contrast() -> None:
    found = load_themes()
    assert {"loopcraft-dark", "loopcraft-light", "loopcraft-high-contrast"} <= set(found.themes)
    assert found.themes["loopcraft-light"].dark is False
    assert found.errors == []


def test_broken_theme_file_is_reported_not_fatal(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text("name = 'x'\n")
    (tmp_path / "typo.toml").write_text("name = 'y'\nprimary = '#fff'\ncolour = 'red'\n")
    (tmp_path / "good.toml").write_text("name = 'mine'\nprimary = '#123456'\ndark = false\n")
    found = load_themes([tmp_path])
    assert set(found.themes) == {"mine"}
    problems = {path.name: error for path, error in found.errors}
    assert "missing required key 'primary'" in problems["bad.toml"]
    assert "unknown keys: colour" in problems["typo.toml"]
    assert parse_theme(tmp_path / "good.toml").primary == "#123456"


def test_remember_theme_keeps_other_keys(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('# mine\nmodel = "openai/gpt-5.5"\ntheme = "old"\n\n[agent]\ntheme_like = 1\n')
    remember_theme("loopcraft-light", path)
    text = path.read_text()
    assert 'theme = "loopcraft-light"' in text and 'theme = "old"' not in text
    assert '# mine\nmodel = "openai/gpt-5.5"' in text and "theme_like = 1" in text
    fresh = tmp_path / "new" / "config.toml"
    remember_theme("loopcraft-dark", fresh)
    assert fresh.read_text() == 'theme = "loopcraft-dark"\n'


def test_remember_theme_keeps_inline_comments_and_layout(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        'theme = "old"  # my pick\nmodel = "openai/gpt-5.5"   # spaced\n\n[agent]\nmax_turns = 3\n'
    )
    remember_theme("loopcraft-light", path)
    assert path.read_text() == (
        'theme = "loopcraft-light"  # my pick\nmodel = "openai/gpt-5.5"   # spaced\n\n[agent]\nmax_turns = 3\n'
    )


def test_remember_theme_escapes_a_quote_and_adds_before_tables(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("# top\n[agent]\nmax_turns = 3  # keep\n")
    remember_theme('odd"name\\', path)
    parsed = tomllib.loads(path.read_text())
    assert parsed == {"theme": 'odd"name\\', "agent": {"max_turns": 3}}
    assert "# top" in path.read_text() and "max_turns = 3  # keep" in path.read_text()


def test_remember_theme_refuses_a_broken_config(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("theme = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        remember_theme("x", path)
    assert path.read_text() == "theme = \n"


def test_status_line_shows_every_field() -> None:
    text = render_status(
        StatusInfo(
            model="scripted/demo",
            tokens=12_345,
            cost=0.5,
            context_pct=42,
            active_runs=2,
            pending_prompts=1,
            state="running",
            queued=1,
        )
    ).plain
    for part in (
        "scripted/demo",
        "running",
        "+1 queued",
        "12.3k tok",
        "$0.5000",
        "ctx 42%",
        "active 2",
        "prompts 1",
    ):
        assert part in text
    assert "runs 2" not in text  # it counts active runs only, and says so
    assert format_tokens(999) == "999" and format_tokens(2_500_000) == "2.5M"


def test_graph_model_nests_parallel_branches_and_child_workflows() -> None:
    graph = GraphModel("r1")
    graph.add("root/0:task:scout", "scout")
    graph.add("root/1:parallel", "reviews", "parallel")
    graph.add("root/1:parallel/0:task:a", "a")
    graph.add("root/1:parallel/1:task:b", "b")
    graph.add("root/2:workflow:child", "child", "workflow")
    graph.add("root/2:workflow:child/0:task:inner", "inner")
    assert [n.name for n in graph.children(None)] == ["scout", "reviews", "child"]
    assert [n.name for n in graph.children("root/1:parallel")] == ["a", "b"]
    assert graph.parent_of("root/2:workflow:child/0:task:inner") == "root/2:workflow:child"
    graph.set_status("root/0:task:scout", "running", model="scripted/demo")
    graph.set_status("root/0:task:scout", "completed")
    graph.add_usage("root/0:task:scout", 1500, 0.01)
    node = graph.nodes["root/0:task:scout"]
    assert node.status == "completed" and node.started is None
    label = node_label(node).plain
    assert label.startswith("✓ scout") and "scripted/demo" in label and "1.5k tok" in label
    assert graph.counts() == {"completed": 1, "pending": 5}
    # a status for a stage never announced still shows up
    graph.set_status("root/3:task:late", "failed", error="boom")
    assert "boom" in node_label(graph.nodes["root/3:task:late"]).plain


def test_a_waiting_prompt_counts_its_elapsed_time() -> None:
    graph = GraphModel("r1")
    graph.add("root/0:prompt:confirm", "confirm", "prompt")
    graph.set_status("root/0:prompt:confirm", "awaiting_input")
    node = graph.nodes["root/0:prompt:confirm"]
    assert node.started is not None
    node.started -= 6.4  # it has waited 6.4 s
    assert "6s" in node_label(node).plain  # whole seconds while it ticks
    graph.set_status("root/0:prompt:confirm", "completed")
    assert 6.3 < node.elapsed < 7.5 and "6." in node_label(node).plain


def test_find_cut_prefers_block_ends_and_keeps_code_fences_valid() -> None:
    text = "a" * 30 + "\n\n" + "b" * 30 + "\n\ntail"
    cut = find_cut(text, 20)
    assert cut == Cut(64)  # after the last complete block, not the first
    assert find_cut("short\n\nmore", 20) is None
    code = "intro\n\n```python\n" + "x = 1\n" * 20 + "y"
    fenced = find_cut(code, 40)
    assert fenced is not None and fenced.close == "```\n" and fenced.reopen == "```python\n"
    first, rest = code[: fenced.at] + fenced.close, fenced.reopen + code[fenced.at :]
    assert first.count("```") == 2 and rest.startswith("```python\n")
    assert find_cut("x" * 100, 20) is None  # one unbroken word: nowhere to cut
    spaced = find_cut("word " * 40, 50)
    assert spaced is not None and ("word " * 40)[spaced.at - 1] == " "


def test_transcript_blocks_pair_tool_calls_with_results() -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "bash", "arguments": '{"command": "ls"}'}}
    entries = [
        {"type": "message", "message": {"role": "user", "content": "go"}},
        {"type": "message", "message": {"role": "assistant", "content": "ok", "tool_calls": [call]}},
        {"type": "tool_result", "call_id": "c1", "output": "a.txt", "is_error": True},
        {
            "type": "message",
            "message": {"role": "assistant", "content": "", "tool_calls": [{**call, "id": "c2"}]},
        },
        {"type": "status", "status": "completed", "reason": ""},
    ]
    blocks = transcript_blocks(entries)
    assert [b.kind for b in blocks] == ["user", "assistant", "tool", "tool", "notice"]
    assert blocks[2].output == "a.txt" and blocks[2].is_error and blocks[2].args == {"command": "ls"}
    assert blocks[3].output is None  # no result yet: it may still arrive live


def test_help_lists_keys_and_the_hint_line_follows_attachment() -> None:
    from loopcraft.tui.keys import keys_text

    keys = keys_text()
    text = commands.help_text(keys=keys)
    assert "keys (F1):" in text and "Ctrl+B" in text and "F2" in text and "Alt+Enter" in text
    assert commands.help_text("keys", keys).startswith("keys:")
    assert "/workflow" not in commands.help_text("keys", keys)
    assert complete("/help k", {}) == ["/help keys"]
    assert "steer stage" in hint_text(attached=True).plain and "Esc interrupt" in hint_text().plain


def test_idle_collector_waits_for_a_quiet_keyboard() -> None:
    collector = IdleCollector(idle_s=1.0, min_interval_s=10.0, max_interval_s=60.0)
    now = collector.last_full + 20
    collector.last_input = now - 0.2
    assert not collector.due(now)  # typing: wait
    collector.last_input = now - 2
    assert collector.due(now)  # quiet for 2 s and 20 s since the last one
    collector.last_input = now
    assert collector.due(collector.last_full + 61)  # never longer than max_interval_s
    assert not collector.tick()  # not installed: it leaves the process's GC alone
