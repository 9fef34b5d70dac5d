"""Thin Celery tasks: take ids, call the engine, schedule what comes next."""

from __future__ import annotations

import logging

import redis
from celery import Task, shared_task
from celery.exceptions import SoftTimeLimitExceeded
from kombu.exceptions import OperationalError

from core.ground import logs, task_names
from workers import engine, human_turns, parallel, recovery
from workers.runtime import Runtime, runtime_for

log = logging.getLogger(__name__)

# Lost connections to Redis (state or broker) are transient: retry the whole step, which is
# idempotent (fenced lease, turn-keyed commits).
TRANSIENT = (redis.ConnectionError, redis.TimeoutError, OperationalError)
# Every turn-running task: acknowledged after it ran, retried with jittered backoff on transient
# Redis/broker errors (safe: each is idempotent, fenced by lease and turn).
RETRYING = {
    "bind": True,
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": TRANSIENT,
    "retry_backoff": True,
    "retry_backoff_max": 30,
    "retry_jitter": True,
    "max_retries": 10,
}


@shared_task(name=task_names.STEP, **RETRYING)
def step(self: Task, discussion_id: str) -> str:
    """Run one slice of a discussion's turns; enqueue the next slice when work is left."""
    rt = runtime_for(self.app)
    try:
        outcome = engine.run_step(rt, discussion_id)
    except SoftTimeLimitExceeded:
        # The engine's deadlines should prevent this; the lease is released, so try again.
        # A turn that keeps timing out is failed by the attempts cap, not retried forever.
        log.warning("step of %s hit the soft time limit; re-enqueued", discussion_id)
        _enqueue(rt, discussion_id)
        return "timeout"
    if outcome == engine.Outcome.MORE:
        _enqueue(rt, discussion_id)
    # Flower shows this result: the outcome, the discussion and the last agent turn it ran.
    turn = logs.current().get("turn")
    return f"{outcome.value} {discussion_id}" + (f" turn={turn}" if turn is not None else "")


def _enqueue(rt: Runtime, discussion_id: str) -> None:
    """Enqueue the next step; if the broker refuses, as soon as it takes it again (the step
    itself is done: retrying it would only find its work done)."""
    try:
        rt.enqueue(discussion_id)
    except TRANSIENT as exc:
        log.warning("enqueueing the next step of %s failed (%s); sent when the broker answers",
                    discussion_id, exc)
        if rt.leases is None:
            raise
        rt.leases.enqueue_later(discussion_id)


@shared_task(name=task_names.HUMAN_TURN_CHECK, **RETRYING)
def human_turn_check(self: Task, discussion_id: str, deadline: str) -> str:
    """At a person's turn deadline: apply the discussion's timeout policy (idempotent)."""
    return human_turns.check(runtime_for(self.app), discussion_id, deadline)


@shared_task(name=task_names.PARALLEL_TURN, **RETRYING)
def parallel_turn(self: Task, discussion_id: str, turn: int, participant_id: str) -> str:
    """One agent's answer in a simultaneous round; the batch's last answer wakes a step."""
    return parallel.run_parallel_turn(runtime_for(self.app), discussion_id, turn,
                                      participant_id)


@shared_task(name=task_names.RECONCILE, bind=True, acks_late=True, ignore_result=True)
def reconcile(self: Task) -> dict[str, int]:
    """Beat's recovery sweep: runs only if no worker swept this interval (workers.recovery)."""
    done = recovery.sweep_if_claimed(self.app)
    return done.summary() if done is not None else {}
