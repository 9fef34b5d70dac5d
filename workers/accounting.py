"""Token, latency and cost accounting: per message, and totals kept in the usage hash.

Totals are increments applied by the same atomic commit as the message (or the failed turn),
so a turn is counted exactly once however often it is re-run. Scopes: `total`, each
participant id, and `orchestration` for calls the service makes on its own behalf (a
moderator agent's or a selector's choice); `total` includes all of them.
"""

from __future__ import annotations

from typing import Any

from core.agents.base import AgentReply
from core.ground.models import Participant
from core.ground.settings import Settings
from core.ground.usage import TOTAL


def price_usd(settings: Settings, model: str | None, prompt_tokens: int,
              completion_tokens: int) -> float:
    """Cost from the settings' price table (USD per million tokens); 0 for unknown models."""
    prices = settings.model_prices.get(model or "")
    if not prices:
        return 0.0
    return (prompt_tokens * prices.get("prompt", 0.0)
            + completion_tokens * prices.get("completion", 0.0)) / 1_000_000


def settle(settings: Settings, reply: AgentReply, model: str | None) -> AgentReply:
    """Fill in the cost from the price table when the backend reported none."""
    if not reply.cost_usd:
        reply.cost_usd = price_usd(settings, reply.model or model, reply.prompt_tokens,
                                   reply.completion_tokens)
    return reply


def message_metadata(speaker: Participant, reply: AgentReply, *, cached: bool) -> dict[str, Any]:
    """What every agent message carries about its call (every key is in
    core.ground.owned.SERVER_MESSAGE_METADATA_KEYS, so no client can forge one)."""
    meta: dict[str, Any] = {
        "provider": speaker.provider,
        "model": reply.model or speaker.model,
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "latency_ms": round(reply.latency_ms, 3),
        "cost_usd": round(reply.cost_usd, 8),
    }
    if reply.attempts:
        meta["attempts"] = reply.attempts
        meta["retries"] = max(0, reply.attempts - 1)
    if reply.metadata.get("usage_estimated"):
        meta["usage_estimated"] = True  # the backend reported no usage: tokens are estimates
    if cached:
        meta["cached_reply"] = True
    if reply.metadata.get("replying_to"):  # whom the agent answered, when its backend says
        meta["replying_to"] = reply.metadata["replying_to"]
    return meta


def _fields(scope: str, values: dict[str, float]) -> dict[str, float]:
    return {f"{scope}:{k}": v for k, v in values.items() if v}


def increments(scope: str, *, reply: AgentReply | None = None, attempts: int = 0,
               failed: bool = False, message: bool = False) -> dict[str, float]:
    """Usage-hash increments for one call, for its scope and for the discussion's total."""
    calls = max(attempts, reply.attempts if reply else 0, 1)
    values: dict[str, float] = {
        "calls": calls,
        "retries": calls - 1,
        "failures": 1 if failed else 0,
        "messages": 1 if message else 0,
    }
    if reply is not None:
        values.update(prompt_tokens=reply.prompt_tokens,
                      completion_tokens=reply.completion_tokens,
                      cost_usd=reply.cost_usd, latency_ms=reply.latency_ms)
    return {**_fields(scope, values), **_fields(TOTAL, values)}
