"""Operations wiring for the workers: heartbeats, log context, metrics, and beat's tick entry.

`install(app)` is called by the app factory. Signal receivers are connected once per process
(`dispatch_uid`), and read everything they need from the sending task or worker.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from typing import Any

import prometheus_client
import redis
from celery import Celery, bootsteps, signals

from core.ground import logs, metrics, task_names
from core.ground.settings import Settings
from core.storage import heartbeats
from core.storage.redis_client import make_redis
from workers import leases
from workers.recovery import RecoverySweeper
from workers.runtime import runtime_for

log = logging.getLogger(__name__)


_started: dict[str, float] = {}
_protocols: OrderedDict[str, str] = OrderedDict()
_PROTOCOL_CACHE = 10_000


def settings_of(app: Celery) -> Settings:
    return app.conf.get("orchestrator_settings") or Settings()


class WorkerHeartbeat(bootsteps.StartStopStep):
    """Writes this worker's heartbeat to Redis every few seconds; removes it on shutdown."""

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._redis: redis.Redis | None = None

    def start(self, worker: Any) -> None:
        settings = settings_of(worker.app)
        self._redis = make_redis(settings)
        hostname = worker.hostname
        interval = settings.worker_heartbeat_interval_s
        leases.set_worker_name(hostname)

        def once() -> None:
            try:
                heartbeats.heartbeat(self._redis, hostname, boot=leases.BOOT)  # type: ignore[arg-type]
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                log.warning("heartbeat of %s failed: %s", hostname, exc)

        # The first beat before anything else starts: it announces this boot, so the recovery
        # sweep frees at once the leases a previous boot of this worker left.
        once()

        def beat() -> None:
            while not self._stop.wait(interval):
                once()

        self._thread = threading.Thread(target=beat, name="heartbeat", daemon=True)
        self._thread.start()

    def stop(self, worker: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._redis is not None:
            try:
                heartbeats.worker_gone(self._redis, worker.hostname)
            except (redis.ConnectionError, redis.TimeoutError):
                pass  # the entry ages out by itself
            self._redis.close()

    # A cold shutdown terminates steps instead of stopping them.
    terminate = stop


def _stamp_enqueued(headers: dict[str, Any] | None = None, **_: Any) -> None:
    # The queue-age probe reads this from the oldest waiting message.
    if headers is not None:
        headers.setdefault(heartbeats.ENQUEUED_AT_HEADER, time.time())


def _protocol_of(task: Any, did: str) -> str:
    cached = _protocols.get(did)
    if cached is None:
        try:
            cached = runtime_for(task.app).store.config(did).protocol
        except Exception:  # noqa: BLE001 - a deleted discussion still gets counted
            cached = "unknown"
        _protocols[did] = cached
        if len(_protocols) > _PROTOCOL_CACHE:
            _protocols.popitem(last=False)
    return cached


def _task_started(task_id: str, task: Any, args: Any = None, **_: Any) -> None:
    did = args[0] if task.name == task_names.STEP and args else None
    logs.bind(request_id=task_id, discussion_id=did, turn=None)
    _started[task_id] = time.perf_counter()


def _task_finished(task_id: str, task: Any, args: Any = None, retval: Any = None,
                   state: str | None = None, **_: Any) -> None:
    started = _started.pop(task_id, None)
    try:
        if task.name == task_names.STEP and args and started is not None:
            ok = isinstance(retval, str) and state == "SUCCESS"
            outcome = retval.split(" ", 1)[0] if ok else "error"
            metrics.observe_step(_protocol_of(task, args[0]), outcome,
                                 time.perf_counter() - started)
    finally:
        logs.clear()


def _setup_logging(loglevel: Any = None, **_: Any) -> None:
    # Connecting this signal stops Celery from installing its own root handler; the command
    # line's --loglevel wins over LOG_LEVEL.
    settings = Settings()
    if loglevel:
        name = loglevel if isinstance(loglevel, str) else logging.getLevelName(loglevel)
        settings = settings.model_copy(update={"log_level": str(name)})
    logs.configure(settings)


def _worker_init(**_: Any) -> None:
    metrics.reset_multiproc_dir()


def _worker_ready(sender: Any = None, **_: Any) -> None:
    if sender is None:
        return
    settings = settings_of(sender.app)
    port, host = settings.worker_metrics_port, settings.worker_metrics_host
    if port:
        try:
            prometheus_client.start_http_server(port, addr=host,
                                                registry=metrics.process_registry())
        except OSError as exc:  # another worker on this machine has the port: not fatal
            log.warning("worker metrics not served on %s:%s: %s", host, port, exc)
            return
        log.info("worker metrics on %s:%s/metrics", host, port)


def _process_shutdown(pid: int | None = None, **_: Any) -> None:
    metrics.mark_dead(pid or os.getpid())


def install(app: Celery) -> None:
    """Heartbeat step, signal receivers and the tick beat entry for this app."""
    app.steps["worker"].add(WorkerHeartbeat)
    app.steps["worker"].add(RecoverySweeper)
    settings = settings_of(app)
    app.conf.beat_schedule = {
        **(app.conf.beat_schedule or {}),
        task_names.OPS_TICK: {"task": task_names.OPS_TICK, "schedule": settings.schedule_tick_s,
                    "options": {"expires": max(settings.schedule_tick_s * 2, 5.0)}},
    }
    signals.before_task_publish.connect(_stamp_enqueued, dispatch_uid="ops-enqueued", weak=False)
    signals.task_prerun.connect(_task_started, dispatch_uid="ops-prerun", weak=False)
    signals.task_postrun.connect(_task_finished, dispatch_uid="ops-postrun", weak=False)
    signals.setup_logging.connect(_setup_logging, dispatch_uid="ops-logging", weak=False)
    signals.worker_init.connect(_worker_init, dispatch_uid="ops-init", weak=False)
    signals.worker_ready.connect(_worker_ready, dispatch_uid="ops-ready", weak=False)
    signals.worker_process_shutdown.connect(_process_shutdown, dispatch_uid="ops-child",
                                            weak=False)
