"""Thin tasks for operations: beat's tick (schedules, batches, retention) and batch pumps."""

from __future__ import annotations

import logging

import redis
from celery import Celery, Task, shared_task

from core.ground import task_names
from core.operations import batches, retention, schedules
from core.services.context import Services
from core.storage.broker import Dispatcher
from workers.runtime import runtime_for

log = logging.getLogger(__name__)

TRANSIENT = (redis.ConnectionError, redis.TimeoutError)


def services_for(app: Celery) -> Services:
    return runtime_for(app).services()


def _send_pump(app: Celery):
    return Dispatcher(app).batch_pump


@shared_task(name=task_names.OPS_TICK, bind=True, ignore_result=True)
def tick(self: Task) -> dict[str, int]:
    """Fire due schedule slots (each once), pump active batches, sweep expired discussions."""
    svc = services_for(self.app)
    fired = schedules.fire_due(svc)
    pumped = 0
    for batch_id in batches.active_ids(svc):
        if batches.pump(svc, batch_id):
            batches.schedule_next_pump(svc, batch_id, _send_pump(self.app))
        pumped += 1
    swept = 0
    s = svc.settings
    if s.retention_finished_s > 0 and retention.claim_sweep(svc.store,
                                                             s.retention_sweep_interval_s):
        swept = len(retention.sweep(svc.store, s.retention_finished_s))
    return {"fired": len(fired), "batches": pumped, "deleted": swept}


@shared_task(name=task_names.BATCH_PUMP, bind=True, ignore_result=True, autoretry_for=TRANSIENT,
             retry_backoff=True, max_retries=10)
def pump(self: Task, batch_id: str) -> str:
    """Refill a batch's running slots; schedules the next pump while the batch is active."""
    svc = services_for(self.app)
    active = batches.pump(svc, batch_id)
    if active:
        batches.schedule_next_pump(svc, batch_id, _send_pump(self.app))
    return f"batch={batch_id} active={active}"
