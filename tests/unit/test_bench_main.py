"""``python -m bench``'s arguments: ``--help`` lists the benches, an unknown name is refused,
neither runs a bench."""

from __future__ import annotations

import pytest

import bench.__main__ as bench_main


def no_bench(*_args: object) -> None:
    raise AssertionError("a bench ran")


def test_help_lists_the_benches_and_runs_none(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bench_main.importlib, "import_module", no_bench)
    for argv in (["--help"], ["-h"], ["engine", "--help"]):
        assert bench_main.main(argv) == 0
        out = capsys.readouterr().out
        assert out.startswith("usage: python -m bench") and "engine" in out and "tui" in out


def test_unknown_bench_is_one_line_exit_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bench_main.importlib, "import_module", no_bench)
    assert bench_main.main(["engine", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown bench nope" in err and "engine" in err
