"""Agent backends wrapped so every call feeds metrics and carries the turn in the logs."""

from __future__ import annotations

import time
from typing import Any

from core.agents import AgentReply, Backends, TurnRequest
from core.ground import logs, metrics
from core.ground.settings import Settings
from workers import accounting


class InstrumentedBackend:
    """Times `generate`, counts errors, tokens and cost; delegates everything else."""

    def __init__(self, inner: Any, settings: Settings) -> None:
        self._inner = inner
        self._settings = settings

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def generate(self, request: TurnRequest) -> AgentReply:
        logs.bind(discussion_id=request.discussion_id, turn=request.turn)
        provider = request.agent.provider or getattr(self._inner, "name", "unknown")
        started = time.perf_counter()
        try:
            reply = self._inner.generate(request)
        except Exception:
            metrics.observe_agent_call(provider, request.agent.model,
                                       time.perf_counter() - started, ok=False)
            raise
        # The engine settles the same way afterwards; settling is idempotent.
        accounting.settle(self._settings, reply, request.agent.model)
        metrics.observe_agent_call(
            provider, reply.model or request.agent.model, time.perf_counter() - started,
            prompt_tokens=reply.prompt_tokens, completion_tokens=reply.completion_tokens,
            cost_usd=reply.cost_usd,
        )
        return reply


class InstrumentedBackends:
    """A Backends whose `get` hands out instrumented backends."""

    def __init__(self, inner: Backends) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def get(self, provider: str) -> Any:
        return InstrumentedBackend(self._inner.get(provider), self._inner.settings)
