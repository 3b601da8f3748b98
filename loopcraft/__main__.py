"""``python -m loopcraft``: same as the ``loopcraft`` console script."""

from loopcraft.cli import entry

entry()
