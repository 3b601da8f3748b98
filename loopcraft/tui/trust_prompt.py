"""The "Trust this folder?" question the app asks once, on first start in an untrusted folder: what
trusting allows (its workflow files and config can run code and send keys elsewhere), answered
Trust (recorded through :mod:`loopcraft.trust`) or Not now (this session keeps the restricted
config).

Trusting is never an accident of typing: no button is focused when the question opens (Enter
decides nothing), Ctrl+T trusts, Esc means Not now, and Tab then Enter (or a click) answers with
the focused button. Every printable key is text: what is typed while the question is up is kept
(shown under the question) and handed to the prompt after the answer."""

from __future__ import annotations

from pathlib import Path

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

EXPLANATION = (
    "Trusting it lets this folder run code: its .loopcraft/workflows files are imported, and its "
    ".loopcraft/config.toml may set api_base, headers, api_key_env, MCP servers, hooks, triggers "
    "and looser permissions. Until then only its harmless settings are used."
)
KEYS = "Ctrl+T: Trust · Esc: Not now · Tab then Enter: the focused button · what you type is kept"


class TrustScreen(ModalScreen[bool]):
    """Asks whether ``root`` is trusted; dismissed with True (Trust) or False (Not now, Esc)."""

    DEFAULT_CSS = """
    TrustScreen { align: center middle; }
    TrustScreen > Vertical { width: 76; height: auto; border: thick $warning; padding: 1 2; background: $surface; }
    TrustScreen #trust-title { text-style: bold; }
    TrustScreen #trust-path { color: $accent; margin-bottom: 1; }
    TrustScreen Horizontal { height: auto; margin-top: 1; }
    TrustScreen Button { margin-right: 2; }
    TrustScreen #trust-keys { color: $text-muted; margin-top: 1; }
    TrustScreen #trust-typed { color: $accent; }
    """
    AUTO_FOCUS = ""  # no default button (None would mean the app's "*"): Enter must not answer
    BINDINGS = [Binding("escape", "not_now", "not now"), Binding("ctrl+t", "trust", "trust")]

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root
        self.typed = ""  # keys typed while the question is up, for the prompt afterwards

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("Trust this folder?", id="trust-title")
            yield Static(str(self.root), id="trust-path", markup=False)
            yield Static(EXPLANATION, id="trust-explanation", markup=False)
            with Horizontal():
                yield Button("Trust", id="trust-yes", variant="warning")
                yield Button("Not now", id="trust-no", variant="primary")
            yield Static(KEYS, id="trust-keys", markup=False)
            yield Static("", id="trust-typed", markup=False)

    def on_key(self, event: events.Key) -> None:
        """Keep typing (and Enter, which only ends the typed line) for the prompt; never answer."""
        if isinstance(self.focused, Button) and event.key in ("enter", "space"):
            return  # a button chosen with Tab: Enter presses it
        key, char = event.key, event.character
        if key == "ctrl+t":
            event.stop()
            event.prevent_default()
            self.dismiss(True)
            return
        if "+" in key and key != "shift+enter":
            return  # a key with a modifier (a binding's), never text
        if key == "backspace":
            self.typed = self.typed[:-1]
        elif key != "enter" and (char is None or not char.isprintable()):
            return
        elif key != "enter":
            self.typed += char or ""
        event.stop()
        event.prevent_default()
        if key == "enter" and self.typed and not self.typed.endswith("\n"):
            self.typed += "\n"
        shown = self.typed.rstrip("\n").replace("\n", " ⏎ ")
        self.query_one("#trust-typed", Static).update(
            f"kept for the prompt: {shown}  (answer with Ctrl+T or Esc first)" if shown else ""
        )

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "trust-yes")

    def action_not_now(self) -> None:
        self.dismiss(False)

    def action_trust(self) -> None:
        self.dismiss(True)
