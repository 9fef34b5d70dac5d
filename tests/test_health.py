"""Health: liveness, readiness with Redis stopped and started, workers, queue age, platform."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from core.ground.settings import Settings
from core.storage.redis_client import make_redis
from scripts import embedded_redis
from tests.helpers import wait_for

ROOT = Path(__file__).resolve().parent.parent


class PrivateRedis:
    """A redis-server this test may stop and start again on the same port."""

    def __init__(self, workdir: Path) -> None:
        self.port = embedded_redis.free_port()
        self.workdir = workdir
        self.proc = embedded_redis.start(self.port, workdir)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)

    def start(self) -> None:
        self.proc = embedded_redis.start(self.port, self.workdir)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    yield server
    if server.proc.poll() is None:
        server.stop()


def _settings(url: str, **kw: object) -> Settings:
    base = dict(redis_url=url, redis_db=0, step_slice_s=0.5, turn_deadline_s=10,
                step_soft_time_limit_s=30, step_time_limit_s=40,
                broker_visibility_timeout_s=60, worker_heartbeat_interval_s=0.3,
                worker_heartbeat_ttl_s=2.0, redis_socket_timeout_s=1.0,
                redis_connect_timeout_s=0.5)
    base.update(kw)
    return Settings(_env_file=None, **base)  # type: ignore[call-arg]


def _client(settings: Settings):
    from api import create_app

    app = create_app({"TESTING": True}, settings=settings, redis_client=make_redis(settings),
                     dispatch=lambda did: None)
    return app.test_client()


def test_liveness_touches_no_dependency(private_redis: PrivateRedis) -> None:
    client = _client(_settings(private_redis.url))
    private_redis.stop()
    resp = client.get("/health/live")
    assert resp.status_code == 200
    assert resp.json["status"] == "alive"


def test_ready_needs_a_live_worker_and_health_keeps_the_seed_meaning(
        private_redis: PrivateRedis) -> None:
    client = _client(_settings(private_redis.url))
    ready = client.get("/health/ready")
    assert ready.status_code == 503
    assert ready.json["failing"] == ["workers"]
    assert ready.json["dependencies"]["workers"]["live"] == 0
    seed = client.get("/health")
    assert seed.status_code == 200
    assert seed.json["status"] == "healthy"
    assert set(seed.json) >= {"status", "service", "version", "dependencies"}
    assert seed.json["dependencies"]["redis"]["latency_ms"] >= 0
    # A heartbeat older than the TTL does not count: a process is not enough.
    r = make_redis(_settings(private_redis.url))
    r.zadd("workers:heartbeats", {"ghost@host": time.time() - 60})
    assert client.get("/health/ready").json["dependencies"]["workers"]["live"] == 0


def _worker_process(redis_url: str) -> subprocess.Popen[bytes]:
    """A real Celery worker process (its own, so stopping it leaves the session worker alone)."""
    env = {**os.environ, "REDIS_URL": redis_url, "WORKER_HEARTBEAT_INTERVAL_S": "0.3",
           "LOG_LEVEL": "ERROR"}
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "celery"), "-A", "workers.main", "worker", "-P",
         "solo", "-Q", "steps", "--loglevel", "ERROR"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def test_unready_when_redis_stops_and_ready_again_after(private_redis: PrivateRedis) -> None:
    settings = _settings(private_redis.url)
    client = _client(settings)
    worker = _worker_process(private_redis.url)
    try:
        wait_for(lambda: client.get("/health/ready").status_code == 200, timeout=30,
                 interval=0.2)
        body = client.get("/health/ready").json
        assert body["status"] == "ready" and body["failing"] == []
        assert body["dependencies"]["workers"]["live"] == 1

        private_redis.stop()
        down = client.get("/health/ready")
        assert down.status_code == 503
        assert "redis" in down.json["failing"] and "broker" in down.json["failing"]
        assert down.json["dependencies"]["redis"]["status"] == "unavailable"
        seed = client.get("/health")
        assert seed.status_code == 503 and seed.json["status"] == "unhealthy"

        private_redis.start()
        # The worker's next heartbeat lands in the restarted (empty) Redis.
        wait_for(lambda: client.get("/health/ready").status_code == 200, timeout=30,
                 interval=0.3)
    finally:
        worker.terminate()
        worker.wait(timeout=20)
    # A clean shutdown withdraws the heartbeat at once.
    assert client.get("/health/ready").json["dependencies"]["workers"]["live"] == 0


def test_queue_depth_and_oldest_step_age(private_redis: PrivateRedis) -> None:
    from workers.celery_app import create_celery

    # Authentication is on by default, so the scrape needs METRICS_TOKEN (docs/security.md).
    settings = _settings(private_redis.url, health_max_queue_age_s=0.5, health_min_workers=0,
                         metrics_token="scrape-token-for-tests")
    client = _client(settings)
    assert client.get("/health/ready").status_code == 200
    app = create_celery(settings)
    app.send_task("discussion.step", args=["disc_waiting"])  # no worker consumes it
    time.sleep(1.0)
    resp = client.get("/health/ready")
    assert resp.status_code == 503
    assert resp.json["failing"] == ["queue"]
    queue = resp.json["dependencies"]["queue"]
    assert queue["depth"] == 1 and queue["oldest_age_s"] >= 1.0
    metrics_text = client.get(
        "/metrics", headers={"Authorization": "Bearer scrape-token-for-tests"}).text
    assert 'orchestrator_queue_depth{queue="steps"} 1.0' in metrics_text


class _Platform(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_execution_platform_reachability(private_redis: PrivateRedis) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Platform)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}"
    settings = _settings(private_redis.url, health_min_workers=0, execution_platform_url=url,
                         health_probe_timeout_s=1.0)
    client = _client(settings)
    ok = client.get("/health/ready")
    assert ok.status_code == 200
    assert ok.json["dependencies"]["execution_platform"]["http_status"] == 200
    server.shutdown()
    server.server_close()
    down = client.get("/health/ready")
    assert down.status_code == 503
    assert down.json["failing"] == ["execution_platform"]
