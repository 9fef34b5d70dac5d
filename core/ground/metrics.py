"""Prometheus metrics of the API and the workers, and the hooks that feed them.

Multiprocess mode: when `PROMETHEUS_MULTIPROC_DIR` is set (the Procfile sets it for the web and
worker roles) every process writes its samples to files there and a scrape sums them, so
several gunicorn workers (or prefork children) report one consistent set of series. The
variable must be set before the process starts, since prometheus-client reads it on import.

Metric objects are module-level by design: they hold no connection and create no file until a
labelled child is first used. Gauges computed from Redis (discussions by status, queue depth,
live workers) are collected at scrape time by `core.ops_collector`.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from prometheus_client import REGISTRY as DEFAULT_REGISTRY
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
STEP_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 120)

HTTP_REQUESTS = Counter(
    "orchestrator_http_requests_total", "HTTP requests by method, route and status",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "orchestrator_http_request_duration_seconds", "HTTP request latency by method and route",
    ["method", "route"], buckets=LATENCY_BUCKETS,
)
STEPS = Counter(
    "orchestrator_steps_total", "Engine steps by protocol and outcome", ["protocol", "outcome"],
)
STEP_DURATION = Histogram(
    "orchestrator_step_duration_seconds", "Engine step duration by protocol", ["protocol"],
    buckets=STEP_BUCKETS,
)
AGENT_CALLS = Counter(
    "orchestrator_agent_calls_total", "Agent calls by provider, model and result (ok, error)",
    ["provider", "model", "result"],
)
AGENT_LATENCY = Histogram(
    "orchestrator_agent_call_duration_seconds", "Agent call latency by provider and model",
    ["provider", "model"], buckets=LATENCY_BUCKETS,
)
AGENT_TOKENS = Counter(
    "orchestrator_agent_tokens_total", "Tokens by provider, model and kind (prompt, completion)",
    ["provider", "model", "kind"],
)
AGENT_COST = Counter(
    "orchestrator_agent_cost_usd_total", "Agent cost in USD by provider and model",
    ["provider", "model"],
)
# Labelled so that no sample file is opened on import, before the directory exists.
WS_CONNECTIONS = Gauge(
    "orchestrator_websocket_connections", "Open WebSocket connections by endpoint",
    ["endpoint"], multiprocess_mode="livesum",
)
WS_FRAMES = Counter(
    "orchestrator_websocket_frames_total", "WebSocket frames by direction (in, out)",
    ["direction"],
)
SCHEDULE_FIRES = Counter(
    "orchestrator_schedule_fires_total", "Schedule slots fired, by result (created, skipped)",
    ["result"],
)


# Labelled children by (metric, label values). prometheus-client keeps every child it made
# anyway (nothing here removes one); looking them up in a plain dict skips its lock and label
# checks, which ran several times per turn and per request.
_CHILDREN: dict[tuple[int, tuple[str, ...]], Any] = {}


def _child(metric: Any, *labels: str) -> Any:
    key = (id(metric), labels)
    child = _CHILDREN.get(key)
    if child is None:
        child = _CHILDREN[key] = metric.labels(*labels)
    return child


def observe_http(method: str, route: str, status: int, seconds: float) -> None:
    _child(HTTP_REQUESTS, method, route, str(status)).inc()
    _child(HTTP_LATENCY, method, route).observe(seconds)


def observe_step(protocol: str, outcome: str, seconds: float) -> None:
    _child(STEPS, protocol, outcome).inc()
    _child(STEP_DURATION, protocol).observe(seconds)


def observe_agent_call(provider: str, model: str | None, seconds: float, *, ok: bool = True,
                       prompt_tokens: int = 0, completion_tokens: int = 0,
                       cost_usd: float = 0.0) -> None:
    """The hook for every agent or orchestration call (backends and accounting call it)."""
    model = model or "-"
    _child(AGENT_CALLS, provider, model, "ok" if ok else "error").inc()
    _child(AGENT_LATENCY, provider, model).observe(max(seconds, 0.0))
    if prompt_tokens:
        _child(AGENT_TOKENS, provider, model, "prompt").inc(prompt_tokens)
    if completion_tokens:
        _child(AGENT_TOKENS, provider, model, "completion").inc(completion_tokens)
    if cost_usd:
        _child(AGENT_COST, provider, model).inc(cost_usd)


def ws_opened(endpoint: str = "stream") -> None:
    WS_CONNECTIONS.labels(endpoint).inc()


def ws_closed(endpoint: str = "stream") -> None:
    WS_CONNECTIONS.labels(endpoint).dec()


# Frames counted locally and added to the counter every FRAMES_FLUSH frames or second: in
# multiprocess mode each increment writes a shared file under a lock, about a tenth of what
# sending one frame to one viewer costs.
FRAMES_FLUSH = 100
_frames: dict[str, list[float]] = {}  # direction -> [frames not yet added, last flush]


def ws_frame(direction: str, n: int = 1) -> None:
    pending = _frames.get(direction)
    if pending is None:
        pending = _frames[direction] = [0, time.monotonic()]
    pending[0] += n
    if pending[0] >= FRAMES_FLUSH or time.monotonic() - pending[1] >= 1.0:
        _child(WS_FRAMES, direction).inc(pending[0])
        pending[0], pending[1] = 0, time.monotonic()


def multiproc_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def reset_multiproc_dir() -> None:
    """Delete stale sample files; called once by the parent before any child starts."""
    path = multiproc_dir()
    if not path:
        return
    Path(path).mkdir(parents=True, exist_ok=True)
    for f in Path(path).glob("*.db"):
        f.unlink(missing_ok=True)


def mark_dead(pid: int) -> None:
    """Drop a finished process's live gauges (gunicorn child_exit, prefork child shutdown)."""
    if multiproc_dir():
        multiprocess.mark_process_dead(pid)


def process_registry() -> CollectorRegistry:
    """The registry to expose: every process's samples in multiprocess mode, else this one's."""
    if multiproc_dir():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return DEFAULT_REGISTRY


def render(*extra: CollectorRegistry) -> bytes:
    """The exposition text of this process group plus extra registries (scrape-time gauges)."""
    return b"".join([generate_latest(process_registry()), *(generate_latest(r) for r in extra)])
