"""What every bench shares: a private Redis, child processes that always get cleaned up, stats.

Each bench starts its own redis-server on a free port (scripts/embedded_redis.py) and its own
worker / API processes, and stops them in `finally`, so a run never touches a shared service.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import redis
import requests

from scripts import embedded_redis

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


@dataclass
class Row:
    """One line of the results table."""

    bench: str
    shape: str
    system: str
    rate: str = ""
    cpu: str = ""  # CPU per unit (turn, frame, post): steadier than rates on a shared machine
    p50: str = ""
    p99: str = ""
    extra: str = ""
    ratio: str = ""  # to the anchor or floor measured in the same run
    target: str = ""
    met: str = ""


@dataclass
class Env:
    """A private Redis and the environment child processes get to reach it."""

    url: str
    workdir: Path
    children: list[subprocess.Popen] = field(default_factory=list)
    api_pgid: int = 0  # the last API started (gunicorn master and workers share the group)
    redis_pid: int = 0

    @property
    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, decode_responses=True)

    def child_env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CELERY_")}
        env.update(REDIS_URL=self.url, LOG_LEVEL="WARNING", PYTHONPATH=str(ROOT),
                   PYTHONUNBUFFERED="1")
        env.update(extra)
        return env

    def spawn(self, args: Sequence[str], name: str, **extra_env: str) -> subprocess.Popen:
        """Start a child in its own process group; its output goes to a log in the workdir."""
        log = open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115 - closed with the child
        proc = subprocess.Popen(list(args), cwd=ROOT, env=self.child_env(**extra_env),
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        proc._bench_log = log  # type: ignore[attr-defined]
        self.children.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen, timeout: float = 20.0) -> None:
        """SIGTERM the child's group, wait, then SIGKILL what is left."""
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        log = getattr(proc, "_bench_log", None)
        if log:
            log.close()
        if proc in self.children:
            self.children.remove(proc)


@contextlib.contextmanager
def private_redis() -> Iterator[Env]:
    """A redis-server of our own on a free port; stopped with every child on the way out."""
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        work = Path(tmp)
        port = embedded_redis.free_port()
        server = embedded_redis.start(port, work / "redis")
        env = Env(url=f"redis://127.0.0.1:{port}/0", workdir=work, redis_pid=server.pid)
        try:
            yield env
        finally:
            for child in list(reversed(env.children)):
                env.stop(child)
            server.terminate()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(5)


def start_worker(env: Env, name: str, concurrency: int, *, probe_out: Path | None = None,
                 **extra_env: str) -> subprocess.Popen:
    """A Celery worker as the Procfile runs it (gevent pool), with the turn probe loaded."""
    extra = {"PROMETHEUS_MULTIPROC_DIR": _metrics_dir(env, "worker"), **extra_env}
    if probe_out is not None:
        extra["BENCH_PROBE_OUT"] = str(probe_out)
    proc = env.spawn([PY, "-m", "celery", "-A", "bench.probe", "worker", "-P", "gevent",
                      "-c", str(concurrency), "-Q", "steps", "--loglevel", "WARNING",
                      "--without-gossip", "--without-mingle", "--without-heartbeat",
                      "-n", f"{name}@%h"], name, **extra)
    wait_until(lambda: _worker_ready(env, proc, name), 60, f"worker {name} did not start")
    return proc


def _worker_ready(env: Env, proc: subprocess.Popen, name: str) -> bool:
    if proc.poll() is not None:
        raise RuntimeError(f"worker {name} exited; see {env.workdir / (name + '.log')}")
    return bool(env.client.get(f"bench:ready:{name}"))


def start_api(env: Env, name: str = "api", workers: int = 2, **extra_env: str) -> str:
    """The API under gunicorn's gevent worker, as the Procfile runs it; its base URL."""
    # The loopback demo mode without rate limits, unless the caller says otherwise: the
    # benchmarks measure the engine and the stream, not a per-address request budget.
    extra_env = {"PROMETHEUS_MULTIPROC_DIR": _metrics_dir(env, name), "AUTH_ENABLED": "false",
                 "SERVICE_HOST": "127.0.0.1", "RATE_LIMIT_ENABLED": "false", **extra_env}
    return start_gunicorn(env, name, "api:create_app()", workers,
                          ["-c", "python:api.gunicorn_conf"], **extra_env)


def start_gunicorn(env: Env, name: str, app: str, workers: int, options: Sequence[str] = (),
                   health: str = "/health", **extra_env: str) -> str:
    """A WSGI app under `gunicorn -k gevent -w N` with the Procfile's options; its base URL.

    The API and the HTTP floor (bench/http_floor.py) start the same way, so they differ only
    in the app."""
    port = embedded_redis.free_port()
    proc = env.spawn([PY, "-m", "gunicorn", *options, "-k", "gevent", "-w", str(workers),
                      "--worker-connections", "4000", "--backlog", "4096",
                      "-b", f"127.0.0.1:{port}", "--log-level", "warning", app],
                     name, **extra_env)
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited; see {env.workdir / (name + '.log')}")
        try:
            return requests.get(base + health, timeout=1).status_code < 500
        except requests.RequestException:
            return False

    wait_until(up, 60, f"{name} did not start")
    env.api_pgid = proc.pid
    return base


def _metrics_dir(env: Env, name: str) -> str:
    """Prometheus multiprocess files, as the Procfile keeps them, inside the bench's workdir."""
    path = env.workdir / f"metrics-{name}"
    path.mkdir(exist_ok=True)
    return str(path)


def wait_until(cond: Callable[[], bool], timeout: float, what: str, every: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(every)
    raise TimeoutError(what)


def peak_rss_mb(pid: int) -> float:
    """Peak resident memory (VmHWM) of a live process, in MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def group_cpu_s(pgid: int, *, pid: int = 0) -> float:
    """CPU seconds (user + system) used so far by the live processes of a process group
    (or by the one process `pid`)."""
    total = 0
    paths = [Path(f"/proc/{pid}/stat")] if pid else Path("/proc").glob("[0-9]*/stat")
    for stat in paths:
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if pid or int(fields[2]) == pgid:  # fields after the name: state, ppid, pgrp, ...
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def fmt(value: float, unit: str = "", digits: int = 0) -> str:
    return f"{value:,.{digits}f}{unit}"


def verdict(ok: bool) -> str:
    return "yes" if ok else "NO"


def print_table(rows: list[Row], out=sys.stdout) -> None:
    """A Markdown table of the rows."""
    head = ["bench", "shape", "system", "rate", "CPU per unit", "p50", "p99", "other",
            "ratio (same run)", "target", "met"]
    cells = [[r.bench, r.shape, r.system, r.rate, r.cpu, r.p50, r.p99, r.extra, r.ratio,
              r.target, r.met] for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h)
              for i, h in enumerate(head)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)) + " |"
    print(line, file=out)
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|", file=out)
    for c in cells:
        print("| " + " | ".join(v.ljust(w) for v, w in zip(c, widths, strict=True)) + " |",
              file=out)
