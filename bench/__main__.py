"""Run every benchmark module in this folder and print its figures (``make bench``)."""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys
import time
import traceback
from pathlib import Path


def main() -> int:
    # Benches build their own temp repos: trust them, as a user trusts their own checkout.
    os.environ.setdefault("LOOPCRAFT_TRUST", "1")
    only = set(sys.argv[1:])
    names = sorted(
        m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]) if m.name.startswith("bench_")
    )
    failed = 0
    for name in names:
        if only and name.removeprefix("bench_") not in only and name not in only:
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
