"""Readiness checks: each returns a dependency's status dict; `ok` says whether it passes."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import redis
import requests

from core.ground.settings import Settings
from core.storage import heartbeats

REDIS_ERRORS = (redis.ConnectionError, redis.TimeoutError)


@dataclass
class Report:
    """Every dependency's status and the names of those failing."""

    dependencies: dict[str, dict[str, Any]] = field(default_factory=dict)
    failing: list[str] = field(default_factory=list)

    def add(self, name: str, ok: bool, **details: Any) -> None:
        self.dependencies[name] = {"status": "ok" if ok else "unavailable", **details}
        if not ok:
            self.failing.append(name)


def _ping(client: redis.Redis) -> tuple[bool, dict[str, Any]]:
    started = time.perf_counter()
    try:
        client.ping()
    except REDIS_ERRORS as exc:
        return False, {"error": type(exc).__name__}
    return True, {"latency_ms": round((time.perf_counter() - started) * 1000, 2)}


def check(settings: Settings, r: redis.Redis, broker: redis.Redis | None) -> Report:
    """Redis, the broker, live workers, the step queue and (when set) the Execution Platform."""
    report = Report()
    redis_ok, details = _ping(r)
    report.add("redis", redis_ok, **details)
    if broker is None:
        report.add("broker", redis_ok, shared_with="redis")
        broker_ok = redis_ok
    else:
        broker_ok, details = _ping(broker)
        report.add("broker", broker_ok, **details)
    if redis_ok:
        try:
            live = heartbeats.live_workers(r, settings.worker_heartbeat_ttl_s)
            report.add("workers", len(live) >= settings.health_min_workers, live=len(live),
                       required=settings.health_min_workers, names=sorted(live)[:20])
        except REDIS_ERRORS as exc:
            report.add("workers", False, error=type(exc).__name__)
    else:
        report.add("workers", False, error="redis unavailable")
    if broker_ok:
        try:
            depth, oldest = heartbeats.queue_stats(broker or r)
            stuck = oldest is not None and oldest > settings.health_max_queue_age_s
            report.add("queue", not stuck, depth=depth, oldest_age_s=oldest,
                       max_age_s=settings.health_max_queue_age_s)
        except REDIS_ERRORS as exc:
            report.add("queue", False, error=type(exc).__name__)
    else:
        report.add("queue", False, error="broker unavailable")
    if settings.execution_platform_url:
        platform_ok, details = _probe_http(settings)
        report.add("execution_platform", platform_ok, **details)
    return report


def _probe_http(settings: Settings) -> tuple[bool, dict[str, Any]]:
    url = settings.execution_platform_url.rstrip("/") + "/health"
    started = time.perf_counter()
    try:
        resp = requests.get(url, timeout=settings.health_probe_timeout_s)
    except requests.RequestException as exc:
        return False, {"error": type(exc).__name__}
    latency = round((time.perf_counter() - started) * 1000, 2)
    return resp.status_code < 500, {"http_status": resp.status_code, "latency_ms": latency}
