"""Text gates answered in the user's editor, as ``git commit`` does: ``$VISUAL`` or ``$EDITOR``
opened on a temporary file holding the default text (through click's ``edit``)."""

from __future__ import annotations

import os

import click

from loopcraft.errors import LoopcraftError

NO_EDITOR = "no editor: set $VISUAL or $EDITOR (e.g. EDITOR=nano)"


class EditorError(LoopcraftError):
    """No editor is set, or the editor failed; the gate cannot be answered here."""


def editor_command() -> str | None:
    """The editor command line the user chose (``$VISUAL``, then ``$EDITOR``), or None."""
    for var in ("VISUAL", "EDITOR"):
        value = os.environ.get(var, "").strip()
        if value:
            return value
    return None


def edit_text(default: str) -> str:
    """The text the user leaves in their editor, started on ``default``; quitting without
    saving keeps ``default``. EditorError when no editor is set or it fails."""
    editor = editor_command()
    if editor is None:
        raise EditorError(NO_EDITOR)
    try:
        text = click.edit(default, editor=editor, require_save=False, extension=".md")
    except click.ClickException as exc:
        raise EditorError(f"editor {editor!r} failed: {exc.format_message()}") from None
    return default if text is None else text
