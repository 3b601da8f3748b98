"""The no-key demo: a chain, a parallel fan-out, a nested workflow and an approval gate,
all on the offline scripted model (``scripted/demo``), so it runs on any machine.

Run it with ``/workflow run demo`` in the app or ``loopcraft run demo``.
"""

from loopcraft import Context, workflow

DEMO_MODEL = "scripted/demo"


@workflow(description="Demo reviewers: two reviews in parallel, then a synthesis (run by demo)", nested=True)
async def demo_review(ctx: Context, topic: str = "the repository") -> str:
    reviews = await ctx.parallel(
        ctx.spec("review-correctness", prompt=f"Review {topic} for correctness.", model=DEMO_MODEL),
        ctx.spec("review-maintainability", prompt=f"Review {topic} for maintainability.", model=DEMO_MODEL),
        concurrency=2,
    )
    final = await ctx.task(
        "synthesis",
        prompt="Keep only evidence-backed issues.",
        previous=[r.text for r in reviews],
        model=DEMO_MODEL,
    )
    return final.text


@workflow(description="The offline demo: chain, parallel fan-out, nested workflow and an approval gate")
async def demo(ctx: Context, topic: str = "the repository") -> str:
    await ctx.chain(
        [
            ctx.spec("scout", prompt=f"Map the relevant context for {topic}.", model=DEMO_MODEL),
            ctx.spec("plan", prompt=f"Plan a small improvement to {topic}.", model=DEMO_MODEL),
        ]
    )
    synthesis = await ctx.workflow(demo_review, topic=topic)
    if not await ctx.ui.confirm(f"Apply the demo plan for {topic}?"):
        ctx.exit("blocked", "the plan was not approved")
    done = await ctx.task("implement", prompt="Carry out the plan.", previous=[synthesis], model=DEMO_MODEL)
    return done.text
