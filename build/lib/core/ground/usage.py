"""Reading the usage hash (`discussion:{id}:usage`): fields are `{scope}:{metric}`."""

from __future__ import annotations

from core.ground.models import Usage, UsageTotals

TOTAL = "total"
ORCHESTRATION = "orchestration"
_FLOATS = {"cost_usd", "latency_ms"}


def _totals(values: dict[str, float]) -> UsageTotals:
    return UsageTotals(**{k: (round(v, 8) if k in _FLOATS else int(v)) for k, v in values.items()})


def parse_usage(raw: dict[str, str]) -> Usage:
    """Totals per discussion, per participant and for the orchestration's own calls."""
    scopes: dict[str, dict[str, float]] = {}
    for key, value in raw.items():
        scope, _, metric = key.rpartition(":")
        if scope and metric in UsageTotals.model_fields:
            scopes.setdefault(scope, {})[metric] = float(value)
    return Usage(
        total=_totals(scopes.pop(TOTAL, {})),
        orchestration=_totals(scopes.pop(ORCHESTRATION, {})),
        participants={pid: _totals(v) for pid, v in sorted(scopes.items())},
    )
