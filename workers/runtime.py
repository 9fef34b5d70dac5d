"""The per-process runtime of a worker: built on first use, cached on the Celery app."""

from __future__ import annotations

from celery import Celery

from core.agents import Backends
from core.ground.settings import Settings
from core.storage.redis_client import make_redis
from core.storage.store import Store
from workers.engine import Runtime
from workers.instrumented import InstrumentedBackends

STEP_TASK = "discussion.step"
HUMAN_TURN_TASK = "discussion.human_turn_check"
PARALLEL_TURN_TASK = "discussion.parallel_turn"
RECONCILE_TASK = "discussion.reconcile"


def runtime_for(app: Celery) -> Runtime:
    """This process's Runtime for `app`, made once (after fork, so no socket is shared)."""
    rt = getattr(app, "_orchestrator_runtime", None)
    if rt is None:
        settings: Settings = app.conf.get("orchestrator_settings") or Settings()
        client = make_redis(settings)
        rt = Runtime(
            settings=settings,
            store=Store(client, events_maxlen=settings.events_maxlen),
            backends=InstrumentedBackends(Backends(settings)),  # type: ignore[arg-type]
            enqueue=lambda did: app.send_task(STEP_TASK, args=[did]),
            schedule_check=lambda did, deadline, delay: app.send_task(
                HUMAN_TURN_TASK, args=[did, deadline], countdown=delay),
            dispatch_parallel=lambda did, turn, pid: app.send_task(
                PARALLEL_TURN_TASK, args=[did, turn, pid]),
        )
        app._orchestrator_runtime = rt  # type: ignore[attr-defined]
    return rt
