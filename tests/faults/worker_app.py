"""The Celery app the fault tests run as real worker processes: the production app, observed.

`celery -A tests.faults.worker_app worker ...` is `workers.main` plus two counters in Redis, so
a test can see what no production code reports: how often each step message ran (a redelivery
runs it twice) and how often the agent was called for each turn. With
FAULT_VISIBILITY_TIMEOUT_S set it also shortens the broker's visibility timeout below what the
settings validator allows, to force Celery to redeliver steps that are still running.
"""

from __future__ import annotations

import os
from typing import Any

import redis
from celery.signals import task_prerun

from core.ground.settings import Settings
from core.ground.task_names import STEP as STEP_TASK
from core.storage.redis_client import make_redis
from workers.celery_app import create_celery
from workers.runtime import runtime_for

STEP_RUNS = "faults:step_runs"  # hash task id -> times a worker started it
AGENT_CALLS = "faults:agent_calls"  # hash "discussion:turn" -> agent calls

app = create_celery()

_short_vt = os.environ.get("FAULT_VISIBILITY_TIMEOUT_S")
if _short_vt:
    app.conf.broker_transport_options = {
        **app.conf.broker_transport_options,
        "visibility_timeout": float(_short_vt),
        "unacked_restore_interval": 1,
        "unacked_restore_throttle": 1,
    }

_client: redis.Redis | None = None


def _redis() -> redis.Redis:
    global _client
    if _client is None:
        # The service's own client: it follows the primary when the run uses Sentinel.
        _client = make_redis(Settings())
    return _client


class CountingBackend:
    """Wraps a backend and counts its calls per turn before making them."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self.costly = inner.costly

    def validate(self, agent: Any) -> None:
        self.inner.validate(agent)

    def register(self, discussion_id: str, agent: Any) -> Any:
        return self.inner.register(discussion_id, agent)

    def generate(self, request: Any) -> Any:
        _redis().hincrby(AGENT_CALLS, f"{request.discussion_id}:{request.turn}", 1)
        return self.inner.generate(request)


@task_prerun.connect
def _observe(sender: Any = None, task_id: str | None = None, **_: Any) -> None:
    if sender is None or sender.name != STEP_TASK:
        return
    try:
        _redis().hincrby(STEP_RUNS, task_id or "?", 1)
    except redis.RedisError:
        pass  # Redis is down in the restart scenario; the step will fail and retry anyway
    rt = runtime_for(sender.app)
    if not getattr(rt, "_counting", False):
        original = rt.backends.get
        rt.backends.get = lambda provider: CountingBackend(original(provider))  # type: ignore
        rt._counting = True  # type: ignore[attr-defined]
