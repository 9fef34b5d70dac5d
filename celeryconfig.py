"""Celery's settings, as flat lowercase names, derived from the one Settings object.

`build(settings)` is what the app factory loads; nothing is read at import time. The time
limits follow the chain the settings validate: agent call < turn < slice < soft limit < hard
limit < visibility timeout, so a redelivery never races a step that is still allowed to run.
"""

from __future__ import annotations

from typing import Any

from core.settings import Settings


def build(settings: Settings) -> dict[str, Any]:
    """Celery configuration for these settings."""
    return {
        "broker_url": settings.broker_url,
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": {
            "visibility_timeout": settings.broker_visibility_timeout_s,
            "socket_timeout": settings.redis_socket_timeout_s,
            "socket_connect_timeout": settings.redis_connect_timeout_s,
            "max_connections": settings.broker_max_connections,
        },
        # Steps never wait on other tasks' results, so none are stored.
        "task_ignore_result": True,
        "result_backend": None,
        # At-least-once: acknowledge after the step ran; a lost worker's step is redelivered.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_soft_time_limit": settings.step_soft_time_limit_s,
        "task_time_limit": settings.step_time_limit_s,
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_default_queue": "steps",
        "worker_hijack_root_logger": False,
        "worker_send_task_events": True,
        "task_send_sent_event": True,
        "timezone": "UTC",
        "enable_utc": True,
    }
