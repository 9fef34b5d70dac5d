"""gunicorn hooks for Prometheus multiprocess mode (`gunicorn -c python:api.gunicorn_conf`).

The master clears stale sample files before forking; each exiting worker's live gauges are
dropped so `orchestrator_websocket_connections` counts only running processes.
"""

from __future__ import annotations

from typing import Any

from core import metrics


def on_starting(server: Any) -> None:
    metrics.reset_multiproc_dir()


def child_exit(server: Any, worker: Any) -> None:
    metrics.mark_dead(worker.pid)
