"""Run every benchmark module in this folder and print its figures (``make bench``).

``python -m bench NAME …`` runs only those; ``--help`` prints the usage line listing the benches
(exit 0) and an unknown name is one line naming it (exit 2), before any bench runs.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys
import time
import traceback
from pathlib import Path


def bench_names() -> list[str]:
    """The benches in this folder, by the name ``python -m bench NAME`` takes (``engine``)."""
    folder = str(Path(__file__).parent)
    return sorted(
        m.name.removeprefix("bench_") for m in pkgutil.iter_modules([folder]) if m.name.startswith("bench_")
    )


def usage(names: list[str]) -> str:
    return f"usage: python -m bench [NAME ...]  (runs every bench, or only NAMEs: {', '.join(names)})"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    benches = bench_names()
    if any(a in ("-h", "--help") for a in args):
        print(usage(benches))
        return 0
    only = {a.removeprefix("bench_") for a in args}
    unknown = sorted(only - set(benches))
    if unknown:
        print(f"error: unknown bench {', '.join(unknown)}; benches: {', '.join(benches)}", file=sys.stderr)
        return 2
    # Benches build their own temp repos: trust them, as a user trusts their own checkout.
    os.environ.setdefault("LOOPCRAFT_TRUST", "1")
    names = [f"bench_{name}" for name in benches]
    failed = 0
    for name in names:
        if only and name.removeprefix("bench_") not in only:
            continue
        print(f"== {name.removeprefix('bench_')}", flush=True)
        started = time.perf_counter()
        try:
            importlib.import_module(f"bench.{name}").main()
        except Exception:
            failed += 1
            traceback.print_exc()
        print(f"   ({time.perf_counter() - started:.1f} s)", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
