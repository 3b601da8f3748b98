"""Markdown as a static rich renderable for chat blocks: cheap to keep mounted, drawn
once per width. Imported lazily (markdown-it and pygments load on first use), and
preloaded in the background after the first paint."""

from __future__ import annotations

from typing import ClassVar

from rich.markdown import Heading, Markdown, MarkdownElement
from rich.text import Text


class _LeftHeading(Heading):
    """Headings aligned left, as in the rest of the chat (rich centers h1)."""

    LEVEL_ALIGN: ClassVar = dict.fromkeys(("h1", "h2", "h3", "h4", "h5", "h6"), "left")


class ChatMarkdown(Markdown):
    elements: ClassVar[dict[str, type[MarkdownElement]]] = {**Markdown.elements, "heading_open": _LeftHeading}


def render(text: str) -> Markdown | Text:
    """``text`` as markdown (code in the terminal's own ANSI colours, so every theme fits)."""
    if not text:
        return Text("")
    return ChatMarkdown(text, code_theme="ansi_dark", inline_code_theme="ansi_dark")
