"""The Textual app: layout, key bindings, slash-command dispatch, and startup.

Startup stays fast: nothing heavy is imported here at module level. After the first
paint, background workers resolve the model, import litellm and open the engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import events, on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Static

from loopcraft.config_preview import ConfigPreview
from loopcraft.errors import LoopcraftError
from loopcraft.paths import outside_git_note
from loopcraft.trust import is_trusted, trust
from loopcraft.tui import commands
from loopcraft.tui.chat import ChatRenderer, ChatView, CommandEcho, Notice, PermissionPrompt, UserMessage
from loopcraft.tui.chat_session import ChatSession
from loopcraft.tui.gcpolicy import IdleCollector
from loopcraft.tui.palette import SlashCommandProvider
from loopcraft.tui.panes.graph import GraphPane
from loopcraft.tui.panes.prompts import PromptsPane
from loopcraft.tui.panes.runs import RunsPane
from loopcraft.tui.panes.transcript import TranscriptPane
from loopcraft.tui.prompt_input import History, PromptInput, history_path
from loopcraft.tui.statusbar import StatusBar, hint_text, spinner_text
from loopcraft.tui.themes import load_themes, remember_theme
from loopcraft.tui.trust_prompt import TrustScreen

if TYPE_CHECKING:
    from loopcraft.agent.permissions import Answer, PermissionRequest
    from loopcraft.config import Config
    from loopcraft.models.client import ModelClient
    from loopcraft.tui.workflows import WorkflowController

STARTED_AT = time.perf_counter()
ENGINE_OPEN_WAIT_S = 60.0  # how long a /workflow command typed at start-up waits for the engine
TYPEAHEAD_S = 0.3  # keys read this soon after the first frame were typed before it (line mode)
QUIT_AGAIN_S = 2.0  # a second Ctrl+C within this long quits
SPINNER_TICK_S = 0.1


class LoopcraftApp(App[None]):
    """One screen: chat (+ attached transcript) on the left, runs/graph/prompts on the right."""

    CSS_PATH = Path(__file__).with_name("app.tcss")  # absolute: subclasses may live anywhere
    AUTO_FOCUS = "#input"  # from the first frame: keys typed at launch land in the prompt
    TITLE = "loopcraft"
    ENABLE_COMMAND_PALETTE = True
    COMMANDS = {SlashCommandProvider}
    # Every key here says what it does in its tooltip: the F1 panel, /help keys and the README's
    # key table are built from these (loopcraft/tui/keys.py).
    BINDINGS = [
        Binding(
            "ctrl+c",
            "interrupt_or_quit",
            "interrupt",
            show=False,
            priority=True,
            tooltip="interrupt the running turn (or copy the selection); again within 2 s: quit",
        ),
        Binding("ctrl+q", "quit", "quit", show=False, priority=True, tooltip="quit (so does /quit)"),
        Binding(
            "escape",
            "interrupt",
            "interrupt",
            show=False,
            tooltip="in every pane: interrupt the chat's working agent; when it is idle and a "
            "transcript is attached, detach it; on a focused permission prompt: reject",
        ),
        Binding("f1", "show_keys", "keys", show=False, tooltip="show these keys"),
        Binding(
            "ctrl+p",
            "command_palette",
            "palette",
            show=False,
            priority=True,
            tooltip="command palette: every slash command, searchable",
        ),
        Binding("ctrl+b", "toggle_side", "panes", tooltip="show or hide the runs / graph / prompts panes"),
        Binding("f2", "focus_pane('runs')", "runs", show=False, tooltip="focus the runs"),
        Binding("f3", "focus_pane('graph')", "graph", show=False, tooltip="focus the stage graph"),
        Binding(
            "f4",
            "focus_pane('prompts')",
            "prompts",
            show=False,
            tooltip="focus the prompts (the selected run's first, else the only pending one)",
        ),
        Binding("f5", "focus_pane('input')", "input", show=False, tooltip="focus the prompt"),
    ]

    def __init__(
        self,
        root: Path,
        config: Config | None,
        model: str | None = None,
        *,
        client: ModelClient | None = None,
        background: bool = True,
        manage_gc: bool = False,
        preview: ConfigPreview | None = None,
    ) -> None:
        """``config`` None: the first frame uses ``preview`` (read without pydantic) and the
        configuration is loaded and validated right after it (:meth:`_validate_config`)."""
        super().__init__()
        self.root = root
        self.config: Config = config  # type: ignore[assignment]  # None only until the first frame
        self._config_ready = asyncio.Event()  # typed-ahead lines wait for it (see _run_jobs)
        if config is not None:
            self._config_ready.set()
        self.preview = preview or ConfigPreview()
        self.startup_error: LoopcraftError | None = None  # a bad configuration, raised by run_app
        self.model_flag = model
        self.background = background
        self.first_paint_s: float | None = None
        self.first_paint_at: float | None = None
        self.theme_set = load_themes()
        for theme in self.theme_set.themes.values():
            self.register_theme(theme)
        wanted = config.theme if config is not None else self.preview.theme
        name = wanted if wanted in self.available_themes else "loopcraft-dark"
        if name in self.available_themes:
            self._start_with_theme(name)
        configured_model = config.model if config is not None else self.preview.model
        self.chat = ChatSession(
            root,
            config,  # type: ignore[arg-type]  # set with the validated one after the first frame
            model or configured_model or "scripted/demo",
            on_event=self._on_agent_event,
            ask=self._ask_permission,
            client=client,
        )
        self._client = client
        self.workflows: WorkflowController | None = None
        self._engine_ready = asyncio.Event()  # set when the engine opened, or failed to
        self._engine_error: str | None = None
        self._last_turn_tools = -1
        self._jobs: asyncio.Queue[Callable[[], Awaitable[None]]] = asyncio.Queue()
        self.collector = IdleCollector() if manage_gc else None
        self._quit_armed_at: float | None = None  # when Ctrl+C last asked "again to quit"
        self._call_started: float | None = None  # the model call in flight (for the spinner)
        self._call_chars = 0
        self._trust_pending = False  # the "Trust this folder?" question is open
        self._trust_screen: TrustScreen | None = None
        self._which_said: frozenset[str] = frozenset()  # pending prompts F4's "which one" listed

    def _start_with_theme(self, name: str) -> None:
        """Choose the theme before anything is parsed or styled. Setting ``self.theme`` would do
        what its watcher does below and also queue a full CSS refresh (every stylesheet parsed
        a second time, every widget restyled) that lands just before the first frame."""
        self.set_reactive(App.theme, name)
        dark = self.current_theme.dark
        self.update_classes(
            {f"-theme-{name}": True, "-dark-mode": dark, "-light-mode": not dark}, update=False
        )
        self._refresh_truecolor_filter(self.ansi_theme)
        self.stylesheet.set_variables(self.get_css_variables())

    # ----- layout -----------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with Horizontal(id="main"):
            with Vertical(id="left"):
                yield ChatView(id="chat")
                yield TranscriptPane(id="transcript")
            with Vertical(id="side", classes="visible"):  # shown from the first frame (Ctrl+B hides)
                yield RunsPane(id="runs")
                yield GraphPane(id="graph")
                yield PromptsPane(id="prompts")
        yield PromptInput(
            self._completion_values,
            history=History.load(history_path()),
            busy=self._agent_busy,
            id="input",
            placeholder="Ask the agent, or / for commands (F1: keys)",
        )
        yield Static(hint_text(), id="hints")
        yield StatusBar(id="status")

    @property
    def chat_view(self) -> ChatView:
        return self.query_one("#chat", ChatView)

    @property
    def status(self) -> StatusBar:
        return self.query_one("#status", StatusBar)

    @property
    def input(self) -> PromptInput:
        return self.query_one("#input", PromptInput)

    def on_mount(self) -> None:
        for path, error in self.theme_set.errors:
            self.notify(f"theme file {path.name}: {error}", severity="warning")
        mode = self.chat.permission_mode if self.config is not None else self.preview.permission_mode
        self.status.update_info(model=self.chat.model, permission_mode=mode)
        self.input.focus()
        self._run_jobs()
        if self.collector is not None:
            self.set_interval(0.5, self.collector.tick)
        self._spinner = self.set_interval(SPINNER_TICK_S, self._tick_spinner, pause=True)
        self.call_after_refresh(self._after_first_paint)
        if self.config is not None and self.config.serve:
            self._host_triggers()
        note = outside_git_note(self.root)
        if note is not None:  # said once: what will not work outside git
            self.call_later(self.chat_view.add, Notice(note, "warning"))
        if not is_trusted(self.root):
            self._trust_pending = True
            self._trust_screen = TrustScreen(self.root)
            self.push_screen(self._trust_screen, self._trust_answered)

    def _trust_answered(self, trusted: bool | None) -> None:
        """Trust: recorded, and the folder's full config used from now on; Not now: this session
        keeps the restricted one. The engine (which imports workflow files) opens after the answer."""
        self._trust_pending = False
        typed = self._trust_screen.typed.rstrip("\n") if self._trust_screen else ""
        if typed:  # typed while the question was up: kept in the prompt, not lost
            self.input.value = self.input.value + typed
        if trusted:
            trust(self.root)
            try:
                from loopcraft.config import load_config

                self.config = load_config(self.root, flags={"model": self.model_flag})
            except LoopcraftError as exc:
                self.notify(str(exc), severity="error")
            else:
                self.chat.config = self.config
            self.notify(f"trusted {self.root}: its workflows and full config are used")
        else:
            self.notify(
                "not trusted: this session uses only the folder's harmless settings "
                f"(trust it later with `loopcraft trust {self.root}`)",
                severity="warning",
            )
        if self.background and self.first_paint_at is not None:
            self._open_engine()

    def _after_first_paint(self) -> None:
        self.first_paint_at = time.perf_counter()
        self.first_paint_s = self.first_paint_at - STARTED_AT
        if self.config is None and not self._validate_config():
            return
        if self.background:
            self._resolve_model()
            self._load_litellm()
            if not self._trust_pending:  # else after the answer: trusting changes what is imported
                self._open_engine()

    def _validate_config(self) -> bool:
        """Load and validate the configuration the first frame previewed; a bad one ends the app
        (:func:`run_app` raises it: one ``error:`` line, as before the app opens)."""
        from loopcraft.config import load_config

        try:
            config = load_config(self.root, flags={"model": self.model_flag})
        except LoopcraftError as exc:
            self.startup_error = exc
            self.exit(return_code=exc.exit_code)
            return False
        self.config = self.chat.config = config
        self._config_ready.set()
        if not self.chat.running and self.chat.agent is None:
            self.chat.model = self.model_flag or config.model or "scripted/demo"
        if config.theme != self.preview.theme and config.theme in self.available_themes:
            self.theme = config.theme
        self.status.update_info(model=self.chat.model, permission_mode=self.chat.permission_mode)
        if config.serve:
            self._host_triggers()
        return True

    @work(thread=True, exit_on_error=False, group="startup")
    def _load_litellm(self) -> None:
        from loopcraft.models.litellm_loader import load_litellm, warm_litellm

        warm_litellm(load_litellm())  # the first answer then does not wait for litellm's lazy imports
        from loopcraft.tui import markdown  # noqa: F401  (markdown-it and pygments, for the first answer)

        self._freeze_heap()

    @work(thread=True, exit_on_error=False, group="startup")
    def _resolve_model(self) -> None:
        try:
            from loopcraft.models.resolve import resolve_model

            resolved = resolve_model(flag=self.model_flag, config=self.config)
        except LoopcraftError as exc:
            self.call_from_thread(self.notify, str(exc), severity="error")
            return
        self.call_from_thread(self._model_resolved, resolved.model, resolved.notice)

    def _model_resolved(self, model: str, notice: str | None) -> None:
        if not self.chat.running and self.chat.agent is None:
            self.chat.model = model
        self.status.update_info(model=self.chat.model)
        if notice:
            self.call_later(self.chat_view.add, Notice(notice, "warning"))

    @work(exclusive=True, exit_on_error=False, group="engine")
    async def _open_engine(self) -> None:
        try:
            await self.open_workflows()
        except Exception as exc:
            self._engine_error = f"the workflow engine is unavailable: {exc}"
            self._engine_ready.set()
            await self.chat_view.add(Notice(self._engine_error, "warning"))

    async def open_workflows(self, engine: Any = None) -> WorkflowController:
        """Open the engine (or use ``engine``) and wire it to the panes and the agent's tool."""
        from loopcraft.tui.workflows import WorkflowController

        controller = WorkflowController(self, engine)
        await controller.open()
        self.workflows = controller
        self._engine_ready.set()
        self.chat.add_tool(controller.agent_tool())
        self._freeze_heap()
        return controller

    def _freeze_heap(self) -> None:
        """A startup phase has loaded its modules: keep them out of full collections."""
        if self.collector is not None:
            self.collector.freeze()

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key):
            if self.collector is not None:
                self.collector.touched()
            if not event.is_forwarded and not self._trust_pending and self._typing_ahead():
                self._focus_prompt_for_typeahead()
                if event.key == "ctrl+j" and len(self.screen_stack) == 1:  # its \r read as \n (line mode)
                    event = events.Key("enter", "\r")
        await super().on_event(event)

    def _focus_prompt_for_typeahead(self) -> None:
        """A key before anything has the focus (the screen is still mounting) goes to the prompt."""
        if self.focused is not None or self._trust_pending or len(self.screen_stack) != 1:
            return
        try:
            self.screen.set_focus(self.input)
        except Exception:  # not composed yet: the auto-focus will pick the prompt
            pass

    def _typing_ahead(self) -> bool:
        """Are keys still the ones typed before (or just at) the first frame? The terminal was in
        line mode then, so their Enter reads as Ctrl+J: a new line instead of sending the command."""
        if self.first_paint_at is None:
            return True
        return time.perf_counter() - self.first_paint_at < TYPEAHEAD_S

    @work(exclusive=True, exit_on_error=False, group="triggers")
    async def _host_triggers(self) -> None:
        """``serve = true``: fire the repo's triggers while the app is open (the serve lease)."""
        from loopcraft.triggers.serve import hosted_server

        self.trigger_server = hosted_server(self.root, self.config, self.notify)
        try:
            await self.trigger_server.run()
        except LoopcraftError as exc:
            self.notify(f"triggers: {exc}", severity="error")

    async def on_unmount(self) -> None:
        server = getattr(self, "trigger_server", None)
        if server is not None:
            server.stop.set()  # its runs stay resumable
            server.release()  # the lease, at once: the worker may be cancelled before its own clean-up
        if self.workflows is not None:
            await self.workflows.close()

    # ----- input ------------------------------------------------------------------------

    def _completion_values(self) -> dict[str, list[str]]:
        values: dict[str, list[str]] = {"theme": sorted(self.available_themes)}
        if self.workflows is not None:
            values.update(self.workflows.completion_values())
            if self.workflows.engine is not None:
                for info in self.workflows.engine.workflows().list():
                    values[f"inputs:{info.name}"] = list((info.inputs or {}).get("properties") or {})
        configured = (*self.config.models, *self.config.fallback_models) if self.config is not None else ()
        values["model"] = sorted({self.chat.model, *configured})  # config: None until the first frame
        return values

    def _agent_busy(self) -> bool:
        """Is something working that a follow-up would wait for (the chat agent, an attached stage)?"""
        return self.chat.running or (self.workflows is not None and self.workflows.attached is not None)

    @on(PromptInput.Submitted, "#input")
    def _submitted(self, event: PromptInput.Submitted) -> None:
        text = event.value.strip()
        self.input.value = ""
        if not text:
            return
        self.input.prompt_history.add(text)
        self.enqueue(lambda: self.submit(text))

    async def submit(self, text: str) -> None:
        """What Enter does with a line: a command, steering the attached stage, or chat."""
        if text.startswith("/"):
            await self.chat_view.add(CommandEcho(text))
            await self.run_command(text)
        elif self.workflows is not None and self.workflows.attached is not None:
            await self.workflows.steer_attached(text)
        else:
            await self.send_chat(text)

    def enqueue(self, job: Callable[[], Awaitable[None]]) -> None:
        """Run ``job`` after the ones before it, off the app's message queue: a command that
        waits on the engine (kill waits for the run to stop) never holds up the keyboard."""
        self._jobs.put_nowait(job)

    @work(group="jobs", exit_on_error=False)
    async def _run_jobs(self) -> None:
        while True:
            job = await self._jobs.get()
            await self._config_ready.wait()  # a line typed before the first frame: config first
            try:
                await job()
            except LoopcraftError as exc:
                await self.show_error(str(exc))
            except Exception as exc:  # a bug in one command must not stop the next ones
                self.log.error(f"command failed: {exc!r}")
                await self.show_error(f"internal error: {exc!r}")

    @on(PromptInput.Queued)
    async def _queued(self, event: PromptInput.Queued) -> None:
        if self.workflows is not None and self.workflows.attached is not None:
            workflows, text = self.workflows, event.value
            self.enqueue(lambda: workflows.steer_attached(text, follow_up=True))
            return
        try:
            outcome = self.chat.queue(event.value)
        except LoopcraftError as exc:
            await self.show_error(str(exc))
            return
        await self.chat_view.add(UserMessage(event.value, queued=outcome == "queued"))
        self._refresh_status()

    async def send_chat(self, text: str) -> None:
        if self.chat.agent is None and self.background and self.workflows is None and not self._engine_error:
            # the session's agent is made now, with its tools: the workflow tool needs the engine
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._engine_ready.wait(), ENGINE_OPEN_WAIT_S)
        try:
            outcome = self.chat.send(text)
        except LoopcraftError as exc:
            await self.show_error(str(exc))
            return
        await self.chat_view.add(UserMessage(text))
        if outcome == "steered":
            await self.chat_view.add(Notice("steering: delivered after the current tool call"))
        self._refresh_status()

    def action_interrupt(self) -> None:
        prompt = self.focused if isinstance(self.focused, PermissionPrompt) else None
        if prompt is not None:
            return
        if self.chat.interrupt():
            self.status.update_info(state="interrupting…")
        elif self.workflows is not None and self.workflows.attached is not None:
            self.enqueue(self.workflows.detach)  # the agent is idle: Esc goes back to the chat

    async def action_interrupt_or_quit(self) -> None:
        """Ctrl+C: copy a selection; else interrupt the running turn and arm quitting, which a
        second Ctrl+C within ``QUIT_AGAIN_S`` does."""
        selected = self._selected_text()
        if selected:
            self.copy_to_clipboard(selected)
            self.notify("copied", timeout=1.5)
            return
        now = time.monotonic()
        if self._quit_armed_at is not None and now - self._quit_armed_at <= QUIT_AGAIN_S:
            await self.chat.new()
            self.exit()
            return
        self._quit_armed_at = now
        if self.chat.interrupt():
            self.status.update_info(state="interrupting…")
        self.notify("press Ctrl+C again to quit (or Ctrl+Q, /quit)", timeout=QUIT_AGAIN_S)

    def _selected_text(self) -> str:
        focused = self.focused
        if isinstance(focused, PromptInput) and focused.selected_text:
            return focused.selected_text
        try:
            return self.screen.get_selected_text() or ""
        except Exception:  # no screen selection support here
            return ""

    def action_show_keys(self) -> None:
        from loopcraft.tui.keys import KeyPanel

        if not isinstance(self.screen, KeyPanel):
            self.push_screen(KeyPanel())

    @on(PromptInput.KeysWanted)
    def _keys_wanted(self) -> None:
        self.action_show_keys()

    def action_toggle_side(self) -> None:
        self.query_one("#side").toggle_class("visible")

    def show_hints(self, *, attached: bool = False) -> None:
        self.query_one("#hints", Static).update(hint_text(attached=attached))

    def show_side(self) -> None:
        self.query_one("#side").add_class("visible")

    def action_focus_pane(self, name: str) -> None:
        if name != "input":
            self.show_side()
        if name == "prompts" and self.query_one(PromptsPane).pending:
            if self.workflows is None:
                self.query_one(PromptsPane).focus_first()
                return
            try:  # the selected/attached run's prompt, else the only one: its answer widget
                self.workflows.focus_prompt()
            except LoopcraftError as exc:  # several runs waiting, none chosen: say which
                message = str(exc)
                pending = frozenset(self.query_one(PromptsPane).pending)
                if pending != self._which_said:  # once per change of the pending set
                    self._which_said = pending
                    self.enqueue(lambda: self.show_error(message))
                self.query_one(PromptsPane).focus()  # no card armed: y / n answer nothing yet
            return
        target = self.query_one(f"#{name}")
        focusable = (
            target if target.can_focus else next((w for w in target.query("*") if w.can_focus), target)
        )
        focusable.focus()

    # ----- pane messages -------------------------------------------------------------------

    @on(RunsPane.Selected)
    def _run_selected(self, event: RunsPane.Selected) -> None:
        async def select() -> None:
            if self.workflows is not None:
                await self.workflows.select(event.run_id)
                self.action_focus_pane("graph")

        self.enqueue(select)

    @on(GraphPane.Attach)
    def _graph_attach(self, event: GraphPane.Attach) -> None:
        async def attach() -> None:
            await self.run_command(f"/workflow attach {event.run_id} {event.key}")
            self.input.focus()  # typing now steers the stage

        self.enqueue(attach)

    @on(GraphPane.ShowRound)
    def _graph_show_round(self, event: GraphPane.ShowRound) -> None:
        if self.workflows is not None:
            workflows = self.workflows
            self.enqueue(lambda: workflows.show_round(event.run_id, event.key))

    @on(GraphPane.FocusPrompt)
    def _graph_focus_prompt(self, event: GraphPane.FocusPrompt) -> None:
        self.show_side()
        if not self.query_one(PromptsPane).focus_prompt(event.run_id, event.key):
            self.enqueue(lambda: self.show_info("that gate has no pending prompt"))

    @on(PromptsPane.Unpicked)
    def _prompt_unpicked(self) -> None:
        self.enqueue(
            lambda: self.show_error(
                "nothing answered: pick a prompt first (Tab or Enter to a card, or F2 and Enter on its run)"
            )
        )

    @on(PromptsPane.Answer)
    def _prompt_answer(self, event: PromptsPane.Answer) -> None:
        async def answer() -> None:
            if self.workflows is not None:
                await self.workflows.on_prompt_answer(event)

        self.enqueue(answer)

    # ----- agent events and permissions ---------------------------------------------------

    async def _on_agent_event(self, event: Any) -> None:
        kind = getattr(event, "kind", "")
        if kind == "turn_start":
            if self._last_turn_tools == 0 and self.chat.queued:
                self._mark_delivered(self.chat.queued[0])
            self.status.update_info(state="running", model=event.model)
            self._model_call(started=True)
        elif kind == "text_delta":
            self._call_chars += len(event.text)
        elif kind == "turn_end":
            self._last_turn_tools = event.tool_calls
            self._model_call(started=False)
        elif kind == "usage":
            self._refresh_status()
        elif kind == "stopped":
            self._last_turn_tools = -1
            self._model_call(started=False)
            self.status.update_info(state=event.status if event.status != "completed" else "idle")
        await self.renderer.handle(event)

    def _model_call(self, *, started: bool) -> None:
        """Start or stop the status bar's spinner (elapsed time and tokens of the call)."""
        self._call_started = time.monotonic() if started else None
        self._call_chars = 0
        if started:
            self._spinner.resume()
            self._tick_spinner()
        else:
            self._spinner.pause()
            self.status.update_info(activity="")

    def _tick_spinner(self) -> None:
        if self._call_started is None or not self.screen.query("#status"):
            return  # no call, or the app is closing (its widgets are gone; the timer can still fire)
        elapsed = time.monotonic() - self._call_started
        self.status.update_info(activity=spinner_text(elapsed, self._call_chars // 4))

    def _mark_delivered(self, text: str) -> None:
        self.chat.delivered(text)
        for message in self.chat_view.query(UserMessage):
            if message.queued and message.text == text:
                message.delivered()
                break

    @property
    def renderer(self) -> ChatRenderer:
        if not hasattr(self, "_renderer"):
            self._renderer = ChatRenderer(self.chat_view)
        return self._renderer

    async def _ask_permission(self, request: PermissionRequest) -> Answer:
        prompt = PermissionPrompt(
            request.tool, request.subject, request.reason, destructive=request.destructive
        )
        await self.chat_view.add(prompt)
        await self.chat_view.settle()
        self.status.update_info(state="waiting for you")
        prompt.focus()
        self.bell()
        try:
            answer = await prompt.future
        finally:
            if self.focused is None or self.focused is prompt:
                self.input.focus()
            self.status.update_info(state="running")
        return answer  # type: ignore[return-value]

    # ----- status -----------------------------------------------------------------------

    def _refresh_status(self) -> None:
        usage = self.chat.usage
        window = self._context_window()
        last_input = self.chat.context_tokens()
        self.status.update_info(
            model=self.chat.model,
            tokens=usage.total_tokens,
            cost=usage.cost_usd + (self.workflows.total_cost() if self.workflows else 0.0),
            context_pct=100.0 * last_input / window if window else 0.0,
            permission_mode=self.chat.permission_mode,
            queued=len(self.chat.queued),
            state="running" if self.chat.running else "idle",
        )

    def _context_window(self) -> int:
        from loopcraft.models.info import context_window

        configured = self.config.model_options(self.chat.model).context_window
        return context_window(self.chat.model, configured, load=False)

    def refresh_workflow_status(self, active_runs: int, pending_prompts: int) -> None:
        self.status.update_info(active_runs=active_runs, pending_prompts=pending_prompts)
        self._refresh_status()

    # ----- messages in the chat ----------------------------------------------------------

    async def show_error(self, message: str) -> None:
        await self.chat_view.add(Notice(message, "error"))

    async def show_info(self, message: str, kind: str = "info") -> None:
        await self.chat_view.add(Notice(message, kind))

    # ----- slash commands ---------------------------------------------------------------

    async def run_command(self, line: str) -> None:
        try:
            parsed = commands.parse(line)
            handler = getattr(self, "cmd_" + parsed.name.replace(" ", "_"))
            await handler(parsed)
        except LoopcraftError as exc:
            await self.show_error(str(exc))

    async def cmd_help(self, cmd: commands.ParsedCommand) -> None:
        from loopcraft.tui.keys import keys_text

        topic = " ".join(cmd.args) or None
        await self.show_info(commands.help_text(topic, keys_text()), "help")

    async def cmd_quit(self, cmd: commands.ParsedCommand) -> None:
        await self.chat.new()
        self.exit()

    async def cmd_new(self, cmd: commands.ParsedCommand) -> None:
        await self.chat.new()
        await self.chat_view.clear()
        self._renderer = ChatRenderer(self.chat_view)
        await self.show_info("new chat session")
        self._refresh_status()

    async def cmd_sessions(self, cmd: commands.ParsedCommand) -> None:
        if cmd.args:
            session = await self.chat.resume(cmd.args[0])
            await self.show_info(f"resumed session {session.header.id}: the next message continues it")
            self._refresh_status()
            return
        found = self.chat.list()
        if not found:
            await self.show_info("no saved sessions yet")
            return
        lines = [f"{s.id}  {s.messages:>4} msgs  {s.model}  {s.title}" for s in found[:20]]
        await self.show_info("sessions (/sessions ID resumes one):\n" + "\n".join(lines), "help")

    async def cmd_model(self, cmd: commands.ParsedCommand) -> None:
        if not cmd.args:
            await self.show_info(f"model: {self.chat.model}")
            return
        self.chat.switch_model(cmd.args[0])
        await self.show_info(f"model: {self.chat.model}")
        self._refresh_status()

    async def cmd_compact(self, cmd: commands.ParsedCommand) -> None:
        done = await self.chat.compact()
        await self.show_info("history compacted" if done else "nothing to compact")
        self._refresh_status()

    async def cmd_cost(self, cmd: commands.ParsedCommand) -> None:
        usage = self.chat.usage
        lines = [
            f"chat: {usage.input_tokens} in, {usage.output_tokens} out, "
            f"{usage.cache_read_tokens} cache read, {usage.cache_write_tokens} cache write: ${usage.cost_usd:.4f}"
        ]
        if self.workflows is not None:
            lines.append(f"workflow runs: ${self.workflows.total_cost():.4f}")
        await self.show_info("\n".join(lines))

    async def cmd_skills(self, cmd: commands.ParsedCommand) -> None:
        from loopcraft.tui import extensions_view

        if cmd.args:
            await self.show_info(self.chat.preload_skill(cmd.args[0]))
            return
        await self.show_info(extensions_view.skills_text(self.chat), "help")

    async def cmd_memory(self, cmd: commands.ParsedCommand) -> None:
        from loopcraft.tui import extensions_view

        await self.show_info(extensions_view.memory_text(self.chat), "help")

    async def cmd_mcp(self, cmd: commands.ParsedCommand) -> None:
        from loopcraft.tui import extensions_view

        await self.show_info(extensions_view.mcp_text(self.chat), "help")

    async def cmd_permissions(self, cmd: commands.ParsedCommand) -> None:
        if cmd.args:
            self.chat.set_permission_mode(cmd.args[0])
            self._refresh_status()
        await self.show_info(f"permission mode: {self.chat.permission_mode}")

    async def cmd_stats(self, cmd: commands.ParsedCommand) -> None:
        from loopcraft.engine.stats import journal_stats, parse_age
        from loopcraft.tui.stats_view import StatsScreen

        workflow, since = cmd.arg(0), cmd.options.get("since")
        age = parse_age(since) if since else None
        engine = self.workflows.engine if self.workflows is not None else None
        if engine is not None:
            entries = await journal_stats(engine.journal, workflow=workflow, since=age)
        else:
            from loopcraft.engine.service import Engine

            async with await Engine.open(self.root, self.config) as opened:
                entries = await journal_stats(opened.journal, workflow=workflow, since=age)
        title = f"stats: {workflow or 'every workflow'}" + (f", last {since}" if since else "")
        await self.push_screen(StatsScreen(entries, title))

    async def cmd_triggers(self, cmd: commands.ParsedCommand) -> None:
        from loopcraft.triggers.commands import trigger_lines, trigger_rows

        rows, notes = await trigger_rows(self.root, self.config)
        await self.show_info("\n".join([*notes, *trigger_lines(rows)]))

    async def cmd_inbox(self, cmd: commands.ParsedCommand) -> None:
        from loopcraft.triggers.commands import inbox_lines, inbox_rows

        await self.show_info("\n".join(inbox_lines(await inbox_rows(self.root, self.config))))

    async def cmd_theme(self, cmd: commands.ParsedCommand) -> None:
        if not cmd.args:
            names = ", ".join(sorted(n for n in self.available_themes if n.startswith("loopcraft")))
            await self.show_info(f"theme: {self.theme} (loopcraft themes: {names}; any Textual theme works)")
            return
        name = cmd.args[0]
        if name not in self.available_themes:
            usage = commands.get_spec("theme").usage
            raise commands.CommandError(
                f"unknown theme {name!r}: choose one of {', '.join(sorted(self.available_themes))}; usage: {usage}"
            )
        self.theme = name
        path = remember_theme(name)
        await self.show_info(f"theme: {name} (saved to {path})")

    async def _need_workflows(self) -> WorkflowController:
        """The workflow controller; a command typed while the engine is still opening waits
        for it (said in the chat as pending), then runs."""
        if self.workflows is None and self._engine_error is None:
            await self.chat_view.add(
                Notice("waiting for the workflow engine to open… (the command runs when it is)")
            )
            try:
                await asyncio.wait_for(self._engine_ready.wait(), ENGINE_OPEN_WAIT_S)
            except TimeoutError:
                pass
        if self.workflows is None:
            raise LoopcraftError(
                self._engine_error or f"the workflow engine did not open within {ENGINE_OPEN_WAIT_S:g}s"
            )
        return self.workflows

    async def _workflow(self, cmd: commands.ParsedCommand) -> None:
        await (await self._need_workflows()).command(cmd)

    cmd_workflow_list = _workflow
    cmd_workflow_run = _workflow
    cmd_workflow_status = _workflow
    cmd_workflow_attach = _workflow
    cmd_workflow_detach = _workflow
    cmd_workflow_pause = _workflow
    cmd_workflow_resume = _workflow
    cmd_workflow_interrupt = _workflow
    cmd_workflow_kill = _workflow
    cmd_workflow_answer = _workflow
    cmd_workflow_reload = _workflow
    cmd_workflow_promote = _workflow


def run_app(
    root: Path, config: Config | None, model: str | None, preview: ConfigPreview | None = None
) -> None:
    """Run the interactive app in ``root`` (the CLI calls this with no subcommand); with ``config``
    None it is validated after the first frame, and a bad one is raised here once the app ended."""
    app = LoopcraftApp(root, config, model, manage_gc=True, preview=preview)
    if app.collector is not None:
        app.collector.install()
    try:
        app.run()
    finally:
        if app.collector is not None:
            app.collector.uninstall()
    if app.startup_error is not None:
        raise app.startup_error
