"""Run the fault scenarios and print what each found: `python -m tests.faults [name ...]`."""

from __future__ import annotations

import sys

from tests.faults import recovery, scenarios

# The shortened-budget scenarios, then the default-settings recovery ones (p50/max figures).
ALL = {**scenarios.ALL, **recovery.ALL}


def main(argv: list[str]) -> int:
    names = argv or list(ALL)
    unknown = [n for n in names if n not in ALL]
    if unknown:
        print(f"unknown scenario(s) {unknown}; choose from {list(ALL)}", file=sys.stderr)
        return 2
    failed = 0
    for name in names:
        report = ALL[name]()
        print(report.line(), flush=True)
        failed += not report.ok
    print(f"{len(names) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
