"""Startup stays light: with the demo model, litellm is not imported before the first paint;
a background worker thread imports it afterwards (loopcraft/tui/app.py, module docstring).
Checked in a fresh interpreter, since the test process may already hold litellm."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli_process import run_python

PROBE = r"""
import asyncio, json, os, sys, threading, time
from importlib.abc import MetaPathFinder

seen = {}


class Watch(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "litellm" and not seen:
            thread = threading.current_thread()
            seen.update(at=time.perf_counter(), main=thread is threading.main_thread(), thread=thread.name)
        return None


sys.meta_path.insert(0, Watch())
from pathlib import Path

from loopcraft.config import load_config
from loopcraft.tui.app import LoopcraftApp


async def main():
    app = LoopcraftApp(Path(sys.argv[1]), load_config(Path(sys.argv[1])), "scripted/demo")
    out = {"after_construct": "litellm" in sys.modules}
    async with app.run_test(size=(120, 40)) as pilot:
        while app.first_paint_at is None:
            await pilot.pause(0.01)
        deadline = time.monotonic() + 60
        while "litellm" not in sys.modules and time.monotonic() < deadline:
            await pilot.pause(0.05)
        out["later"] = "litellm" in sys.modules
        out["first_paint_at"] = app.first_paint_at
        out["import"] = seen
        print(json.dumps(out), flush=True)
        os._exit(0)  # the import itself may go on for seconds: what matters is when and where it began


asyncio.run(main())
"""


def test_litellm_is_imported_by_a_worker_after_the_first_paint(git_repo: Path) -> None:
    done = run_python(PROBE, str(git_repo), cwd=git_repo, timeout=90)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["after_construct"] is False  # building the app (and importing it) does not load litellm
    assert out["later"] is True  # ... but a background worker starts it after the first paint
    assert out["import"]["at"] >= out["first_paint_at"], out
    assert out["import"]["main"] is False, out  # in a thread: the event loop never blocks on it
