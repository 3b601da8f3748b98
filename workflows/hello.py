"""A tiny built-in workflow: one agent task that greets someone."""

from loopcraft import Context, workflow


@workflow(description="Say hello: one agent task, to check that loopcraft works")
async def hello(ctx: Context, name: str = "world") -> str:
    result = await ctx.task("greet", prompt=f"Say hello to {name} in one short sentence.")
    return result.text
