"""Celery's settings, as flat lowercase names, derived from the one Settings object.

`build(settings)` is what the app factory loads; nothing is read at import time. The time
limits follow the chain the settings validate: agent call < turn < slice < soft limit < hard
limit < visibility timeout, so a redelivery never races a step that is still allowed to run.
"""

from __future__ import annotations

from typing import Any

from core.ground import task_names
from core.ground.settings import Settings


def build(settings: Settings) -> dict[str, Any]:
    """Celery configuration for these settings."""
    vt = settings.broker_visibility_timeout_s
    return {
        "broker_url": settings.broker_url,
        "broker_connection_retry_on_startup": True,
        # Keep reconnecting through a Redis outage of any length instead of exiting.
        "broker_connection_max_retries": None,
        "broker_transport_options": {
            "visibility_timeout": vt,
            # Sweep for abandoned (unacknowledged, past the visibility timeout) messages often
            # enough that a killed worker's step comes back soon after the timeout; kombu's
            # default scans only every ~100 s.
            "unacked_restore_interval": max(1, min(10, int(vt / 10))),
            "unacked_restore_throttle": 1,
            "socket_timeout": settings.redis_socket_timeout_s,
            "socket_connect_timeout": settings.redis_connect_timeout_s,
            "max_connections": settings.broker_max_connections,
            **_sentinel_options(settings),
        },
        # Steps never wait on other tasks' results, so none are stored.
        "task_ignore_result": True,
        "result_backend": None,
        # At-least-once: acknowledge after the step ran; a lost worker's step is redelivered.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        # A failed or timed-out step is acknowledged: its failure is recorded on the discussion,
        # and a step that timed out re-enqueues itself (bounded by step_max_attempts).
        "task_acks_on_failure_or_timeout": True,
        # Steps running when the broker connection drops are redelivered; cancel them rather
        # than let both copies run (Celery 6's default; fencing makes either choice safe).
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        "task_soft_time_limit": settings.step_soft_time_limit_s,
        "task_time_limit": settings.step_time_limit_s,
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_default_queue": "steps",
        "worker_hijack_root_logger": False,
        # Flower enables the workers' task events when it runs; see Settings.celery_task_events.
        "worker_send_task_events": settings.celery_task_events,
        "task_send_sent_event": settings.celery_task_events,
        "timezone": "UTC",
        "enable_utc": True,
        # One static entry, so it works with the default scheduler and with RedBeat alike.
        # `expires` drops sweeps that queued up behind a backlog or an outage: the next one
        # does the same work.
        "beat_schedule": {
            "reconcile-discussions": {
                "task": task_names.RECONCILE,
                "schedule": settings.reconcile_interval_s,
                "options": {"expires": settings.reconcile_interval_s},
            },
        },
    }


def _sentinel_options(settings: Settings) -> dict[str, Any]:
    """kombu's Sentinel transport options, when the broker is reached through Sentinel."""
    if not settings.broker_url.startswith("sentinel://"):
        return {}
    timeout = settings.redis_connect_timeout_s
    return {"master_name": settings.redis_sentinel_master,
            "sentinel_kwargs": {"socket_timeout": timeout, "socket_connect_timeout": timeout}}
