"""A small cluster of real processes on this machine for the fault tests.

One private redis-server, Celery workers and a beat as `celery` subprocesses, the API under
gunicorn's gevent worker (as in the Procfile), and WebSocket viewers as client threads. Each
subprocess runs in its own session, so `kill_worker` reaches every process of one worker and
nothing else. Everything is stopped in `close()`; only processes started here are signalled.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import redis
import requests

from scripts import embedded_redis
from tests.faults.sentinel import SentinelTopology

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
WORKER_APP = "tests.faults.worker_app"

# Not timing: every cluster runs with these. The loopback demo mode without rate limits (the
# scenarios drive the API hard), and quiet logs.
COMMON_SETTINGS = {
    "LOG_LEVEL": "WARNING",
    "AUTH_ENABLED": "false",
    "SERVICE_HOST": "127.0.0.1",
    "RATE_LIMIT_ENABLED": "false",
}


class Cluster:
    """Redis + workers + beat + API, all real processes, on free local ports."""

    def __init__(self, *, appendonly: bool = False, env: dict[str, str] | None = None,
                 sentinel: SentinelTopology | None = None) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="faults-"))
        self.appendonly = appendonly
        self.redis_port = embedded_redis.free_port()
        self.redis_url = f"redis://127.0.0.1:{self.redis_port}/0"
        self.redis_proc: subprocess.Popen[bytes] | None = None
        self.workers: dict[str, subprocess.Popen[bytes]] = {}
        self.others: list[subprocess.Popen[bytes]] = []
        self.api_url = ""
        self._n = 0
        # The service's own defaults (its time budget included), as users run it; a scenario
        # that needs another setting passes it in `env` and says why.
        self.env = {**os.environ, **COMMON_SETTINGS, **(env or {}),
                    "REDIS_URL": self.redis_url, "REDIS_DB": "0", "PYTHONPATH": str(ROOT)}
        for k in ("CELERY_BROKER_URL", "REDIS_SENTINELS"):
            self.env.pop(k, None)
        # With a Sentinel topology every process (and this client) reaches its primary.
        self.sentinel = sentinel
        if sentinel is not None:
            self.env.update(sentinel.env())
            self.r = sentinel.client()
        else:
            self.r = redis.Redis.from_url(self.redis_url, decode_responses=True,
                                          socket_timeout=5, socket_connect_timeout=2)

    # ------------------------------------------------------------ processes

    def start_redis(self) -> None:
        if self.sentinel is not None:
            self.sentinel.start()
            return
        self.redis_proc = embedded_redis.start(self.redis_port, self.dir / "redis",
                                               appendonly=self.appendonly)

    def stop_redis(self, sig: int = signal.SIGTERM) -> None:
        assert self.redis_proc is not None
        self.redis_proc.send_signal(sig)
        self.redis_proc.wait(timeout=30)
        self.redis_proc = None

    def _spawn(self, args: list[str], log_name: str) -> subprocess.Popen[bytes]:
        log = open(self.dir / f"{log_name}.log", "ab")  # noqa: SIM115 - closed with the process
        return subprocess.Popen(args, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)

    def start_worker(self, pool: str = "gevent", concurrency: int = 25) -> str:
        self._n += 1
        name = f"w{self._n}"
        self.workers[name] = self._spawn(
            [str(BIN / "celery"), "-A", WORKER_APP, "worker", "-P", pool, "-c", str(concurrency),
             "-Q", "steps", "-n", f"{name}@%h", "--without-gossip", "--without-mingle",
             "--without-heartbeat", "--loglevel", "WARNING"], name)
        return name

    def start_beat(self) -> None:
        self.others.append(self._spawn(
            [str(BIN / "celery"), "-A", WORKER_APP, "beat", "-s", str(self.dir / "beat-schedule"),
             "--loglevel", "WARNING"], "beat"))

    def start_api(self) -> None:
        port = embedded_redis.free_port()
        self.others.append(self._spawn(
            [str(BIN / "gunicorn"), "-k", "gevent", "-w", "1", "--worker-connections", "2000",
             "-b", f"127.0.0.1:{port}", "--graceful-timeout", "5", "api:create_app()"], "api"))
        self.api_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.api_url}/health", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError("the API did not come up; see " + str(self.dir / "api.log"))

    def signal_worker(self, name: str, sig: int) -> None:
        """Send `sig` to every process of one worker (its own process group)."""
        proc = self.workers[name]
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass

    def kill_worker(self, name: str) -> None:
        self.signal_worker(name, signal.SIGKILL)
        self.workers.pop(name).wait(timeout=10)

    def stop_worker(self, name: str, timeout: float = 60) -> float:
        """Warm shutdown (SIGTERM), as a rolling deploy does; seconds it took."""
        started = time.monotonic()
        self.signal_worker(name, signal.SIGTERM)
        self.workers.pop(name).wait(timeout=timeout)
        return time.monotonic() - started

    def close(self) -> None:
        for name in list(self.workers):
            self.signal_worker(name, signal.SIGKILL)
            self.workers.pop(name).wait(timeout=10)
        for proc in self.others:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=10)
        self.others.clear()
        if self.sentinel is not None:
            self.sentinel.close()
        if self.redis_proc is not None:
            self.redis_proc.kill()
            self.redis_proc.wait(timeout=10)
            self.redis_proc = None

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------ discussions

    def create(self, n: int, *, agents: int = 3, rounds: int = 2, latency_ms: int = 200,
               retries: int = 50) -> list[str]:
        personas = ["Security Expert", "Backend Developer", "Product Manager", "Tester"]
        body = {"topic": "Design the auth API", "protocol": "round_robin", "max_rounds": rounds,
                "agents": [{"persona": personas[i % len(personas)], "provider": "simulated",
                            "params": {"latency_ms": latency_ms}} for i in range(agents)]}
        ids = []
        for _ in range(n):
            for attempt in range(retries):
                try:
                    resp = requests.post(f"{self.api_url}/v1/discussions", json=body, timeout=10)
                    if resp.status_code == 201:
                        ids.append(resp.json()["id"])
                        break
                except requests.RequestException:
                    pass
                time.sleep(0.1 * (attempt + 1))
            else:
                raise RuntimeError("could not create a discussion")
        return ids

    def statuses(self, ids: Iterable[str]) -> dict[str, str]:
        pipe = self.r.pipeline(transaction=False)
        ids = list(ids)
        for did in ids:
            pipe.hget(f"discussion:{did}:state", "status")
        return dict(zip(ids, pipe.execute(), strict=True))

    def messages(self, ids: Iterable[str]) -> int:
        """Messages committed so far across `ids`."""
        pipe = self.r.pipeline(transaction=False)
        for did in ids:
            pipe.hget(f"discussion:{did}:state", "seq")
        return sum(int(v or 0) for v in pipe.execute())

    def wait_messages(self, ids: list[str], at_least: int, timeout: float = 60) -> int:
        """Wait until `at_least` messages exist (workers booted and running); the count."""
        deadline = time.monotonic() + timeout
        count = self.messages(ids)
        while count < at_least and time.monotonic() < deadline:
            time.sleep(0.1)
            count = self.messages(ids)
        return count

    def wait_progress(self, ids: list[str], beyond: int, since: float, timeout: float) -> float:
        """Seconds from `since` (a monotonic time) until more than `beyond` messages exist
        across `ids` (the first new commit), or `timeout` seconds after `since`."""
        while time.monotonic() - since < timeout:
            try:
                if self.messages(ids) > beyond:
                    break
            except redis.RedisError:
                pass
            time.sleep(0.05)
        return time.monotonic() - since

    def wait_terminal(self, ids: list[str], timeout: float) -> float:
        """Seconds until every discussion is terminal (or `timeout`, whichever first)."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            try:
                if all(s in ("completed", "failed", "cancelled")
                       for s in self.statuses(ids).values()):
                    break
            except redis.RedisError:
                pass
            time.sleep(0.2)
        return time.monotonic() - started

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.dir / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
