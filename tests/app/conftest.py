"""Fixtures shared by the TUI's pilot tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from loopcraft.models.scripted import load_script, register_script, unregister_script
from loopcraft.paths import PACKAGE_DIR


@pytest.fixture
def fast_demo_model() -> Iterator[None]:
    """The built-in demo script without its streaming pace, so tests stay quick."""
    script = load_script(PACKAGE_DIR / "models" / "scripts" / "demo.yaml")
    register_script("demo", script.model_copy(update={"pace": 0.0}))
    yield
    unregister_script("demo")
