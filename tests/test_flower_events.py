"""Task events are off by default (CELERY_TASK_EVENTS), yet Flower still shows the tasks.

Flower sends Celery's enable_events control command every few seconds while it runs, so the
workers send events only while someone watches. This runs a real gevent worker and a real
Flower on a Redis of their own (events travel on pub/sub, which ignores the database number).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import requests

from core.ground.settings import Settings
from core.ground.task_names import STEP as STEP_TASK
from scripts import embedded_redis
from workers.celery_app import create_celery

ROOT = Path(__file__).resolve().parent.parent


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "celery", "-A", "workers.main", *args],
                            cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _flower_tasks(base: str) -> dict:
    try:
        resp = requests.get(base + "/api/tasks", timeout=2)
    except requests.RequestException:
        return {}
    return resp.json() if resp.status_code == 200 else {}


def test_flower_shows_steps_although_task_events_default_off(tmp_path: Path) -> None:
    assert Settings(redis_url="redis://x").celery_task_events is False
    port = embedded_redis.free_port()
    server = embedded_redis.start(port, tmp_path / "redis")
    url = f"redis://127.0.0.1:{port}/0"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CELERY_", "FLOWER_", "PROMETHEUS_"))}
    env.update(REDIS_URL=url, PYTHONPATH=str(ROOT), LOG_LEVEL="WARNING",
               FLOWER_UNAUTHENTICATED_API="true")
    flower_port = embedded_redis.free_port()
    base = f"http://127.0.0.1:{flower_port}"
    procs = [_spawn(["worker", "-P", "gevent", "-c", "5", "-Q", "steps", "-n", "fl@%h",
                     "--without-gossip", "--without-mingle", "--loglevel", "WARNING"],
                    env, tmp_path / "worker.log"),
             _spawn(["flower", f"--port={flower_port}", "--address=127.0.0.1"], env,
                    tmp_path / "flower.log")]
    app = create_celery(Settings(redis_url=url))
    try:
        deadline = time.monotonic() + 60
        sent: list[str] = []
        seen: dict = {}
        while time.monotonic() < deadline and not seen:
            # A step of an unknown discussion is a cheap real task: it answers "gone".
            did = f"d_{uuid.uuid4().hex[:8]}"
            sent.append(app.send_task(STEP_TASK, args=[did]).id)
            time.sleep(1.0)
            seen = {tid: t for tid, t in _flower_tasks(base).items()
                    if tid in sent and t.get("state") == "SUCCESS"}
        assert seen, (f"Flower showed none of {len(sent)} steps; worker log:\n"
                      + (tmp_path / "worker.log").read_text()[-2000:]
                      + "\nflower log:\n" + (tmp_path / "flower.log").read_text()[-2000:])
        task = next(iter(seen.values()))
        assert task["name"] == STEP_TASK
        assert "gone" in str(task.get("result"))
    finally:
        for proc in procs:
            _stop(proc)
        server.terminate()
        server.wait(10)
