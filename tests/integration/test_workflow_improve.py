"""The built-in ``improve`` workflow (autoresearch) end to end on the scripted model in a real git repo
with a real metric script: a real improvement is kept as a commit on ``loopcraft/improve/<run>``, a
regression, a crash and a timeout are discarded (their files gone, the branch unchanged), a write
outside ``files`` is refused, and ``results.tsv`` and the ledger have one row per experiment."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from loopcraft.config import Config
from loopcraft.engine.service import Engine
from loopcraft.engine.worktrees import safe_name
from tests.integration.test_agent_support import scripted_model, tool_call

SCORE = """\
import sys, time
text = open("value.txt").read().strip()
if text == "hang":
    time.sleep(60)
print("score:", float(text))
"""


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout


def commit(repo: Path, message: str) -> None:
    env = ["-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "-C", str(repo), *env, "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(repo), *env, "commit", "-qm", message], check=True)


def change(value: str, description: str, *extra: dict[str, Any]) -> list[dict[str, Any]]:
    calls = [*extra, tool_call("write", path="value.txt", content=value + "\n")]
    return [{"tool_calls": calls}, {"text": f"Working on it.\n{description}"}]


@pytest.fixture
def repo(git_repo: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (git_repo / "score.py").write_text(SCORE)
    (git_repo / "value.txt").write_text("3\n")
    commit(git_repo, "metric")
    monkeypatch.chdir(git_repo)
    return git_repo


async def test_improve_keeps_improvements_and_discards_regressions_crashes_and_stray_writes(
    repo: Path,
) -> None:
    model = scripted_model(
        stages={
            "change-1": change("5", "raise the value to 5"),
            "change-2": change("2", "lower the value to 2"),
            "change-3": change("oops", "break the value file"),
            "change-4": change("hang", "make the metric hang"),
            "change-5": change(
                "9", "raise to 9", tool_call("write", path="score.py", content="print(100)\n")
            ),
        }
    )
    engine = await Engine.open(repo, Config(model=model))
    inputs = {
        "goal": "make the score higher",
        "metric": f"{sys.executable} score.py",
        "files": ["value.txt"],
        "direction": "max",
        "max_experiments": 5,
        "experiment_timeout": 8,
    }
    info = await engine.run("improve", inputs)
    assert info.status == "completed", info.error
    out = info.output
    branch = f"loopcraft/improve/{safe_name(info.id)}"
    assert out["branch"] == branch
    assert (out["baseline"], out["best"]) == (3.0, 9.0)
    statuses = [e["status"] for e in out["experiments"]]
    assert statuses == ["keep", "discard", "crash", "crash", "keep"]
    assert "timed out" in out["experiments"][3]["description"]
    # the kept commits are the branch's history since the base, newest first
    base = git(repo, "rev-parse", "main").strip()
    log = git(repo, "log", "--format=%H %s", f"{base}..{branch}").splitlines()
    assert [line.split()[0] for line in log] == list(reversed(out["kept"]))
    assert "experiment 5: raise to 9" in log[0] and "experiment 1: raise the value to 5" in log[1]
    # the branch holds the best state; discarded changes and the refused write are not on it
    assert git(repo, "show", f"{branch}:value.txt") == "9\n"
    assert git(repo, "show", f"{branch}:score.py") == SCORE
    assert git(repo, "show", f"{branch}~1:value.txt") == "5\n"  # experiments 2-4 left nothing behind
    results = [
        e for e in await engine.stage_transcript(info.id, "change-5") if e.get("type") == "tool_result"
    ]
    assert [(r["name"], r["is_error"]) for r in results] == [("write", True), ("write", False)]
    assert "refused: rule write(*) says deny" in results[0]["output"], results[0]["output"]
    # the main tree is untouched; every experiment's worktree and branch is gone
    assert (repo / "value.txt").read_text() == "3\n"
    assert git(repo, "worktree", "list").count("\n") == 1
    assert git(repo, "branch", "--list", f"loopcraft/{safe_name(info.id)}/*") == ""
    # results.tsv: a header, the baseline and one row per experiment
    rows = [line.split("\t") for line in Path(out["results"]).read_text().splitlines()]
    assert rows[0] == ["experiment", "commit", "metric", "status", "description"]
    assert [(r[0], r[2], r[3]) for r in rows[1:]] == [
        ("0", "3", "baseline"),
        ("1", "5", "keep"),
        ("2", "2", "discard"),
        ("3", "-", "crash"),
        ("4", "-", "crash"),
        ("5", "9", "keep"),
    ]
    assert rows[2][1] == out["kept"][0][:12] and rows[3][1] == "-"
    ledger = json.loads((engine.root / ".loopcraft" / "runs" / info.id / "ledger.json").read_text())
    assert [e["key"] for e in ledger["events"]] == ["baseline", *(f"experiment-{n}" for n in range(1, 6))]
    assert ledger["state"]["best"] == 9.0
    await engine.close()


async def test_improve_is_blocked_when_the_baseline_metric_fails(repo: Path) -> None:
    engine = await Engine.open(repo, Config(model=scripted_model([{"text": "x"}])))
    info = await engine.run(
        "improve", {"goal": "g", "metric": f"{sys.executable} -c 'raise SystemExit(3)'", "files": "value.txt"}
    )
    assert info.status == "blocked"
    assert "baseline" in (info.error or "") and "exited 3" in (info.error or "")
    await engine.close()


async def test_improve_resumed_after_a_crash_runs_no_measurement_or_model_turn_again(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loopcraft.models.litellm_client import LiteLLMClient
    from loopcraft.models.scripted import read_call_log
    from tests.engine_helpers import Crash, CrashingClient

    calls = tmp_path / "calls.jsonl"
    monkeypatch.setenv("LOOPCRAFT_SCRIPTED_CALL_LOG", str(calls))
    runs = tmp_path / "metric-runs"
    model = scripted_model(stages={"change-1": change("5", "to 5"), "change-2": change("7", "to 7")})
    config = Config(model=model)
    inputs = {
        "goal": "higher",
        "metric": f"echo run >> {runs} && {sys.executable} score.py",
        "files": "value.txt",
        "max_experiments": 2,
    }
    engine = await Engine.open(repo, config, client=CrashingClient(LiteLLMClient(config), crash_on_call=4))
    run_id = await engine.start("improve", inputs)
    with pytest.raises(Crash):  # dies after change-2 wrote value.txt, before its final answer
        await engine.wait(run_id)
    await engine.close()
    assert runs.read_text().count("run") == 2  # the baseline and experiment 1
    assert len(read_call_log(calls)) == 3  # the 4th call died before it reached the model
    engine = await Engine.open(repo, config)
    info = await engine.resume(run_id)
    assert info.status == "completed", info.error
    assert [e["status"] for e in info.output["experiments"]] == ["keep", "keep"]
    assert info.output["best"] == 7.0
    assert runs.read_text().count("run") == 3  # only experiment 2's measurement was left to run
    assert len(read_call_log(calls)) == 4  # only change-2's last turn was left to ask for
    ledger = json.loads((engine.root / ".loopcraft" / "runs" / run_id / "ledger.json").read_text())
    assert [e["key"] for e in ledger["events"]] == ["baseline", "experiment-1", "experiment-2"]
    branch = info.output["branch"]
    assert len(git(repo, "log", "--format=%H", f"main..{branch}").split()) == 2
    await engine.close()
