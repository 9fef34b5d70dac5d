"""Operations wiring for the API: request ids and log context, HTTP metrics, `/metrics`."""

from __future__ import annotations

import threading
import time
import uuid

import redis
from flask import Flask, Response, current_app, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry

from api.extension import ext
from core.ground import logs, metrics
from core.ground.settings import Settings
from core.operations.monitoring import OpsCollector
from core.storage.redis_client import make_redis

REQUEST_ID_HEADER = "X-Request-ID"


class Ops:
    """Per-app operational collaborators: the broker client (when apart from the state Redis)."""

    def __init__(self, app: Flask, settings: Settings) -> None:
        self.settings = settings
        self._broker: redis.Redis | None = None
        self._lock = threading.Lock()
        app.extensions["ops"] = self

    @property
    def broker(self) -> redis.Redis | None:
        """A client on the broker's Redis, or None when the broker is the state Redis."""
        s = self.settings
        if not s.celery_broker_url:
            return None
        if self._broker is None:
            with self._lock:
                if self._broker is None:
                    self._broker = make_redis(s.model_copy(update={"redis_url": s.broker_url}))
        return self._broker


def ops() -> Ops:
    return current_app.extensions["ops"]


def _request_id() -> str:
    given = request.headers.get(REQUEST_ID_HEADER, "")
    if 1 <= len(given) <= 128 and given.isprintable() and " " not in given:
        return given
    return uuid.uuid4().hex


def _before() -> None:
    g.started = time.perf_counter()
    g.request_id = _request_id()
    did = (request.view_args or {}).get("discussion_id")
    logs.bind(request_id=g.request_id, discussion_id=did, turn=None)


def _after(response: Response) -> Response:
    response.headers[REQUEST_ID_HEADER] = g.get("request_id", "")
    started = g.get("started")
    if started is not None and request.endpoint != "static":
        route = request.url_rule.rule if request.url_rule else "<unmatched>"
        metrics.observe_http(request.method, route, response.status_code,
                             time.perf_counter() - started)
    return response


def _teardown(_exc: BaseException | None) -> None:
    logs.clear()


def metrics_view() -> Response:
    """Prometheus exposition: this instance's processes plus gauges read from Redis."""
    orch = ext()
    scrape = CollectorRegistry(auto_describe=False)
    scrape.register(OpsCollector(orch.redis, ops().broker or orch.redis,
                                 orch.settings.worker_heartbeat_ttl_s))
    try:
        body = metrics.render(scrape)
    except (redis.ConnectionError, redis.TimeoutError):
        body = metrics.render()  # the process's own series still scrape while Redis is down
    return Response(body, mimetype=CONTENT_TYPE_LATEST)


def install(app: Flask, settings: Settings) -> None:
    """Add request ids, log context and HTTP metrics to every request; serve `/metrics`."""
    Ops(app, settings)
    app.before_request(_before)
    app.after_request(_after)
    app.teardown_request(_teardown)
    app.add_url_rule("/metrics", "metrics", metrics_view, methods=["GET"])
