"""Print the figures each fault scenario found at the end of the pytest run."""

from __future__ import annotations

from typing import Any


def pytest_terminal_summary(terminalreporter: Any) -> None:
    from tests.faults.scenarios import PRINTED

    if PRINTED:
        terminalreporter.section("fault figures")
        for line in PRINTED:
            terminalreporter.write_line(line)
