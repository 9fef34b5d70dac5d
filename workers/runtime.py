"""The I/O a step uses (`Runtime`), and the per-process runtime of a worker: built on first
use, cached on the Celery app."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from celery import Celery

from core.agents import Backends
from core.ground.models import Message
from core.ground.settings import Settings
from core.services.context import Services, build_services
from core.storage.broker import Dispatcher
from core.storage.redis_client import make_redis
from core.storage.store import Snapshot, Store
from protocols import BaseProtocol, Speak
from workers import leases as leases_mod
from workers.instrumented import InstrumentedBackends
from workers.leases import LeaseKeeper


@dataclass
class Runtime:
    """The I/O a step uses, passed in so tests can hand in real or fake parts."""

    settings: Settings
    store: Store
    backends: Backends
    enqueue: Callable[[str], None]
    clock: Callable[[], float] = time.monotonic
    on_turn: Callable[[str, Message], None] | None = field(default=None)
    # Schedules the deadline check of a person's turn: (discussion id, deadline ISO, delay s).
    schedule_check: Callable[[str, str, float], None] | None = field(default=None)
    wall_clock: Callable[[], float] = time.time
    # Sends one agent's answer of a simultaneous round to a task: (discussion id, turn, agent id).
    dispatch_parallel: Callable[[str, int, str], None] | None = field(default=None)
    # Keeps this process's leases alive and releases those failures left (made if not given).
    leases: LeaseKeeper | None = field(default=None)
    # What a lease taken by this process records as its owner (workers.leases.owner).
    owner: Callable[[], str] = field(default=leases_mod.owner)

    def __post_init__(self) -> None:
        if self.leases is None:
            self.leases = LeaseKeeper(self.settings, self.store, self.enqueue)

    def services(self) -> Services:
        """The service context for the same settings, store, backends and dispatcher."""
        return build_services(self.settings, self.store, self.enqueue, backends=self.backends)


@dataclass
class StepContext:
    """What one step works on: the runtime, the discussion, the lease token that fences its
    writes (0 for a parallel answer, which writes only its cached reply), the running snapshot
    the step keeps current, and the discussion's protocol."""

    rt: Runtime
    did: str
    token: int
    snap: Snapshot
    protocol: BaseProtocol


@dataclass(frozen=True)
class BegunTurn:
    """A turn that a commit already announced (`turn_started`), so the next `speak` need not:
    the turn, the Speak predicted for it, and its cached reply if an earlier attempt got one."""

    turn: int
    action: Speak
    cached: dict[str, Any] | None = None


def runtime_for(app: Celery) -> Runtime:
    """This process's Runtime for `app`, made once (after fork, so no socket is shared)."""
    rt = getattr(app, "_orchestrator_runtime", None)
    if rt is None:
        settings: Settings = app.conf.get("orchestrator_settings") or Settings()
        client = make_redis(settings)
        send = Dispatcher(app)
        rt = Runtime(
            settings=settings,
            store=Store(client, events_maxlen=settings.events_maxlen,
                        wait_replicas=settings.redis_wait_replicas,
                        wait_timeout_ms=settings.redis_wait_timeout_ms),
            backends=InstrumentedBackends(Backends(settings)),  # type: ignore[arg-type]
            enqueue=send.step,
            schedule_check=send.human_turn_check,
            dispatch_parallel=send.parallel_turn,
        )
        app._orchestrator_runtime = rt  # type: ignore[attr-defined]
    return rt
