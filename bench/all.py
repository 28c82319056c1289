"""`make bench`: every benchmark, one after the other, each printing its own tables."""

from __future__ import annotations

import importlib
import sys
import time

BENCHMARKS = [
    "cold_start",
    "scan_scale",
    "org_scale",
    "mission_overhead",
    "checkpoint_size",
    "package_size",
    "api_latency",
    "console_bundle",
    "analyst",
    "load",
]


def main(argv: list[str] | None = None) -> int:
    names = (argv if argv is not None else sys.argv[1:]) or BENCHMARKS
    failed = []
    for name in names:
        print(f"\n# bench.{name}", flush=True)
        started = time.perf_counter()
        status = importlib.import_module(f"bench.{name}").main([])
        print(f"(bench.{name}: {time.perf_counter() - started:.0f} s)", flush=True)
        if status:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
