"""The app's collaborators (Redis, store, dispatcher, stream hub), made lazily, kept on it."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import redis
from flask import Flask, current_app
from kombu.exceptions import OperationalError

from api.hub import StreamHub
from core.agents import Backends
from core.ground.settings import Settings
from core.services.context import Services, build_services
from core.storage.broker import Dispatcher, make_celery
from core.storage.redis_client import make_redis
from core.storage.store import Store

log = logging.getLogger(__name__)

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
        self._sender: Dispatcher | None = None
        self._hub: StreamHub | None = None
        self._store: Store | None = None
        self._backends: Backends | None = None
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
            self._store = Store(self.redis, events_maxlen=self.settings.events_maxlen,
                                wait_replicas=self.settings.redis_wait_replicas,
                                wait_timeout_ms=self.settings.redis_wait_timeout_ms)
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
                self.sender.step(discussion_id)
        except (OperationalError, redis.ConnectionError, redis.TimeoutError) as exc:
            log.warning("enqueueing a step for %s failed (%s); the reconciler will retry",
                        discussion_id, exc)

    @property
    def sender(self) -> Dispatcher:
        """Sends tasks by name; the API never loads the worker app or its tasks."""
        if self._sender is None:
            with self._lock:
                if self._sender is None:
                    self._sender = Dispatcher(make_celery(self.settings))
        return self._sender

    @property
    def backends(self) -> Backends:
        if self._backends is None:
            with self._lock:
                if self._backends is None:
                    self._backends = Backends(self.settings)
        return self._backends

    @property
    def hub(self) -> StreamHub:
        if self._hub is None:
            with self._lock:
                if self._hub is None:
                    self._hub = StreamHub(
                        lambda: make_redis(self.settings, blocking_timeout_s=1.0,
                                           client_name=HUB_CLIENT_NAME),
                        queue_size=self.settings.ws_viewer_queue,
                    )
        return self._hub

    def services(self) -> Services:
        return build_services(self.settings, self.store, self.dispatch,
                              backends=self.backends)


def ext() -> Orchestrator:
    """The current app's Orchestrator extension."""
    return current_app.extensions["orchestrator"]
