"""The Ctrl+P command palette's provider: every slash command, from the same registry as
``/help`` and Tab completion (``commands.COMMANDS``). Choosing one that takes no arguments runs
it; choosing one that does puts it in the prompt, ready for its arguments."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from textual.command import DiscoveryHit, Hit, Hits, Provider

from loopcraft.tui.commands import COMMANDS, CommandSpec

if TYPE_CHECKING:
    from loopcraft.tui.app import LoopcraftApp


class SlashCommandProvider(Provider):
    """Slash commands for the command palette."""

    def _choose(self, spec: CommandSpec) -> None:
        app: LoopcraftApp = self.app  # type: ignore[assignment]
        line = f"/{spec.name}"
        if spec.min_args == 0 and spec.max_args == 0:
            app.enqueue(lambda: app.submit(line))
            return
        app.input.value = line + " "
        app.input.focus()

    async def discover(self) -> Hits:
        for spec in COMMANDS:
            yield DiscoveryHit(spec.usage, partial(self._choose, spec), help=spec.help)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for spec in COMMANDS:
            score = max(matcher.match(spec.usage), matcher.match(spec.help) * 0.5)
            if score > 0:
                yield Hit(score, matcher.highlight(spec.usage), partial(self._choose, spec), help=spec.help)
