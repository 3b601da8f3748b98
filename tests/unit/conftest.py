"""Fixtures shared by the unit tests of the stage agent runner and run control."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from loopcraft.engine.journal import Journal


@pytest.fixture
async def journal(tmp_path: Path) -> AsyncIterator[Journal]:
    """A real journal file holding one running run, ``r1``."""
    journal = await Journal.open(tmp_path / "loopcraft.db")
    await journal.create_run("r1", "wf", {}, status="running")
    yield journal
    await journal.close()
