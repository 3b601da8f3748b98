"""The "Trust this folder?" question the app asks once, on first start in an untrusted folder: what
trusting allows (its workflow files and config can run code and send keys elsewhere), answered
Trust (recorded through :mod:`loopcraft.trust`) or Not now (this session keeps the restricted
config)."""

from __future__ import annotations

from pathlib import Path

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


class TrustScreen(ModalScreen[bool]):
    """Asks whether ``root`` is trusted; dismissed with True (Trust) or False (Not now, Esc)."""

    DEFAULT_CSS = """
    TrustScreen { align: center middle; }
    TrustScreen > Vertical { width: 76; height: auto; border: thick $warning; padding: 1 2; background: $surface; }
    TrustScreen #trust-title { text-style: bold; }
    TrustScreen #trust-path { color: $accent; margin-bottom: 1; }
    TrustScreen Horizontal { height: auto; margin-top: 1; }
    TrustScreen Button { margin-right: 2; }
    """
    BINDINGS = [Binding("escape", "not_now", "not now")]

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("Trust this folder?", id="trust-title")
            yield Static(str(self.root), id="trust-path", markup=False)
            yield Static(EXPLANATION, id="trust-explanation", markup=False)
            with Horizontal():
                yield Button("Trust", id="trust-yes", variant="warning")
                yield Button("Not now", id="trust-no", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#trust-no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "trust-yes")

    def action_not_now(self) -> None:
        self.dismiss(False)
