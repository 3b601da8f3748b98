"""Property-based bad input (issue 20): generated budgets, config values, workflow inputs and
command lines never produce a traceback, exit with a documented code, print at most two lines on
stderr, and leave the journal byte-identical when refused.

Most examples run in this process (``loopcraft.cli.main`` with patched ``sys.argv``) to stay fast;
a few generated cases also go through a real subprocess."""

from __future__ import annotations

import contextlib
import io
import math
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import make_git_repo
from tests.integration.test_cli_bad_input import TYPED
from tests.integration.test_cli_basics import lc

README = Path(__file__).resolve().parents[2] / "README.md"


def documented_codes() -> set[int]:
    return {int(code) for code in re.findall(r"^\| (\d+) \|", README.read_text(), flags=re.MULTILINE)}


CODES = documented_codes()


def _non_finite(text: str) -> bool:
    try:
        return not math.isfinite(float(text))
    except ValueError:
        return False


FAST = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
    derandomize=True,  # the same examples here and in CI: a failure is reproducible
)


@contextlib.contextmanager
def inside(folder: Path) -> Iterator[None]:
    old = Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(old)


def invoke(repo: Path, *args: str) -> tuple[int, str]:
    """``loopcraft ARGS`` in this process, in ``repo``: (exit code, stderr)."""
    from loopcraft.cli import main

    err, out = io.StringIO(), io.StringIO()
    code: int = 0
    argv = sys.argv
    sys.argv = ["loopcraft", *args]
    try:
        with inside(repo), contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            try:
                main()
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv = argv
    return code, err.getvalue()


def check(code: int, stderr: str) -> None:
    assert "Traceback" not in stderr and "unexpected error" not in stderr, stderr
    assert code in CODES, (code, stderr)
    assert len(stderr.strip().splitlines()) <= 2, stderr


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = make_git_repo(tmp_path_factory.mktemp("props") / "repo")
    (folder / ".loopcraft" / "workflows").mkdir(parents=True)
    (folder / ".loopcraft" / "workflows" / "typed.py").write_text(TYPED)
    old = os.environ.get("LOOPCRAFT_TRUST")
    os.environ["LOOPCRAFT_TRUST"] = "1"
    code, err = invoke(folder, "run", "typed")
    assert code == 0, err
    yield folder
    if old is None:
        os.environ.pop("LOOPCRAFT_TRUST", None)
    else:
        os.environ["LOOPCRAFT_TRUST"] = old


def journal(repo: Path) -> bytes:
    return (repo / ".loopcraft" / "loopcraft.db").read_bytes()


NUMBER_TEXT = st.one_of(
    st.sampled_from(["inf", "-inf", "nan", "NaN", "1e400", "-0", "0", "0.5", "1_0", "0x10", "", " ", "1e3"]),
    st.integers(min_value=-(10**40), max_value=10**40).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(max_size=8),
)
BUDGET = st.lists(
    st.tuples(st.sampled_from(["tokens", "dollars", "seconds", "stages", "cats", ""]), NUMBER_TEXT),
    min_size=1,
    max_size=3,
).map(lambda pairs: ",".join(f"{k}={v}" for k, v in pairs))


@FAST
@given(budget=BUDGET)
def test_generated_budgets(repo: Path, budget: str) -> None:
    before = journal(repo)
    code, err = invoke(repo, "run", "typed", "--budget", budget)
    check(code, err)
    if code == 2:
        assert journal(repo) == before


@FAST
@given(value=NUMBER_TEXT)
def test_generated_workflow_inputs(repo: Path, value: str) -> None:
    before = journal(repo)
    code, err = invoke(repo, "run", "typed", "-i", f"ratio={value}")
    check(code, err)
    if _non_finite(value):
        assert code == 2, value
    if code == 2:
        assert journal(repo) == before


TOML_NUMBER = st.one_of(
    st.sampled_from(["inf", "-inf", "nan", "1e400", "true", "'5'", "0", "-1", "0.5", "[]", "{}"]),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
)
CONFIG_KEY = st.sampled_from(
    [
        ("retry", "max_delay"),
        ("retry", "base_delay"),
        ("retry", "request_timeout"),
        ("retry", "max_retries"),
        ("agent", "bash_timeout"),
        ("agent", "wall_time"),
        ("agent", "max_turns"),
        ("agent", "max_tokens"),
        ("agent", "max_dollars"),
        ("engine", "lease_seconds"),
        ("engine", "heartbeat_seconds"),
        ("engine", "poll_seconds"),
    ]
)


@FAST
@given(key=CONFIG_KEY, value=TOML_NUMBER)
def test_generated_config_values(repo: Path, key: tuple[str, str], value: str) -> None:
    config = repo / ".loopcraft" / "config.toml"
    config.write_text(f"[{key[0]}]\n{key[1]} = {value}\n")
    try:
        before = journal(repo)
        code, err = invoke(repo, "runs", "--limit", "1")
        check(code, err)
        if value in ("inf", "-inf", "nan", "1e400", "true", "[]", "{}"):
            assert code == 2, (key, value)
        if code == 2:  # refused: named, and nothing written
            assert str(config) in err and ".".join(key) in err, err
            assert journal(repo) == before
    finally:
        config.unlink()


COMMANDS = ["runs", "show", "kill", "pause", "answer", "resume", "events", "prompts", "bogus", "mcp", "--x"]


@FAST
@given(
    args=st.lists(
        st.one_of(st.sampled_from(["--limit", "-n", "--json", "--budget", "--stage", "-x"]), NUMBER_TEXT),
        max_size=3,
    ),
    command=st.sampled_from(COMMANDS),
)
def test_generated_command_lines(repo: Path, command: str, args: list[str]) -> None:
    before = journal(repo)
    code, err = invoke(repo, command, *args)
    check(code, err)
    if code == 2:
        assert journal(repo) == before


@settings(
    max_examples=3,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    database=None,
    derandomize=True,
)
@given(budget=BUDGET.filter(lambda b: "inf" in b or "nan" in b or re.search(r"=-?0(,|$)", b) is not None))
def test_generated_budgets_in_a_real_process(repo: Path, budget: str) -> None:
    before = journal(repo)
    out = lc("run", "typed", "--budget", budget, cwd=repo)
    check(out.returncode, out.stderr)
    assert out.returncode == 2 and journal(repo) == before
