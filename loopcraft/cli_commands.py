"""The typer app behind ``loopcraft <command>``: headless commands for scripts and CI.

:func:`loopcraft.cli.main` opens the interactive app itself when no command is given and
imports this module only otherwise. Every command turns a :class:`LoopcraftError` into one
line on stderr and its exit code. Heavy modules (config and pydantic, the engine, the TUI,
litellm) are imported inside the commands, so ``loopcraft --help`` stays fast.
"""

from __future__ import annotations

import asyncio
import functools
import os
import platform
import sys
from collections.abc import Callable, Coroutine
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from loopcraft import __version__
from loopcraft.cli_choices import GateMode, SandboxChoice
from loopcraft.errors import LoopcraftError, error_line
from loopcraft.logs import LogLevel
from loopcraft.paths import git_version

if TYPE_CHECKING:
    from loopcraft.config import Config

app = typer.Typer(
    name="loopcraft",
    help="A loop engine for coding agents. Run with no command for the interactive app.",
    add_completion=True,
    no_args_is_help=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

T = TypeVar("T")
MAX_LIMIT = 1_000_000  # the most rows a listing's --limit may ask for
F = TypeVar("F", bound=Callable[..., Any])


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(error_line(message), err=True)
    return typer.Exit(code)


def friendly(fn: F) -> F:
    """Turn LoopcraftError into ``error: <line>`` on stderr and its exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except LoopcraftError as exc:
            raise _fail(str(exc), exc.exit_code) from None
        except KeyboardInterrupt:
            raise _fail("interrupted", 130) from None

    return wrapper  # type: ignore[return-value]


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


_SANDBOX_HELP = (
    "The shell's OS sandbox: required (refuse to run, exit 9, when none works), "
    "workspace-write, read-only or off; default agent.sandbox."
)


def _sandbox_option(value: SandboxChoice | None) -> str | None:
    return value.value if value is not None else None


def _config(model: str | None = None, sandbox: str | None = None) -> tuple[Path, Config]:
    from loopcraft.config import load_repo_config  # pydantic: not imported for --help
    from loopcraft.paths import outside_git_note, state_dir
    from loopcraft.trust import is_trusted, untrusted_notice

    root, config = load_repo_config(model, sandbox)
    note = outside_git_note(root)
    if note:  # once per command, and it goes on
        typer.echo(note, err=True)
    workflows = (state_dir(root) / "workflows").is_dir()
    if (config.untrusted_ignored or workflows) and not is_trusted(root):
        typer.echo(untrusted_notice(root, config.untrusted_ignored, workflows), err=True)
    return root, config


def _start_logging(level: LogLevel | None, verbose: bool, echo: bool) -> None:
    from loopcraft.logs import resolve_level, setup_logging
    from loopcraft.paths import repo_root

    setup_logging(repo_root(), resolve_level(level.value if level else None, verbose), echo=echo)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"loopcraft {__version__}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
@friendly
def main_callback(
    ctx: typer.Context,
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Print the version and exit."
    ),
    model: str | None = typer.Option(
        None, "--model", "-m", help="Model for the chat agent: provider/model[:effort]."
    ),
    trust_folder: bool = typer.Option(
        False, "--trust", help="Trust this folder's config and workflows for this command (CI)."
    ),
    verbose: bool = typer.Option(
        False, "--verbose", "-v", help="Log at debug level; headless commands also echo the log to stderr."
    ),
    log_level: LogLevel | None = typer.Option(
        None, "--log-level", help="Level of the log file (.loopcraft/logs/loopcraft.log); default info."
    ),
) -> None:
    """Open the interactive app when no command is given."""
    _start_logging(log_level, verbose, echo=verbose and ctx.invoked_subcommand is not None)
    if trust_folder:
        from loopcraft.trust import TRUST_ENV

        os.environ[TRUST_ENV] = "1"
    if ctx.invoked_subcommand is None:
        from loopcraft.cli import open_app

        open_app(model)


@app.command("trust")
@friendly
def trust_cmd(
    path: Path = typer.Argument(None, help="The folder to trust (default: this repository)."),
) -> None:
    """Trust a folder: its .loopcraft/config.toml is used in full and its workflow files are imported."""
    from loopcraft.paths import repo_root
    from loopcraft.trust import trust

    folder = repo_root(path) if path else repo_root()
    typer.echo(f"trusted {trust(folder)}: its config and .loopcraft/workflows can run code on your machine")


@app.command()
@friendly
def doctor(
    journal: bool = typer.Option(
        False,
        "--journal",
        help="Check the journal instead: integrity, every JSON cell, every transcript (exit 8 if damaged).",
    ),
) -> None:
    """Check Python, git, the configured models and which API keys are present."""
    root, config = _config()
    if journal:
        from loopcraft.engine.journal_check import check_journal
        from loopcraft.engine.service import db_path
        from loopcraft.paths import state_dir

        report = check_journal(db_path(root), state_dir(root) / "runs")
        typer.echo("\n".join(report.lines()))
        raise typer.Exit(8 if report.problems else 0)
    from loopcraft.models.resolve import api_key_status, resolve_model

    typer.echo(f"loopcraft {__version__}")
    typer.echo(f"python     {platform.python_version()} ({sys.executable})")
    typer.echo(f"git        {git_version() or 'MISSING: install git'}")
    typer.echo(f"repo       {root}")
    from loopcraft.logs import active_log_path

    typer.echo(f"log        {active_log_path() or 'none'} (-v or --log-level debug for more)")
    resolved = resolve_model(config=config)
    source = config.source_of("model") if resolved.source == "config" else resolved.source
    typer.echo(f"model      {resolved.model} (from {source})")
    if resolved.notice:
        typer.echo(f"           {resolved.notice}")
    for fallback in config.fallback_models:
        typer.echo(f"fallback   {fallback} (from {config.source_of('fallback_models')})")
    for name in sorted(config.models):
        typer.echo(f"configured {name} (from {config.source_of('models', name)})")
    if not resolved.source.startswith(("config", "flag", "env")):  # what the default model is detected from
        for var, present in api_key_status(os.environ).items():
            typer.echo(f"key        {var}: {'present' if present else 'not set'}")
    from loopcraft.models.environment import check_model

    for name in dict.fromkeys([resolved.model, *config.fallback_models, *sorted(config.models)]):
        check = check_model(name, config.model_options(name))  # presence only, never a value
        typer.echo(f"env        {name}: {'ok' if check.ok else 'NOT READY'}: {check.detail}")


# ----- workflows (headless) -------------------------------------------------------------


def _input_hint(pair: str) -> str:
    """The one-line hint for an ``--input`` without ``key=``: a bare name wants a value, anything
    else its input's name."""
    if pair.isidentifier():
        return f"bad --input {pair!r}: inputs are key=value: --input {pair}=VALUE"
    value = pair.removeprefix("=")
    shown = value if value and not any(c.isspace() for c in value) else repr(value or "VALUE")
    return (
        f"bad --input {pair!r}: inputs are key=value, name it: --input NAME={shown} "
        "(`loopcraft workflows` lists each workflow's inputs)"
    )


def _parse_inputs(pairs: list[str]) -> dict[str, Any]:
    inputs: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise LoopcraftError(_input_hint(pair))
        inputs[key.strip()] = value
    return inputs


@app.command("workflows")
@friendly
def workflows_cmd(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List the workflows found in the repo, your home folder and the built-ins."""
    from loopcraft.headless import print_workflows

    root, config = _config()
    run_async(print_workflows(root, config, as_json=as_json))


@app.command("run")
@friendly
def run_cmd(
    workflow: str = typer.Argument(..., help="Workflow name (see `loopcraft workflows`)."),
    inputs: list[str] = typer.Option([], "--input", "-i", help="An input as key=value; repeatable."),
    model: str | None = typer.Option(None, "--model", "-m", help="Default model for the run's stages."),
    as_json: bool = typer.Option(False, "--json", help="Print the final run as JSON instead of progress."),
    budget: str | None = typer.Option(
        None, "--budget", help="Run budget: tokens=N,dollars=D,seconds=S,stages=K."
    ),
    gates: GateMode = typer.Option(
        GateMode.auto,
        "--gates",
        help="Human gates: ask (terminal), wait (for `loopcraft "
        "answer`), stop (end as needs_human); auto = ask with a terminal, else stop.",
    ),
    sandbox: SandboxChoice | None = typer.Option(None, "--sandbox", help=_SANDBOX_HELP),
) -> None:
    """Run a workflow to its end, showing progress; the exit code tells the final status
    (0 completed, 1 failed, 3 blocked, 5 needs_human, 6 budget_exceeded, 7 killed/cancelled)."""
    from loopcraft.agent.sandbox import require_sandbox
    from loopcraft.headless import run_workflow

    root, config = _config(model, _sandbox_option(sandbox))
    require_sandbox(config.agent)
    code = run_async(
        run_workflow(
            root,
            config,
            workflow,
            _parse_inputs(inputs),
            model=model,
            as_json=as_json,
            budget=_parse_budget(budget),
            gates=gates.value,
        )
    )
    raise typer.Exit(code)


def _parse_budget(text: str | None) -> dict[str, Any] | None:
    if not text:
        return None
    from loopcraft.engine.budgets import parse_budget

    return dict(parse_budget(text))


@app.command("resume")
@friendly
def resume_cmd(
    run_id: str = typer.Argument(..., help="The run to resume."),
    as_json: bool = typer.Option(False, "--json", help="Print the final run as JSON."),
    message: str | None = typer.Option(
        None, "--message", help="Steer the stopped stage(s) with this message."
    ),
    budget: str | None = typer.Option(None, "--budget", help="Raise the run's budget: tokens=N,dollars=D,…"),
    gates: GateMode = typer.Option(GateMode.auto, "--gates", help="Human gates (see `run`)."),
    sandbox: SandboxChoice | None = typer.Option(None, "--sandbox", help=_SANDBOX_HELP),
) -> None:
    """Resume a run: a paused run owned by another process is told to continue; a stopped or
    crashed one is replayed here from the journal (completed steps are not re-run)."""
    from loopcraft.agent.sandbox import require_sandbox
    from loopcraft.headless import resume_run

    root, config = _config(sandbox=_sandbox_option(sandbox))
    require_sandbox(config.agent)
    raise typer.Exit(
        run_async(
            resume_run(
                root,
                config,
                run_id,
                as_json=as_json,
                message=message,
                budget=_parse_budget(budget),
                gates=gates.value,
            )
        )
    )


@app.command("runs")
@friendly
def runs_cmd(
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    limit: int = typer.Option(50, "--limit", "-n", min=1, max=MAX_LIMIT, help="How many recent runs."),
    workflow: str | None = typer.Option(None, "--workflow", "-w", help="Only runs of this workflow."),
    status: str | None = typer.Option(None, "--status", help="Only runs in this state (e.g. failed)."),
    since: str | None = typer.Option(
        None, "--since", help="Only runs started within this age: 7d, 12h, 30m."
    ),
) -> None:
    """List recent runs with status, elapsed time and cost."""
    from loopcraft.headless import print_runs

    root, config = _config()
    if workflow or status or since:
        from loopcraft.insight import print_filtered_runs

        run_async(
            print_filtered_runs(
                root, config, as_json=as_json, limit=limit, workflow=workflow, status=status, since=since
            )
        )
        return
    run_async(print_runs(root, config, as_json=as_json, limit=limit))


@app.command("show")
@friendly
def show_cmd(
    run_id: str = typer.Argument(..., help="The run to show (its id, a prefix or its short handle)."),
    stage: str | None = typer.Option(
        None,
        "--stage",
        "-s",
        help="Show this stage's transcript (its path, e.g. 'review > synthesis', or name).",
    ),
    raw: bool = typer.Option(False, "--raw", help="With --stage: print the transcript's JSONL as recorded."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show a run: its stage graph and totals (live while it runs), or one stage's transcript."""
    from loopcraft.headless import show_run

    if raw and stage is None:
        raise LoopcraftError("--raw prints a stage's transcript: add --stage NAME")
    root, config = _config()
    raise typer.Exit(run_async(show_run(root, config, run_id, stage=stage, as_json=as_json, raw=raw)))


# ----- run control (any process; goes through the journal's mailbox) ----------------------------


def _control(
    action: str, run_id: str, stage: str | None = None, message: str | None = None, as_json: bool = False
) -> None:
    from loopcraft.headless import control_run

    root, config = _config()
    raise typer.Exit(
        run_async(control_run(root, config, action, run_id, stage=stage, message=message, as_json=as_json))
    )


_RUN_ARG = typer.Argument(..., help="The run: its id, a unique prefix or its short handle.")
_STAGE_ARG = typer.Argument(..., help="The stage (key or name).")
_STAGE_OPT = typer.Option(None, "--stage", "-s", help="Only this stage (key or name).")
_JSON_OPT = typer.Option(False, "--json", help="Print JSON.")


def _stage_command(action: str, summary: str) -> None:
    """Register ``loopcraft ACTION RUN [--stage S]``: control of a run or one of its stages."""

    @friendly
    def command(run_id: str = _RUN_ARG, stage: str | None = _STAGE_OPT, as_json: bool = _JSON_OPT) -> None:
        _control(action, run_id, stage, as_json=as_json)

    app.command(action, help=summary)(command)


_stage_command("pause", "Pause a run (or one stage) at its next safe point; `loopcraft resume` continues it.")
_stage_command("interrupt", "Cancel the in-flight model call or tool now; the run waits, resumable.")


@app.command("kill")
@friendly
def kill_cmd(run_id: str = _RUN_ARG, as_json: bool = _JSON_OPT) -> None:
    """End a run for good: in-flight work is cancelled and it can never be resumed."""
    _control("kill", run_id, as_json=as_json)


def _mail_command(name: str, action: str, message_help: str, summary: str) -> None:
    """Register ``loopcraft NAME RUN STAGE MESSAGE``: mail for a running stage."""

    @friendly
    def command(
        run_id: str = _RUN_ARG,
        stage: str = _STAGE_ARG,
        message: str = typer.Argument(..., help=message_help),
        as_json: bool = _JSON_OPT,
    ) -> None:
        _control(action, run_id, stage, message, as_json)

    app.command(name, help=summary)(command)


_mail_command(
    "steer",
    "steer",
    "The message, delivered after its current tool batch.",
    "Send a steering message to a running stage.",
)
_mail_command(
    "follow-up",
    "follow_up",
    "The message, given when the stage would stop.",
    "Queue a follow-up message for a running stage.",
)


@app.command("answer")
@friendly
def answer_cmd(
    run_id: str = _RUN_ARG,
    args: list[str] = typer.Argument(
        ..., help="[PROMPT-ID] VALUE (the id may be left out when only one prompt is pending)."
    ),
    as_json: bool = _JSON_OPT,
) -> None:
    """Answer a pending human gate (yes/no, an option or its number, or text)."""
    from loopcraft.headless import answer_prompt

    if len(args) > 2:
        raise LoopcraftError("answer takes RUN [PROMPT-ID] VALUE; quote a value that has spaces")
    prompt_id, value = (args[0], args[1]) if len(args) == 2 else (None, args[0])
    root, config = _config()
    raise typer.Exit(run_async(answer_prompt(root, config, run_id, prompt_id, value, as_json=as_json)))


@app.command("prompts")
@friendly
def prompts_cmd(
    run_id: str | None = typer.Option(None, "--run", "-r", help="Only this run's prompts."),
    as_json: bool = _JSON_OPT,
) -> None:
    """List pending human gates (answer them with `loopcraft answer`)."""
    from loopcraft.headless import print_prompts

    root, config = _config()
    run_async(print_prompts(root, config, run_id=run_id, as_json=as_json))


# ----- triggers and serve (loopcraft/triggers/) ----------------------------------------------


@app.command("event")
@friendly
def event_cmd(
    name: str = typer.Argument(..., help="The event name, e.g. ci-failed or git.post-commit."),
    payload: str | None = typer.Option(None, "--payload", help="The event's data: a JSON object."),
    dedupe: str | None = typer.Option(None, "--dedupe", help="A key: the same key twice records one event."),
    git_hook: str | None = typer.Option(None, "--git-hook", hidden=True, help="Add the commit and paths."),
) -> None:
    """Record an event in the inbox (no daemon needed); `loopcraft serve` turns it into runs."""
    from loopcraft.paths import repo_root
    from loopcraft.triggers.commands import record_event

    typer.echo(record_event(repo_root(), name, payload, dedupe, git_hook))


@app.command("serve")
@friendly
def serve_cmd(
    once: bool = typer.Option(
        False, "--once", help="Drain the inbox, fire what is due, wait for the runs, exit."
    ),
    http: str | None = typer.Option(None, "--http", help="Serve webhooks at HOST:PORT (POST /hooks/NAME)."),
) -> None:
    """Fire the repo's triggers (schedules, file watches, git hooks, webhooks) as runs."""
    from loopcraft.triggers.serve import parse_address, serve

    if http:
        parse_address(http)
    root, config = _config()
    raise typer.Exit(run_async(serve(root, config, once=once, http=http)))


@app.command("hooks")
@friendly
def hooks_cmd(
    action: str = typer.Argument(..., help="install or uninstall."),
    hooks: list[str] = typer.Argument(None, help="Git hooks (default post-commit; uninstall: all)."),
) -> None:
    """Install or remove git hooks that record git.<hook> events (existing hooks are chained)."""
    from loopcraft.paths import repo_root
    from loopcraft.triggers import hooks as git_hooks

    if action not in ("install", "uninstall"):
        raise LoopcraftError(f"unknown action {action!r}: use `loopcraft hooks install` or `uninstall`")
    lines = (git_hooks.install if action == "install" else git_hooks.uninstall)(repo_root(), hooks or [])
    typer.echo("\n".join(lines))


@app.command("triggers")
@friendly
def triggers_cmd(as_json: bool = _JSON_OPT) -> None:
    """List the triggers: next fire time, last event, last run and its status."""
    from loopcraft.triggers.commands import print_triggers

    root, config = _config()
    run_async(print_triggers(root, config, as_json=as_json))


@app.command("events")
@friendly
def events_cmd(
    as_json: bool = _JSON_OPT,
    limit: int = typer.Option(50, "--limit", "-n", min=1, max=MAX_LIMIT, help="How many recent events."),
) -> None:
    """List recent events and what each became (runs, or skips with their reason)."""
    from loopcraft.paths import repo_root
    from loopcraft.triggers.commands import print_events

    print_events(repo_root(), as_json=as_json, limit=limit)


@app.command("inbox")
@friendly
def inbox_cmd(as_json: bool = _JSON_OPT) -> None:
    """Runs started by triggers: needing attention (findings, a gate, a failure) or archived."""
    from loopcraft.triggers.commands import print_inbox

    root, config = _config()
    run_async(print_inbox(root, config, as_json=as_json))


@app.command("skills")
@friendly
def skills_cmd(as_json: bool = _JSON_OPT) -> None:
    """List the skills sessions can load (and the SKILL.md files that were skipped, and why)."""
    from loopcraft.extensions_cli import print_skills

    root, _ = _config()
    print_skills(root, as_json=as_json)


mcp_app = typer.Typer(help="MCP connectors: the servers in [mcp.servers.*].", no_args_is_help=True)
app.add_typer(mcp_app, name="mcp")


@mcp_app.command("list")
@friendly
def mcp_list_cmd(as_json: bool = _JSON_OPT) -> None:
    """Start each configured MCP server once and show its status and tools."""
    from loopcraft.extensions_cli import print_mcp

    root, config = _config()
    print_mcp(root, config, as_json=as_json)


# ----- see and improve your loops: stats, history, fork, diff, replay, eval (logic: loopcraft.insight) --


@app.command("stats")
@friendly
def stats_cmd(
    workflow: str | None = typer.Argument(None, help="Only this workflow (default: every workflow)."),
    since: str | None = typer.Option(None, "--since", help="Only runs started within this age: 7d, 12h."),
    as_json: bool = _JSON_OPT,
) -> None:
    """Run analytics per workflow and stage: completion, scores (mean/std/ICIR), cost, tokens, time."""
    from loopcraft.insight import print_stats

    root, config = _config()
    run_async(print_stats(root, config, workflow, since=since, as_json=as_json))


@app.command("rm")
@friendly
def rm_cmd(
    run_ids: list[str] = typer.Argument(..., help="The runs to remove."),
    as_json: bool = _JSON_OPT,
) -> None:
    """Remove runs with their journal rows, run folders and worktrees (never a running run)."""
    from loopcraft.insight import rm_runs

    root, config = _config()
    run_async(rm_runs(root, config, run_ids, as_json=as_json))


@app.command("gc")
@friendly
def gc_cmd(
    older_than: str = typer.Option("30d", "--older-than", help="Remove runs started before this age."),
    keep_failed: bool = typer.Option(False, "--keep-failed", help="Keep runs that did not complete."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only list what would be removed."),
    as_json: bool = _JSON_OPT,
) -> None:
    """Remove old runs with their folders and worktrees (running runs are always kept)."""
    from loopcraft.insight import gc

    root, config = _config()
    run_async(gc(root, config, older_than, keep_failed=keep_failed, dry_run=dry_run, as_json=as_json))


@app.command("fork")
@friendly
def fork_cmd(
    run_id: str = _RUN_ARG,
    stage: str = typer.Option(..., "--from", help="The stage to run again from (key or name)."),
    model: str | None = typer.Option(None, "--model", "-m", help="Default model for the new run's stages."),
    inputs: list[str] = typer.Option([], "--input", "-i", help="Change an input: key=value; repeatable."),
    as_json: bool = _JSON_OPT,
    gates: GateMode = typer.Option(GateMode.auto, "--gates", help="Human gates (see `run`)."),
) -> None:
    """A new run reusing every step RUN recorded before STAGE, executing from STAGE on."""
    from loopcraft.insight import fork

    root, config = _config(model)
    code = run_async(
        fork(
            root,
            config,
            run_id,
            stage,
            model=model,
            inputs=_parse_inputs(inputs),
            as_json=as_json,
            gates=gates.value,
        )
    )
    raise typer.Exit(code)


@app.command("diff")
@friendly
def diff_cmd(
    run_a: str = typer.Argument(..., help="The first run."),
    run_b: str = typer.Argument(..., help="The second run."),
    as_json: bool = _JSON_OPT,
) -> None:
    """Compare two runs: status, each stage's output, usage."""
    from loopcraft.insight import diff

    root, config = _config()
    run_async(diff(root, config, run_a, run_b, as_json=as_json))


@app.command("eval")
@friendly
def eval_cmd(
    workflow: str = typer.Argument(..., help="The workflow to evaluate."),
    cases: Path = typer.Option(
        ..., "--cases", help='JSONL: one case per line, {"inputs": {…}, "check": "cmd"}.'
    ),
    repeat: int = typer.Option(1, "--repeat", "-k", min=1, max=1000, help="Runs per case."),
    concurrency: int = typer.Option(1, "--concurrency", "-c", min=1, max=64, help="Runs at once."),
    model: str | None = typer.Option(None, "--model", "-m", help="Default model for the runs' stages."),
    baseline: str | None = typer.Option(None, "--baseline", help="A previous eval id to compare with."),
    as_json: bool = _JSON_OPT,
) -> None:
    """Run a workflow over cases K times each; pass rate, ICIR, cost, duration; flags regressions
    against --baseline (exit 1 when one is flagged)."""
    from loopcraft.insight import evaluate

    root, config = _config(model)
    raise typer.Exit(
        run_async(
            evaluate(
                root,
                config,
                workflow,
                cases,
                repeat=repeat,
                concurrency=concurrency,
                model=model,
                baseline=baseline,
                as_json=as_json,
            )
        )
    )


@app.command("replay")
@friendly
def replay_cmd(run_id: str = _RUN_ARG, as_json: bool = _JSON_OPT) -> None:
    """Re-run RUN with its recorded model responses (offline, no tokens); exit 1 naming the first
    stage where the workflow now does something else."""
    from loopcraft.insight import replay

    root, config = _config()
    raise typer.Exit(run_async(replay(root, config, run_id, as_json=as_json)))


# -- issue 13: `loopcraft chat` (headless agent) and `loopcraft promote` (dynamic run → file) -------


class PermissionChoice(StrEnum):
    default = "default"
    accept_edits = "accept-edits"
    plan = "plan"
    yolo = "yolo"


@app.command("chat")
@friendly
def chat_cmd(
    prompt: str | None = typer.Option(None, "--prompt", "-p", help="Run this prompt and print the answer."),
    model: str | None = typer.Option(
        None, "--model", "-m", help="The agent's model: provider/model[:effort]."
    ),
    permissions: PermissionChoice | None = typer.Option(
        None, "--permissions", help="Permission mode; default agent.permission_mode."
    ),
    session: str | None = typer.Option(None, "--session", help="Continue this chat session (id or prefix)."),
    resume_last: bool = typer.Option(False, "--continue", "-c", help="Continue the latest chat session."),
    as_json: bool = typer.Option(
        False, "--json", help="Print one JSON object: answer, session, usage, runs."
    ),
    max_turns: int | None = typer.Option(
        None, "--max-turns", min=1, max=1_000_000, help="At most N model turns."
    ),
) -> None:
    """Talk to the agent: with -p (or a prompt on stdin) run it to completion and print the answer
    (exit 0 completed, 1 failed, 6 budget_exceeded, 7 interrupted); without, open the app."""
    from loopcraft.headless_chat import read_prompt, run_chat

    if session and resume_last:
        raise LoopcraftError("give --session ID or --continue, not both")
    text = read_prompt(prompt)
    if text is None:
        from loopcraft.cli import open_app

        open_app(model)
        return
    root, config = _config(model)
    if max_turns is not None:
        config.agent.max_turns = max_turns
    from loopcraft.headless import preflight_model
    from loopcraft.models.resolve import resolve_model

    notice = preflight_model(root, config, model)
    if notice:
        typer.echo(notice, err=True)
    code = run_async(
        run_chat(
            root,
            config,
            text,
            model=resolve_model(flag=model, config=config).model,
            permissions=permissions.value if permissions else None,
            session_id=session,
            resume_last=resume_last,
            as_json=as_json,
        )
    )
    raise typer.Exit(code)


@app.command("promote")
@friendly
def promote_cmd(
    run_id: str = typer.Argument(..., help="The dynamic run (id, prefix or short handle)."),
    name: str = typer.Argument(..., help="The new workflow's name (.loopcraft/workflows/NAME.py)."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing workflow file."),
) -> None:
    """Turn a dynamic run (the agent's task/chain/parallel) into a workflow file that reruns it."""
    from loopcraft.headless_chat import promote_run

    root, config = _config()
    path = run_async(promote_run(root, config, run_id, name, force=force))
    typer.echo(f"wrote {path}; run it with `loopcraft run {name} --input request=...`")
