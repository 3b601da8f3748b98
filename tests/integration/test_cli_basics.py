"""The ``loopcraft`` command itself: version, help without litellm, doctor, bad input."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import loopcraft


def lc(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m loopcraft ARGS`` as a real subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "loopcraft", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def test_version() -> None:
    out = lc("--version")
    assert out.returncode == 0
    assert out.stdout.strip() == f"loopcraft {loopcraft.__version__}"


def test_help_does_not_import_litellm() -> None:
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "loopcraft", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0
    assert "doctor" in out.stdout and "run" in out.stdout
    imported = {line.rsplit("|", 1)[-1].strip() for line in out.stderr.splitlines() if "|" in line}
    assert "typer" in imported  # the probe works
    assert not any(name.split(".")[0] == "litellm" for name in imported)


def test_import_loopcraft_does_not_import_litellm() -> None:
    code = "import sys, loopcraft; from loopcraft import workflow, Context; print('litellm' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_doctor_reports_keys_present_never_values(git_repo: Path) -> None:
    out = lc("doctor", cwd=git_repo, env={"OPENAI_API_KEY": "sk-very-secret-value"})
    assert out.returncode == 0, out.stderr
    assert "OPENAI_API_KEY: present" in out.stdout
    assert "ANTHROPIC_API_KEY: not set" in out.stdout
    assert "sk-very-secret-value" not in out.stdout + out.stderr
    assert "python" in out.stdout and "git version" in out.stdout


def test_doctor_without_keys_names_the_scripted_demo_model(git_repo: Path) -> None:
    out = lc("doctor", cwd=git_repo)
    assert out.returncode == 0, out.stderr
    assert "scripted/demo" in out.stdout
    assert "no real model configured" in out.stdout


def test_bad_config_value_is_one_line_and_nonzero(git_repo: Path) -> None:
    (git_repo / ".loopcraft").mkdir()
    (git_repo / ".loopcraft" / "config.toml").write_text("[agent]\nmax_turns = 'lots'\n")
    out = lc("doctor", cwd=git_repo)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "agent.max_turns" in lines[0] and "config.toml" in lines[0]


def test_invalid_model_string_is_one_line_and_nonzero(git_repo: Path) -> None:
    for bad, needle in (("gpt4", "invalid model string"), ("nosuch/x", "unknown provider")):
        out = lc("--model", bad, cwd=git_repo)
        assert out.returncode == 2
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and needle in lines[0]


def test_doctor_reports_configured_api_key_env_presence_only(git_repo: Path) -> None:
    (git_repo / ".loopcraft").mkdir()
    (git_repo / ".loopcraft" / "config.toml").write_text(
        '[models."openai_compatible/local"]\napi_key_env = "LOCAL_LLM_KEY"\n'
        '[models."openai/other"]\napi_key_env = "OTHER_KEY"\n'
    )
    out = lc("doctor", cwd=git_repo, env={"LOCAL_LLM_KEY": "very-secret-local-key"})
    assert out.returncode == 0, out.stderr
    assert "openai_compatible/local: ok: LOCAL_LLM_KEY present" in out.stdout
    assert "openai/other: NOT READY: OTHER_KEY not set" in out.stdout
    assert "very-secret-local-key" not in out.stdout + out.stderr


def test_doctor_checks_each_configured_model_with_litellm_and_names_sources(git_repo: Path) -> None:
    (git_repo / ".loopcraft").mkdir()
    (git_repo / ".loopcraft" / "config.toml").write_text(
        'fallback_models = ["nvidia_nim/meta/llama3-70b-instruct"]\n[models."ollama/llama3:latest"]\n'
    )
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    try:
        env = {"LOOPCRAFT_MODEL": "openai/gpt-4o:HIGH", "OPENAI_API_KEY": "sk-secret-1"}
        env["OLLAMA_HOST"] = f"127.0.0.1:{listener.getsockname()[1]}"
        out = lc("doctor", cwd=git_repo, env=env)
    finally:
        listener.close()
    assert out.returncode == 0, out.stderr
    assert "model      openai/gpt-4o:high (from env LOOPCRAFT_MODEL)" in out.stdout
    config = git_repo / ".loopcraft" / "config.toml"
    assert f"fallback   nvidia_nim/meta/llama3-70b-instruct (from repo config {config})" in out.stdout
    assert "openai/gpt-4o:high: ok: environment complete (litellm validate_environment)" in out.stdout
    assert "nvidia_nim/meta/llama3-70b-instruct: NOT READY: missing NVIDIA_NIM_API_KEY" in out.stdout
    assert (
        f"ollama/llama3:latest: ok: Ollama at {'http://' + env['OLLAMA_HOST']} (from OLLAMA_HOST)"
        in out.stdout
    )
    assert "ANTHROPIC_API_KEY" not in out.stdout  # detection keys only matter when no model is set
    assert "sk-secret-1" not in out.stdout + out.stderr
