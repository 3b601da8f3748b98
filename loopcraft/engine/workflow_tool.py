"""The agent's ``workflow`` tool, built on the :class:`Engine`: list, run, status, answer, steer,
pause, resume existing workflows; ``task``/``chain``/``parallel`` start dynamic runs (real runs
in the journal, budgeted and capped); ``stages``, ``transcript``, ``interrupt``, ``kill`` and
``follow_up`` inspect and control runs.

The app's chat agent, ``loopcraft chat`` and (opt-in, ``tools=[..., "workflow"]``) workflow
stages use it. The human side (approvals, panes) is a :class:`WorkflowHost` the caller supplies;
:class:`HeadlessHost` is the one without a screen."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any, Protocol

from loopcraft.engine.budgets import BUDGET_KEYS, check_budget
from loopcraft.engine.journal import CLOSED_RUN_STATES
from loopcraft.engine.names import short_id
from loopcraft.errors import LoopcraftError, error_line

if TYPE_CHECKING:
    from collections.abc import Callable

    from loopcraft.agent.tools.base import ToolContext, ToolResult
    from loopcraft.engine.service import Engine

RUN_ACTIONS = ("list", "run", "status", "answer", "steer", "pause", "resume")
DYNAMIC_ACTIONS = ("task", "chain", "parallel")
INSPECT_ACTIONS = ("stages", "transcript", "interrupt", "kill", "follow_up")
ACTIONS = (*RUN_ACTIONS, *DYNAMIC_ACTIONS, *INSPECT_ACTIONS)
WAIT_LIMIT_S = 900.0  # the longest a run is waited for before the tool answers
RECHECK_S = 1.0  # how often the run is looked at again when no engine event woke the wait
OUTPUT_LIMIT = 4_000  # characters of stage outputs returned to the model (the rest: artifact files)
TRANSCRIPT_DEFAULT = 10

_STAGE_PROPS: dict[str, Any] = {
    "name": {"type": "string"},
    "prompt": {"type": "string"},
    "model": {"type": "string"},
    "tools": {"type": "array", "items": {"type": "string"}},
    "schema": {"type": "object", "description": "JSON schema of a structured answer"},
    "context": {"type": "string", "enum": ["fresh", "fork"]},
    "worktree": {"type": "boolean"},
    "output": {"type": "string", "description": "artifact file for the stage's output"},
    "output_mode": {"type": "string", "enum": ["inline", "file-only"]},
}


class WorkflowHost(Protocol):
    """The human side of the tool: what the app shows and how a person answers."""

    async def run_started(self, run_id: str) -> None: ...

    def pick_run(self, run_id: str | None) -> str: ...

    async def status_text(self, run_id: str | None) -> str | None: ...  # None: the tool's own text

    async def answer(self, answer: Any, prompt_id: str | None) -> str: ...

    async def resume(self, run_id: str, message: str | None) -> str: ...


class HeadlessHost:
    """No screen: the last run this tool started is the default; resumes run in the background."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.last: str | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    async def run_started(self, run_id: str) -> None:
        self.last = run_id

    def pick_run(self, run_id: str | None) -> str:
        chosen = run_id or self.last
        if chosen is None:
            raise LoopcraftError("give run_id (action=status lists the runs)")
        return chosen

    async def status_text(self, run_id: str | None) -> str | None:
        return None

    async def answer(self, answer: Any, prompt_id: str | None) -> str:
        pending = await self.engine.prompts()
        chosen = [p for p in pending if p.id == prompt_id] if prompt_id else pending
        if len(chosen) != 1:
            raise LoopcraftError(f"{len(chosen)} matching pending prompts; give prompt_id")
        value = await self.engine.answer(chosen[0].run_id, chosen[0].id, answer)
        return f"answered prompt {chosen[0].id} ({chosen[0].question}) with {value!r}"

    async def resume(self, run_id: str, message: str | None) -> str:
        task = asyncio.ensure_future(self.engine.resume(run_id, message))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        await asyncio.sleep(0)
        return run_id


def list_text(engine: Engine) -> str:
    """Every workflow with its description and inputs (``?``: optional), and broken files."""
    catalog = engine.workflows()
    lines = []
    for info in catalog.list():
        required = set(info.inputs.get("required", []))
        names = [f"{n}{'' if n in required else '?'}" for n in (info.inputs.get("properties") or {})]
        mark = " (nested: runs inside another workflow)" if info.nested else ""
        lines.append(
            f"{info.name}{mark}: {info.description or '(no description)'}  [{', '.join(names) or 'no inputs'}]"
        )
    for path, error in catalog.errors:
        lines.append(f"broken: {path}: {error}")
    return "\n".join(lines) or "no workflows found"


def session_remaining(
    limits: dict[str, float | None], spent_tokens: int, spent_dollars: float
) -> dict[str, float]:
    """What a session may still spend, from its limits (tokens, dollars; None: unlimited)."""
    left: dict[str, float] = {}
    if limits.get("tokens") is not None:
        left["tokens"] = max(0.0, float(limits["tokens"] or 0) - spent_tokens)
    if limits.get("dollars") is not None:
        left["dollars"] = max(0.0, float(limits["dollars"] or 0) - spent_dollars)
    return left


class WorkflowTool:
    """A :class:`~loopcraft.agent.tools.base.Tool` bound to an :class:`Engine`.

    ``depth`` is how deep the caller is (0: a chat; a stage's tool: its run's depth); a dynamic
    run it starts is one deeper and refused past ``engine.max_depth``. ``remaining`` says what the
    calling session may still spend (a dynamic run's budget is capped by it)."""

    name = "workflow"
    description = (
        "Drive loopcraft workflows. action=list shows workflows and their inputs; action=run starts "
        "one (name, inputs) and returns its run id; with wait=true it returns only when the run "
        "needs a human answer or has ended (use it when the user asks to be told); action=status shows runs or one "
        "run (run_id); action=answer answers a pending human prompt (answer, optional prompt_id); "
        "action=steer sends a message to a run's stage (run_id, stage, message); action=pause and "
        "action=resume control a run (run_id; resume takes an optional message). "
        "Dynamic runs, tracked like any run: action=task runs one fresh-context stage (name, prompt, "
        "optional model, tools, schema, context, worktree, output, output_mode); action=chain runs "
        "stages one after another, each given the previous output; action=parallel runs stages "
        "concurrently (stages: [{name, prompt, ...}], concurrency). They wait and return the stage "
        "outputs unless wait=false; budget {tokens, dollars, seconds} limits the run. "
        "action=stages shows a run's graph; action=transcript a stage's last entries (run_id, stage, "
        "last); action=interrupt, action=kill and action=follow_up (run_id, stage, message) control it."
    )
    parameters: dict[str, Any] = {
        "type": "object",
        "properties": {
            "action": {"type": "string", "enum": list(ACTIONS)},
            "name": {"type": "string", "description": "workflow name (run) or stage name (task)"},
            "inputs": {"type": "object", "description": "workflow inputs (run)"},
            "wait": {"type": "boolean", "description": "wait until the run needs a human or ends"},
            "run_id": {"type": "string"},
            "stage": {"type": "string", "description": "stage key or name"},
            "message": {"type": "string"},
            "answer": {"description": "the answer (answer)"},
            "prompt_id": {"type": "string"},
            **{k: v for k, v in _STAGE_PROPS.items() if k != "name"},
            "stages": {
                "type": "array",
                "items": {"type": "object", "properties": _STAGE_PROPS, "required": ["name", "prompt"]},
            },
            "concurrency": {"type": "integer", "minimum": 1},
            "budget": {"type": "object", "description": "tokens, dollars, seconds"},
            "request": {"type": "string", "description": "the user's request this run serves"},
            "last": {"type": "integer", "minimum": 1, "description": "transcript entries (transcript)"},
        },
        "required": ["action"],
        "additionalProperties": False,
    }
    read_only = False

    def __init__(
        self,
        engine: Engine,
        host: WorkflowHost | None = None,
        *,
        depth: int = 0,
        remaining: Callable[[], dict[str, float]] | None = None,
        request: Callable[[], str] | None = None,
    ) -> None:
        self.engine = engine
        self.host: WorkflowHost = host or HeadlessHost(engine)
        self.depth = depth
        self.remaining = remaining
        self.request = request  # the user's request (a dynamic run records it when the model gives none)
        self.started: list[str] = []  # runs this tool started, in order

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        from loopcraft.agent.tools.base import ToolResult

        action = args.get("action")
        if action not in ACTIONS:
            return ToolResult(f"unknown action {action!r}: use one of {', '.join(ACTIONS)}", is_error=True)
        try:
            return ToolResult(await self._do(str(action), args, ctx))
        except LoopcraftError as exc:
            return ToolResult(str(exc), is_error=True)

    async def _started(self, run_id: str) -> None:
        self.started.append(run_id)
        await self.host.run_started(run_id)

    async def _do(self, action: str, args: dict[str, Any], ctx: ToolContext) -> str:
        eng = self.engine
        if action in DYNAMIC_ACTIONS:
            return await self._dynamic(action, args, ctx)
        if action in INSPECT_ACTIONS:
            return await self._inspect(action, args)
        if action == "list":
            return list_text(eng)
        if action == "run":
            name = _need(args, "name", action)
            inputs = args.get("inputs") or {}
            if not isinstance(inputs, dict):
                raise LoopcraftError("inputs must be an object of workflow inputs")
            run_id = await eng.start(name, inputs)
            await self._started(run_id)
            if args.get("wait"):
                return await self._wait(run_id, name, ctx)
            return f"started workflow {name} as run {run_id}; it is running in the background"
        if action == "status":
            shown = await self.host.status_text(args.get("run_id"))
            return shown if shown is not None else await self._status(args.get("run_id"))
        if action == "answer":
            if "answer" not in args:
                raise LoopcraftError("action=answer needs 'answer'")
            return await self.host.answer(args["answer"], args.get("prompt_id"))
        if action == "steer":
            run_id = _need(args, "run_id", action)
            await eng.steer(self.host.pick_run(run_id), args.get("stage"), _need(args, "message", action))
            return f"steering message sent to run {run_id}"
        rid = self.host.pick_run(args.get("run_id"))
        if action == "pause":
            await eng.pause(rid)
            return f"pausing run {rid}"
        return f"resuming run {await self.host.resume(rid, args.get('message'))}"

    async def _status(self, run_id: str | None) -> str:
        if run_id is None:
            runs = await self.engine.runs()
            return "\n".join(_run_line(r) for r in runs[:20]) or "no runs yet"
        run = await self.engine.get_run(run_id)
        lines = [_run_line(run)]
        if run.error:
            lines.append(error_line(run.error))
        if run.output is not None and run.status == "completed":
            lines.append(f"output: {str(run.output)[:500]}")
        return "\n".join(lines)

    # -- dynamic runs -------------------------------------------------------------------------

    def _spec(self, action: str, args: dict[str, Any]) -> dict[str, Any]:
        from loopcraft.engine.dynamic import DynamicError, parse_spec

        if action == "task":
            keys = ("name", "prompt", *_STAGE_PROPS)
            stages = [{k: args[k] for k in keys if k in args}]
        else:
            given = args.get("stages")
            if not isinstance(given, list) or not given:
                raise DynamicError(f"action={action} needs 'stages': a list of {{name, prompt, ...}}")
            stages = given
        cap = self.engine.config.engine.max_dynamic_stages
        if len(stages) > cap:
            raise DynamicError(
                f"action={action} asks for {len(stages)} stages; one call may start at most {cap} "
                "(engine.max_dynamic_stages): split the work or use fewer stages"
            )
        depth = self.depth + 1
        limit = self.engine.config.engine.max_depth
        if depth > limit:
            raise DynamicError(
                f"action={action} refused: a dynamic run here would be {depth} deep, past the maximum "
                f"depth ({limit}; engine.max_depth); do the work in this stage instead"
            )
        data: dict[str, Any] = {"kind": action, "stages": stages, "depth": depth}
        if args.get("concurrency") is not None:
            data["concurrency"] = args["concurrency"]
        request = args.get("request") or (self.request() if self.request is not None else "")
        if request:
            data["request"] = request
        return parse_spec(data).model_dump(mode="json", by_alias=True, exclude_defaults=True) | {
            "kind": action
        }

    def _budget(self, asked: Any) -> dict[str, float] | None:
        """The call's budget, checked against the caps (engine.dynamic_budget, the session's
        remaining budget); unset keys take the cap."""
        from loopcraft.engine.dynamic import DynamicError

        if asked is not None and not isinstance(asked, dict):
            raise DynamicError(f"budget must be an object with keys {', '.join(BUDGET_KEYS)}")
        try:
            wanted = check_budget(asked) or {}
        except LoopcraftError as exc:
            raise DynamicError(str(exc)) from None
        caps: list[tuple[str, dict[str, float]]] = []
        ceiling = check_budget(self.engine.config.engine.dynamic_budget)
        if ceiling:
            caps.append(("engine.dynamic_budget", ceiling))
        if self.remaining is not None:
            caps.append(("this session's remaining budget", self.remaining()))
        out = dict(wanted)
        for label, cap in caps:
            for key, limit in cap.items():
                if limit <= 0:
                    raise DynamicError(f"no {key} left for a dynamic run ({label} is used up)")
                if key in wanted and wanted[key] > limit:
                    raise DynamicError(
                        f"budget {key}={_num(wanted[key])} is over {label} ({key}={_num(limit)}); "
                        f"ask for at most {_num(limit)}"
                    )
                out[key] = min(out.get(key, limit), limit)
        return out or None

    async def _dynamic(self, action: str, args: dict[str, Any], ctx: ToolContext) -> str:
        spec = self._spec(action, args)
        budget = self._budget(args.get("budget"))
        run_id = await self.engine.start_dynamic(spec, budget=budget)
        await self._started(run_id)
        names = ", ".join(s["name"] for s in spec["stages"])
        if args.get("wait") is False:
            return f"started dynamic {action} run {run_id} ({names}); it is running in the background"
        return await self._wait(run_id, f"dynamic {action}", ctx)

    # -- waiting --------------------------------------------------------------------------------

    async def _wait(self, run_id: str, name: str, ctx: ToolContext) -> str:
        """Wait until the run has a pending prompt or ends (or the agent is interrupted); says which,
        with the question and how to answer it, or the outputs."""
        eng = self.engine
        changed = asyncio.Event()
        unsubscribe = eng.bus.subscribe(lambda _event: changed.set())
        try:
            deadline = asyncio.get_running_loop().time() + WAIT_LIMIT_S
            while True:
                changed.clear()
                prompts = await eng.prompts(run_id)
                if prompts:
                    return f"run {run_id} ({name}) is waiting for the user: {prompts[0].question!r} " + (
                        self._answer_hint(run_id, prompts[0].id)
                    )
                run = await eng.get_run(run_id)
                if run.status in CLOSED_RUN_STATES:
                    return self._ended(await eng.wait(run_id))  # its last events are journaled
                if ctx.cancel.is_set() or asyncio.get_running_loop().time() > deadline:
                    return f"run {run_id} ({name}) is still {run.status}; stopped waiting for it"
                try:
                    await asyncio.wait_for(changed.wait(), RECHECK_S)
                except TimeoutError:
                    pass
        finally:
            unsubscribe()

    def _answer_hint(self, run_id: str, prompt_id: str) -> str:
        """How the user answers: in the app's prompts pane, or (no screen) with the CLI."""
        if isinstance(self.host, HeadlessHost):
            handle = short_id(run_id)
            return (
                f"(prompt {prompt_id}; with no app open they answer it with `loopcraft answer {handle} "
                f"{prompt_id} yes`, `loopcraft prompts` lists it, then `loopcraft resume {handle}`)"
            )
        return "(they answer it in the prompts pane: F4, then y or n; or /workflow answer VALUE)"

    def _ended(self, run: Any) -> str:
        from loopcraft.engine.dynamic import is_dynamic

        reason = f": {run.error}" if run.error else ""
        head = f"run {run.id} ({run.workflow}) ended {run.status}{reason}"
        if run.status != "completed" or not is_dynamic(run.workflow) or not isinstance(run.output, list):
            return head
        artifacts = self.engine.root / ".loopcraft" / "runs" / run.id / "artifacts"
        share = max(200, OUTPUT_LIMIT // max(1, len(run.output)))
        parts = [head]
        for item in run.output:
            text = item.get("text") or ""
            if item.get("structured") is not None:
                text = json.dumps(item["structured"])
            cut = (
                text
                if len(text) <= share
                else text[:share] + f"… (cut; the rest: {artifacts / item['artifact']})"
            )
            parts.append(f"## {item['name']}\n{cut}")
        return "\n\n".join(parts)

    # -- inspection and control -----------------------------------------------------------------

    async def _inspect(self, action: str, args: dict[str, Any]) -> str:
        eng = self.engine
        rid = self.host.pick_run(args.get("run_id"))
        stage = args.get("stage")
        if action == "stages":
            info, graph = await eng.live_view(rid)
            from loopcraft.engine.names import step_path

            lines = [_run_line(info)]
            for node in graph.walk():
                if node.kind in ("chain", "parallel", "root"):
                    continue
                lines.append(f"  {step_path(node.key)}  [{node.kind}] {node.status}")
            return "\n".join(lines)
        if action == "transcript":
            name = _need(args, "stage", action)
            last = int(args.get("last") or TRANSCRIPT_DEFAULT)
            entries = await eng.stage_transcript(rid, name)
            shown = [_entry_line(e) for e in entries if e.get("type") == "message"][-last:]
            return "\n".join(shown) or f"stage {name!r} has no messages yet"
        if action == "interrupt":
            await eng.interrupt(rid, stage)
            return f"interrupt sent to run {rid}" + (f" stage {stage}" if stage else "")
        if action == "kill":
            info = await eng.kill(rid)
            return f"run {info.id} is {info.status}"
        await eng.follow_up(rid, stage, _need(args, "message", action))
        return f"follow-up sent to run {rid}"


def _run_line(run: Any) -> str:
    return f"{run.id}  {run.workflow:<16} {run.status:<15} ${float(run.cost or 0.0):.4f}"


def _entry_line(entry: dict[str, Any]) -> str:
    message = entry.get("message") or {}
    role = message.get("role", "?")
    content = message.get("content")
    text = content if isinstance(content, str) else json.dumps(content)[:300]
    calls = [c.get("function", {}).get("name", "?") for c in message.get("tool_calls") or []]
    more = f" [calls {', '.join(calls)}]" if calls else ""
    return f"{role}: {(text or '')[:300]}{more}"


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _need(args: dict[str, Any], key: str, action: str) -> str:
    value = args.get(key)
    if not value or not isinstance(value, str):
        raise LoopcraftError(f"action={action} needs '{key}'")
    return value
