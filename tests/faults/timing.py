"""Recovery times of a fault scenario: from each fault to the first new commit and to the end."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field


@dataclass
class Recovery:
    """Seconds from each fault to the first commit after it and to all its discussions done."""

    first_commit_s: list[float] = field(default_factory=list)
    complete_s: list[float] = field(default_factory=list)

    def add(self, first_commit_s: float, complete_s: float) -> None:
        self.first_commit_s.append(round(first_commit_s, 2))
        self.complete_s.append(round(complete_s, 2))

    @property
    def worst_first_commit_s(self) -> float:
        return max(self.first_commit_s, default=float("inf"))

    def figures(self) -> dict[str, object]:
        """p50 and max of both, and every fault's figure, for the report line."""
        def p50(xs: list[float]) -> float:
            return round(statistics.median(xs), 2) if xs else float("nan")

        return {
            "faults": len(self.first_commit_s),
            "first_commit_p50_s": p50(self.first_commit_s),
            "first_commit_max_s": max(self.first_commit_s, default=float("nan")),
            "complete_p50_s": p50(self.complete_s),
            "complete_max_s": max(self.complete_s, default=float("nan")),
            "first_commit_each_s": ",".join(str(x) for x in self.first_commit_s),
        }
