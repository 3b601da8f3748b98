"""Test doubles shared across areas: the loopback OpenAI-compatible server and its fixture.

Use the fixture by importing it into a test module (``from tests.fakes import openai_server``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.openai_server import OpenAIServer

__all__ = ["OpenAIServer", "openai_server"]


@pytest.fixture
def openai_server() -> Iterator[OpenAIServer]:
    """A started loopback server; stopped after the test."""
    with OpenAIServer() as server:
        yield server
