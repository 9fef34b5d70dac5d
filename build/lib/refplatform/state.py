"""The reference platform's memory: agents, call counts and the last request of each turn."""

from __future__ import annotations

import itertools
import random
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from refplatform.faults import Faults


@dataclass
class Agent:
    agent_id: str
    config: dict[str, Any]
    faults: dict[str, Any] = field(default_factory=dict)


class PlatformState:
    """Thread-safe in-process state; `reset()` clears everything but the agents."""

    def __init__(self, faults: Faults | None = None, seed: int | None = None) -> None:
        self._lock = threading.Lock()
        self.faults = faults or Faults()
        self.rng = random.Random(seed)
        self.agents: dict[str, Agent] = {}
        self._by_idem: dict[str, str] = {}
        self._ids = itertools.count(1)
        self.calls: Counter[str] = Counter()
        self.requests: dict[str, dict[str, Any]] = {}

    def register(self, config: dict[str, Any], faults: dict[str, Any],
                 idempotency_key: str | None) -> tuple[Agent, bool]:
        """A new agent, or the one already made under the same Idempotency-Key (created=False)."""
        with self._lock:
            if idempotency_key and idempotency_key in self._by_idem:
                return self.agents[self._by_idem[idempotency_key]], False
            agent = Agent(f"inst_{next(self._ids):06d}", config, faults)
            self.agents[agent.agent_id] = agent
            if idempotency_key:
                self._by_idem[idempotency_key] = agent.agent_id
            return agent, True

    def count(self, key: str, request: dict[str, Any] | None = None) -> int:
        """Count one call under `key`; the call's number (1 = first)."""
        with self._lock:
            self.calls[key] += 1
            if request is not None:
                self.requests[key] = request
            return self.calls[key]

    def roll(self) -> float:
        with self._lock:
            return self.rng.random()

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self.requests.clear()
            self.faults = Faults()
