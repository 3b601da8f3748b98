"""``loopcraft stats`` counts the model layer's retries and fallbacks by error class: two real runs on
the scripted model with injected faults (rate limits retried, an auth error handed to the fallback
model, a chain that gives up), checked against the counts worked out by hand from the script."""

from __future__ import annotations

from pathlib import Path

from loopcraft import Context, workflow
from loopcraft.config import Config, RetryConfig
from loopcraft.engine.service import Engine
from loopcraft.engine.stats import journal_stats, stats_lines
from loopcraft.models.scripted import reset_fault_counters
from tests.integration.test_agent_support import scripted_model

LIMIT = {"kind": "rate_limit", "retry_after": 0}
SERVER = {"kind": "server_error"}
AUTH = {"kind": "auth"}


def models() -> tuple[str, str]:
    primary = scripted_model(
        stages={
            "worker": [{"faults": [LIMIT, LIMIT], "text": "done"}],  # 2 retries, then it answers
            "flaky": [{"faults": [AUTH], "text": "never"}],  # auth: no retry, the fallback model
            "doomed": [{"faults": [SERVER, SERVER, SERVER], "text": "never"}],  # 2 retries, fallback
        }
    )
    fallback = scripted_model(
        stages={"flaky": [{"text": "saved"}], "doomed": [{"faults": [AUTH], "text": "never"}]}
    )
    return primary, fallback


async def test_stats_count_retries_and_fallbacks_by_error_class(git_repo: Path) -> None:
    primary, fallback = models()

    @workflow(name="retrying", description="stages whose model calls fail and recover (or not)")
    async def retrying(ctx: Context, doom: bool = False) -> str:
        await ctx.task("worker", prompt="work", model=primary, fallback_models=[fallback])
        last = "doomed" if doom else "flaky"
        result = await ctx.task(last, prompt="more", model=primary, fallback_models=[fallback])
        return result.text

    config = Config(model=primary, retry=RetryConfig(max_retries=2, base_delay=0))
    engine = await Engine.open(git_repo, config)
    engine.register(retrying)
    try:
        reset_fault_counters()
        ok = await engine.run("retrying", {})
        assert ok.status == "completed", ok.error
        reset_fault_counters()
        bad = await engine.run("retrying", {"doom": True})
        assert bad.status == "failed"
        [entry] = await journal_stats(engine.journal, workflow="retrying")
    finally:
        await engine.close()
    # worker: 2 rate-limit retries in each run; doomed: 2 server retries, 1 server fallback, then the
    # fallback's auth error gives up; flaky: 1 auth fallback.
    assert entry["retries"] == {"rate_limit": 4, "server": 2}
    assert entry["fallbacks"] == {"auth": 1, "server": 1}
    assert entry["gave_up"] == {"auth": 1}
    assert entry["ended"] == {"failed": {"model auth": 1}}
    stages = {s["stage"]: (s["retries"], s["fallbacks"]) for s in entry["stages"]}
    assert stages == {"worker": (4, 0), "flaky": (0, 1), "doomed": (2, 1)}
    text = "\n".join(stats_lines([entry]))
    assert "retries        rate_limit ×4; server ×2" in text
    assert "fallbacks      auth ×1; server ×1" in text
