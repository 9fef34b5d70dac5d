"""Run every bench and print one table: `python -m bench` (or `--quick` for a smoke run).

Each section starts its own private redis-server and processes and stops them afterwards.
Targets are ratios to figures measured in the same run (see docs/performance.md).
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import sys
import time

from bench import autogen_bench
from bench.harness import Row, print_table
from bench.sections import (
    FULL,
    QUICK,
    fanout,
    http,
    io_bound,
    memory,
    redis_rate,
    stored,
    throughput,
    wait_cost,
)

SECTIONS = {"a": throughput, "c": io_bound, "d": fanout, "e": http, "f": redis_rate,
            "g": stored, "h": memory, "w": wait_cost}


def machine() -> str:
    model = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        mem = next(int(x.split()[1]) for x in open("/proc/meminfo") if x.startswith("MemTotal"))
    except (OSError, StopIteration):
        mem = 0
    return (f"{os.cpu_count()} CPUs ({model}), {mem / 1024 / 1024:.0f} GB RAM, "
            f"Python {platform.python_version()}")


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true",
                        help="tiny shapes: a smoke run in seconds, figures meaningless")
    parser.add_argument("--only", default="acdefghw",
                        help="sections to run, e.g. 'ad' (a includes b)")
    parser.add_argument("--no-autogen", action="store_true",
                        help="skip AutoGen (otherwise installed into bench/.venv-autogen)")
    args = parser.parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so every section stops its Redis and processes.
    signal.signal(signal.SIGTERM, _interrupted)
    signal.signal(signal.SIGINT, _interrupted)
    shapes = QUICK if args.quick else FULL
    autogen = not args.no_autogen
    if autogen and "a" in args.only:
        if args.quick and not autogen_bench.venv_python().exists():
            autogen = False  # a smoke run never installs anything
        else:
            autogen_bench.ensure_venv()
    rows: list[Row] = []
    started = time.monotonic()
    for key in args.only:
        if key not in SECTIONS:
            parser.error(f"unknown section {key!r}")
        print(f"running {key} ...", file=sys.stderr, flush=True)
        rows += SECTIONS[key](shapes, autogen) if key == "a" else SECTIONS[key](shapes)
    print(f"machine: {machine()}; took {time.monotonic() - started:.0f} s")
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
