"""The worker's Celery app: the producer app (core.storage.broker) plus our task
implementations and the worker hooks. Only worker processes (and beat) build it."""

from __future__ import annotations

from celery import Celery

from core.ground.settings import Settings
from core.storage.broker import make_celery
from workers import beat_tasks, hooks, tasks


def create_celery(settings: Settings | None = None) -> Celery:
    """A Celery app configured from settings, with our tasks registered."""
    app = make_celery(settings or Settings())
    # Reconnects to the broker within a second of it answering again (workers/consumer.py).
    app.conf.worker_consumer = "workers.consumer:QuickReconnectConsumer"
    # The task modules define shared tasks; naming them here registers them with this app.
    for module in (tasks, beat_tasks):
        app.loader.import_task_module(module.__name__)
    hooks.install(app)
    return app
