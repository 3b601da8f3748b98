"""TUI figures, measured the way a person meets them: the real app in a pseudo-terminal.

- time to first paint: from spawning ``python -m loopcraft`` to the first frame on the
  terminal (the input's placeholder appears), median of 5;
- keypress-to-screen latency while 16 stages stream (one of them attached): from writing a
  key to the terminal to the typed text appearing in the app's output, p50/p95/max;
- a 10,000-message transcript: time to attach to a stage with one, and to append 10,000
  messages to the chat one by one; live memory after both (tracemalloc, after a gc) and
  how many blocks stay mounted.

Prints ``name: value`` lines.
"""

from __future__ import annotations

import asyncio
import fcntl
import gc
import os
import re
import select
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

COLS, ROWS = 160, 45
ANSI = re.compile(
    rb"\x1b\[[0-9;?<>=]*[ -/]*[@-~]|\x1b[PX^_].*?\x1b\\|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]"
)

BENCH_WORKFLOW = """
from loopcraft import Context, workflow

@workflow(description="16 streaming stages")
async def bench16(ctx: Context) -> str:
    results = await ctx.parallel(*[ctx.spec(f"stream-{i}", prompt="stream", model="scripted/bench")
                                   for i in range(16)], concurrency=16)
    return str(len(results))
"""

# 19,200 characters in 8-character chunks every 10 ms: each stage streams for ~24 s.
BENCH_SCRIPT = "pace: 0.01\nchunk_size: 8\ndefault:\n  - text: '" + "streaming words " * 1200 + "'\n"

LATENCY_APP = """
import asyncio, sys, time
from pathlib import Path
from loopcraft.config import Config
from loopcraft.tui.app import LoopcraftApp

status = Path(sys.argv[2])

class BenchApp(LoopcraftApp):
    def _after_first_paint(self):
        super()._after_first_paint()
        self.run_worker(self._bench())

    async def _bench(self):
        while self.workflows is None:  # the app's own startup: model, litellm, engine
            await asyncio.sleep(0.05)
        controller = self.workflows
        run_id = await controller.run("bench16", {})
        nodes = lambda: controller.graphs[run_id].nodes.values()
        while sum(n.status == "running" and n.kind == "task" for n in nodes()) < 16:
            await asyncio.sleep(0.05)
        last_delta = {}

        def seen(event):
            if event.type == "stage_event" and getattr(event.event, "kind", "") == "text_delta":
                last_delta[event.key] = time.monotonic()

        controller.engine.bus.subscribe(seen)
        await controller.attach(run_id, "stream-0")
        self.input.focus()
        while True:
            now = time.monotonic()
            status.write_text(f"streaming {sum(now - t < 0.5 for t in last_delta.values())}")
            await asyncio.sleep(0.2)

app = BenchApp(Path(sys.argv[1]), Config(), "scripted/demo", manage_gc=True)
app.collector.install()
app.run()
"""


class PtyApp:
    """A child process on a pseudo-terminal; a thread collects its output with timestamps."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str]) -> None:
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            args, cwd=cwd, env=env, stdin=slave, stdout=slave, stderr=slave, start_new_session=True
        )
        os.close(slave)
        self.fd = master
        self.chunks: list[tuple[float, bytes]] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                ready, _, _ = select.select([self.fd], [], [], 0.5)
                if not ready:
                    if self.proc.poll() is not None:
                        return
                    continue
                data = os.read(self.fd, 65536)
            except OSError:
                return
            if not data:
                return
            with self._lock:
                self.chunks.append((time.perf_counter(), data))

    def text_since(self, since: float) -> bytes:
        with self._lock:
            raw = b"".join(data for stamp, data in self.chunks if stamp >= since)
        return ANSI.sub(b"", raw)

    def wait_for(self, check: Callable[[bytes], bool], since: float, timeout: float = 30.0) -> float:
        """The arrival time of the first output chunk after which the output since ``since``
        satisfies ``check`` (output is scanned as it arrives, with escape codes stripped)."""
        deadline = time.perf_counter() + timeout
        index, raw = 0, b""
        while time.perf_counter() < deadline:
            with self._lock:
                fresh = self.chunks[index:]
            index += len(fresh)
            for stamp, data in fresh:
                if stamp < since:
                    continue
                raw += data
                if check(ANSI.sub(b"", raw)):
                    return stamp
            if self.proc.poll() is not None:
                raise RuntimeError(f"the app exited: {self.text_since(0)[-2000:]!r}")
            time.sleep(0.0005)
        raise TimeoutError(f"screen never matched; last output: {self.text_since(since)[-500:]!r}")

    def send(self, data: bytes) -> float:
        stamp = time.perf_counter()
        os.write(self.fd, data)
        return stamp

    def close(self) -> None:
        try:
            os.write(self.fd, b"\x11")  # ctrl+q
            self.proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        os.close(self.fd)


def _repo() -> Path:
    root = Path(tempfile.mkdtemp(prefix="bench-tui-")) / "repo"
    root.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    return root


def _env() -> dict[str, str]:
    """The app's environment: a fresh home, no Ollama probe, and bytecode caching on as for any user
    (some sandboxes set PYTHONDONTWRITEBYTECODE, which would recompile loopcraft on every launch)."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    return {
        **env,
        "LOOPCRAFT_HOME": tempfile.mkdtemp(),
        "LOOPCRAFT_NO_OLLAMA_PROBE": "1",
        "TERM": "xterm-256color",
        "COLORTERM": "truecolor",
    }


def first_paint(runs: int = 5) -> tuple[float, float]:
    """Median seconds from spawning ``python -m loopcraft`` to its first frame, and the
    median time ``python -c 'import loopcraft.cli'`` takes (the CLI's share, before the TUI)."""
    samples = []
    for run in range(runs + 1):  # the first launch only warms the bytecode cache
        app = PtyApp([sys.executable, "-m", "loopcraft"], _repo(), _env())
        try:
            shown = app.wait_for(lambda text: b"Ask the agent" in text, 0.0)
            if run:
                samples.append(shown - app.started)
        finally:
            app.close()
    cli = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import loopcraft.cli"], check=True, env=_env())
        cli.append(time.perf_counter() - started)
    return statistics.median(samples), statistics.median(cli)


def keypress_latency(presses: int = 60) -> tuple[list[float], str]:
    root = _repo()
    (root / ".loopcraft" / "workflows").mkdir(parents=True)
    (root / ".loopcraft" / "workflows" / "bench16.py").write_text(BENCH_WORKFLOW)
    (root / ".loopcraft" / "scripts").mkdir(parents=True)
    (root / ".loopcraft" / "scripts" / "bench.yaml").write_text(BENCH_SCRIPT)
    status = root.parent / "status"
    app = PtyApp([sys.executable, "-c", LATENCY_APP, str(root), str(status)], root, _env())
    latencies: list[float] = []
    try:
        deadline = time.monotonic() + 60
        while not (status.is_file() and status.read_text() == "streaming 16"):
            if time.monotonic() > deadline or app.proc.poll() is not None:
                raise RuntimeError(f"the 16 stages never all streamed: {app.text_since(0)[-1000:]!r}")
            time.sleep(0.05)
        time.sleep(0.5)
        alphabet = "zqxjvkyubcfhlp"  # letters the streamed text never contains
        typed = ""
        for index in range(presses):
            typed += alphabet[(index * 5) % len(alphabet)]
            want = typed[-10:].encode()
            sent = app.send(typed[-1].encode())
            shown = app.wait_for(lambda text, want=want: want in text, sent, timeout=20)
            latencies.append(shown - sent)
            time.sleep(0.03)
        still = status.read_text()
    finally:
        app.close()
    return latencies, still


async def transcript_memory(messages: int = 10_000, *, trace: bool = False) -> dict[str, float]:
    """Attach to a stage whose transcript has ``messages`` messages, then append as many to
    the chat one by one (as events arrive in a burst); time both, or (``trace``) measure
    memory with tracemalloc, which slows everything down."""
    from loopcraft.config import Config
    from loopcraft.tui.app import LoopcraftApp
    from loopcraft.tui.chat import AssistantMessage, UserMessage
    from loopcraft.tui.panes.transcript import TranscriptPane

    def text(index: int) -> str:
        return f"question {index}" if index % 2 == 0 else f"answer **{index}**\n\n- a list item\n- `code`"

    entries = [
        {"type": "message", "message": {"role": "user" if i % 2 == 0 else "assistant", "content": text(i)}}
        for i in range(messages)
    ]
    app = LoopcraftApp(_repo(), Config(), "scripted/demo", background=False)
    async with app.run_test(size=(COLS, ROWS)) as pilot:
        await pilot.pause()
        if trace:
            tracemalloc.start()
        started = time.perf_counter()
        pane = app.query_one(TranscriptPane)
        await pane.attach("run-1", "root/0:task:long", entries, "completed")
        await pane.view.settle()
        await pilot.pause()
        attach_s = time.perf_counter() - started
        started = time.perf_counter()
        for index in range(messages):
            widget = UserMessage(text(index)) if index % 2 == 0 else AssistantMessage(text(index))
            await app.chat_view.add(widget)
        await app.chat_view.settle()
        await pilot.pause()
        append_s = time.perf_counter() - started
        gc.collect()  # widgets form reference cycles: what is left after a collection is what is kept
        current, peak = tracemalloc.get_traced_memory() if trace else (0, 0)
        tracemalloc.stop()
        mounted = len(app.chat_view.children) + len(pane.view.children)
    return {
        "attach_s": attach_s,
        "append_s": append_s,
        "live_mb": current / 1e6,
        "peak_mb": peak / 1e6,
        "mounted": mounted,
    }


def main() -> None:
    paint, cli = first_paint()
    print(
        f"time to first paint: {paint * 1000:.0f} ms median of 5 (after one warm-up launch), from spawning `python -m loopcraft` "
        f"(target < 400 ms; `import loopcraft.cli` alone takes {cli * 1000:.0f} ms)"
    )
    latencies, still = keypress_latency()
    latencies.sort()
    p95 = latencies[int(len(latencies) * 0.95) - 1]
    print(
        f"keypress-to-screen latency, 16 stages streaming, one attached: p50 "
        f"{statistics.median(latencies) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms, max {latencies[-1] * 1000:.1f} ms "
        f"(target p95 < 50 ms; {still} stages at the end)"
    )
    traced, timed = asyncio.run(transcript_memory(trace=True)), asyncio.run(transcript_memory())
    memory = {**timed, "live_mb": traced["live_mb"], "peak_mb": traced["peak_mb"]}
    print(
        f"10,000-message transcript: attached in {memory['attach_s']:.2f} s; 10,000 messages appended "
        f"to the chat in {memory['append_s']:.2f} s; {memory['live_mb']:.1f} MB live after both, "
        f"{memory['peak_mb']:.1f} MB peak (tracemalloc; live = after a gc); {memory['mounted']:.0f} blocks mounted"
    )


if __name__ == "__main__":
    main()
