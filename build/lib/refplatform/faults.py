"""Injectable faults of the reference Execution Platform.

Set globally (command-line flags, `PUT /faults`) and per agent (`params.faults` at
registration) or per request (`faults` in an OpenAI-style body); the narrower setting wins
field by field. Each call first waits `latency_ms` (+ up to `jitter_ms`), then faults when it
is among the first `fail_first` calls of its agent and turn, or with probability `error_rate`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

MODES = ("500", "502", "503", "429", "400", "malformed", "empty", "hang")


class FaultError(ValueError):
    """A fault setting that does not make sense."""


@dataclass(frozen=True)
class Faults:
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    error_rate: float = 0.0
    error_mode: str = "500"
    fail_first: int = 0
    retry_after_s: float = 1.0
    hang_s: float = 30.0
    chunk_delay_ms: float = 0.0

    def merged(self, overrides: dict[str, Any] | None) -> Faults:
        """These faults with `overrides` applied (validated)."""
        if not overrides:
            return self
        return replace(self, **check(overrides))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


_TYPES = {f.name: f.type for f in fields(Faults)}


def check(raw: Any) -> dict[str, Any]:
    """Validated fault fields from JSON; FaultError names the first bad one."""
    if not isinstance(raw, dict):
        raise FaultError("faults must be a JSON object")
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in _TYPES:
            raise FaultError(f"unknown fault {key!r}; known: {', '.join(_TYPES)}")
        if key == "error_mode":
            if str(value) not in MODES:
                raise FaultError(f"error_mode must be one of {', '.join(MODES)}")
            out[key] = str(value)
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise FaultError(f"{key} must be a non-negative number")
        if key == "error_rate" and value > 1:
            raise FaultError("error_rate must be between 0 and 1")
        out[key] = int(value) if key == "fail_first" else float(value)
    return out
