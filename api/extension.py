"""The app's collaborators (Redis, store, dispatcher, stream hub), made lazily, kept on it."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import redis
from flask import Flask, current_app
from kombu.exceptions import OperationalError

from core.ground.settings import Settings
from core.services.discussions import Services
from core.storage.redis_client import make_redis
from core.storage.store import Store

log = logging.getLogger(__name__)

STEP_TASK = "discussion.step"
HUB_CLIENT_NAME = "orchestrator-stream-hub"  # the one stream-reading connection per process


class Orchestrator:
    """Flask extension holding this process's Redis client, store, Celery producer and hub."""

    def __init__(
        self,
        app: Flask,
        settings: Settings,
        *,
        redis_client: redis.Redis | None = None,
        dispatch: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings
        self._redis = redis_client
        self._dispatch = dispatch
        self._celery: Any = None
        self._hub: Any = None
        self._store: Store | None = None
        self._backends: Any = None
        self._lock = threading.Lock()
        app.extensions["orchestrator"] = self

    @property
    def redis(self) -> redis.Redis:
        if self._redis is None:
            with self._lock:
                if self._redis is None:
                    self._redis = make_redis(self.settings)
        return self._redis

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = Store(self.redis, events_maxlen=self.settings.events_maxlen)
        return self._store

    def dispatch(self, discussion_id: str) -> None:
        """Enqueue a step for the discussion.

        The change that needs the step is already committed when this runs, so a broker that
        cannot take the message does not fail the request: the reconciler re-enqueues the
        discussion once it has not moved for `reconcile_stale_s`.
        """
        try:
            if self._dispatch is not None:
                self._dispatch(discussion_id)
            else:
                self.celery.send_task(STEP_TASK, args=[discussion_id])
        except (OperationalError, redis.ConnectionError, redis.TimeoutError) as exc:
            log.warning("enqueueing a step for %s failed (%s); the reconciler will retry",
                        discussion_id, exc)

    @property
    def celery(self) -> Any:
        if self._celery is None:
            with self._lock:
                if self._celery is None:
                    from workers.celery_app import create_celery

                    self._celery = create_celery(self.settings)
        return self._celery

    @property
    def backends(self) -> Any:
        if self._backends is None:
            with self._lock:
                if self._backends is None:
                    from core.agents import Backends

                    self._backends = Backends(self.settings)
        return self._backends

    def validate_agent(self, participant: Any) -> None:
        self.backends.validate(participant)

    def register_agent(self, discussion_id: str, participant: Any) -> str | None:
        """Create the agent on its backend (Execution Platform agents get an instance id)."""
        return self.backends.register(discussion_id, participant)

    @property
    def hub(self) -> Any:
        if self._hub is None:
            with self._lock:
                if self._hub is None:
                    from api.hub import StreamHub

                    self._hub = StreamHub(
                        lambda: make_redis(self.settings, blocking_timeout_s=1.0,
                                           client_name=HUB_CLIENT_NAME),
                        queue_size=self.settings.ws_viewer_queue,
                    )
        return self._hub

    def services(self) -> Services:
        return Services(
            settings=self.settings,
            store=self.store,
            validate_agent=self.validate_agent,
            dispatch=self.dispatch,
            register_agent=self.register_agent,
        )


def ext() -> Orchestrator:
    """The current app's Orchestrator extension."""
    return current_app.extensions["orchestrator"]
