"""CLI basics as real processes (issue 21): bare ``loopcraft`` without a terminal, the log file (levels,
retries after a 429 from a loopback server, unexpected errors), shell completion, enum choices."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from loopcraft import logs
from loopcraft.config import Config, ModelOptions, RetryConfig
from loopcraft.models.litellm_client import LiteLLMClient
from loopcraft.models.types import CompletionRequest
from tests.fakes import OpenAIServer, openai_server

__all__ = ["openai_server"]  # the fixture, used by name below

KEY = "sk-loopback-secret-for-logs"


def _loopcraft(
    cwd: Path, *args: str, env: dict[str, str] | None = None, code: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``loopcraft ARGS`` (or the python ``code`` before ``cli.main()``) with no terminal."""
    probe = f"import sys\nsys.argv = ['loopcraft', *sys.argv[1:]]\n{code or ''}\nfrom loopcraft import cli\ncli.main()\n"
    return subprocess.run(
        [sys.executable, "-c", probe, *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        text=True,
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )


@pytest.fixture(autouse=True)
def _no_log_setup_left_behind() -> Iterator[None]:
    yield
    logs._teardown()
    logging.getLogger("loopcraft").setLevel(logging.NOTSET)


def test_bare_loopcraft_without_a_terminal_says_so_and_exits_2(git_repo: Path) -> None:
    done = _loopcraft(git_repo)
    assert done.returncode == 2
    assert done.stdout == ""
    (line,) = done.stderr.splitlines()
    assert line.startswith("error: no terminal") and "loopcraft run WORKFLOW" in line
    assert "\x1b" not in done.stderr  # no screen escapes


def test_log_level_choices_and_a_bad_env_value(git_repo: Path) -> None:
    bad_flag = _loopcraft(git_repo, "--log-level", "loud", "runs")
    assert bad_flag.returncode == 2 and "debug" in bad_flag.stderr and len(bad_flag.stderr.splitlines()) == 1
    bad_env = _loopcraft(git_repo, "runs", env={logs.LEVEL_ENV: "loud"})
    assert bad_env.returncode == 2
    assert bad_env.stderr.strip() == (
        f"error: bad log level 'loud' (from {logs.LEVEL_ENV}): use debug, info, warning, error"
    )


def test_doctor_names_the_log_file(git_repo: Path) -> None:
    done = _loopcraft(git_repo, "doctor")
    assert done.returncode == 0, done.stderr
    expected = git_repo / ".loopcraft" / "logs" / "loopcraft.log"
    assert f"log        {expected} " in done.stdout
    assert (expected.parent / ".gitignore").read_text().splitlines()[-1] == "*"


def test_an_unexpected_error_is_one_line_naming_the_log_with_the_traceback(git_repo: Path) -> None:
    boom = "import loopcraft.headless as h\nasync def boom(*a, **k):\n    raise RuntimeError('kaboom')\nh.print_runs = boom"
    done = _loopcraft(git_repo, "runs", code=boom)
    assert done.returncode == 1
    path = git_repo / ".loopcraft" / "logs" / "loopcraft.log"
    assert done.stderr.splitlines() == [
        f"error: unexpected error: RuntimeError: kaboom; the traceback is in {path} (please report it)"
    ]
    text = path.read_text()
    assert "ERROR loopcraft.unexpected: unexpected error" in text and "Traceback" in text and "kaboom" in text


def test_verbose_echoes_the_log_to_stderr_on_a_headless_command(git_repo: Path) -> None:
    code = "import logging\nimport loopcraft.headless as h\nold = h.print_runs\nasync def noisy(*a, **k):\n    logging.getLogger('loopcraft.engine').debug('debug detail')\n    return await old(*a, **k)\nh.print_runs = noisy"
    quiet = _loopcraft(git_repo, "runs", code=code)
    assert "debug detail" not in quiet.stderr
    loud = _loopcraft(git_repo, "-v", "runs", code=code)
    assert loud.returncode == 0, loud.stderr
    assert "log: DEBUG loopcraft.engine: debug detail" in loud.stderr
    assert "debug detail" in (git_repo / ".loopcraft/logs/loopcraft.log").read_text()


async def test_a_429_from_the_provider_leaves_a_retry_line_in_the_log(
    openai_server: OpenAIServer, git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_OPENAI_KEY", KEY)
    path = logs.setup_logging(git_repo)
    assert path == git_repo / ".loopcraft" / "logs" / "loopcraft.log"
    openai_server.fail(429, retry_after=0.01).respond(text="after the wait")
    model = "openai_compatible/test-model"
    options = ModelOptions(api_base=openai_server.base_url, api_key_env="FAKE_OPENAI_KEY")
    config = Config(models={model: options}, retry=RetryConfig(max_retries=2, base_delay=0.01, max_delay=1.0))
    request = CompletionRequest(model=model, messages=[{"role": "user", "content": "hello"}])
    result = await LiteLLMClient(config, root=git_repo).complete(request)
    assert result.text == "after the wait"
    text = path.read_text()
    retry = [line for line in text.splitlines() if "retry 1 in" in line]
    assert len(retry) == 1 and "WARNING loopcraft.models.litellm_client" in retry[0]
    assert f"model {model}: rate_limit" in retry[0] and "429" in retry[0]
    assert retry[0][:4].isdigit() and "Z WARNING" in retry[0]  # ISO-8601 UTC time first
    assert KEY not in text


def test_shell_completion_lists_gate_choices_and_installs(git_repo: Path, tmp_path: Path) -> None:
    shown = _loopcraft(git_repo, "--show-completion", "bash")
    assert shown.returncode == 0 and "_LOOPCRAFT_COMPLETE=complete_bash" in shown.stdout
    env = {
        "_LOOPCRAFT_COMPLETE": "complete_bash",
        "COMP_WORDS": "loopcraft run demo --gates ",
        "COMP_CWORD": "4",
    }
    completed = _loopcraft(git_repo, env=env)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split() == ["auto", "ask", "wait", "stop"]
    home = tmp_path / "home"
    home.mkdir()
    installed = _loopcraft(git_repo, "--install-completion", "bash", env={"HOME": str(home)})
    assert installed.returncode == 0, installed.stderr
    assert "loopcraft" in (home / ".bashrc").read_text()


def test_a_wrong_choice_is_one_usage_line_naming_the_choices(git_repo: Path) -> None:
    done = _loopcraft(git_repo, "run", "demo", "--sandbox", "loose")
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert "'required', 'workspace-write', 'read-only', 'off'" in line and "see loopcraft run --help" in line


def test_a_headless_run_logs_its_start_and_end(git_repo: Path) -> None:
    done = _loopcraft(git_repo, "run", "demo", "--json")
    assert done.returncode == 5, done.stderr  # the demo's approval gate, no terminal: needs_human
    text = (git_repo / ".loopcraft/logs/loopcraft.log").read_text()
    assert "INFO loopcraft.engine.runtime: run " in text and "(demo) started" in text
    assert "WARNING loopcraft.engine.runtime: run " in text and "(demo) ended needs_human" in text


def test_litellm_warnings_go_to_the_file_never_to_the_terminal(
    git_repo: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    from loopcraft.models.litellm_loader import load_litellm

    path = logs.setup_logging(git_repo)
    load_litellm()  # configures litellm's loggers again: they must stay on the file
    litellm_log = logging.getLogger("LiteLLM")
    litellm_log.info("chatter")
    litellm_log.warning("provider said something odd")
    for handler in litellm_log.handlers:
        handler.flush()
    text = path.read_text()
    assert "WARNING LiteLLM: provider said something odd" in text and "chatter" not in text
    captured = capfd.readouterr()
    assert "provider said something odd" not in captured.err + captured.out
