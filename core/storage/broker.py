"""The Celery producer: a configured app that sends tasks by name and registers none.

The API, beat's tasks and the workers all send through `Dispatcher`; only the worker app
(workers/celery_app.py) adds the task implementations and the worker hooks on top.
"""

from __future__ import annotations

from celery import Celery

import celeryconfig
from core.ground import task_names
from core.ground.settings import Settings
from core.storage.redis_client import cache_lib_version


def make_celery(settings: Settings) -> Celery:
    """A Celery app configured from settings, with no tasks of its own."""
    cache_lib_version()  # the broker's connections are redis-py connections too
    app = Celery("orchestrator", set_as_current=False)
    app.conf.update(celeryconfig.build(settings))
    app.conf.orchestrator_settings = settings
    return app


class Dispatcher:
    """Every task this service sends, by name, with its arguments."""

    def __init__(self, app: Celery) -> None:
        self.app = app

    def step(self, discussion_id: str) -> None:
        self.app.send_task(task_names.STEP, args=[discussion_id])

    def human_turn_check(self, discussion_id: str, deadline: str, delay_s: float) -> None:
        self.app.send_task(task_names.HUMAN_TURN_CHECK, args=[discussion_id, deadline],
                           countdown=delay_s)

    def parallel_turn(self, discussion_id: str, turn: int, participant_id: str) -> None:
        self.app.send_task(task_names.PARALLEL_TURN, args=[discussion_id, turn, participant_id])

    def batch_pump(self, batch_id: str, delay_s: float = 0.0) -> None:
        self.app.send_task(task_names.BATCH_PUMP, args=[batch_id],
                           countdown=delay_s or None)
