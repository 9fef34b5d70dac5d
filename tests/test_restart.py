"""A person's turn survives restarts: worker processes are stopped (warm) or killed, and new
ones carry on from Redis alone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.ground.settings import Settings
from core.storage import keys
from core.storage.redis_client import make_redis
from tests.e2e import people, two_agents_and_john
from tests.helpers import wait_for

ROOT = Path(__file__).resolve().parent.parent
DB = 3  # a database of its own: the session worker must not take these tasks

TIMINGS = {"step_slice_s": 0.5, "turn_deadline_s": 2.0,
           "step_soft_time_limit_s": 4.0, "step_time_limit_s": 6.0,
           "broker_visibility_timeout_s": 8.0}


@pytest.fixture
def isolated(redis_url: str) -> Iterator[tuple[Settings, object]]:
    settings = Settings(_env_file=None, redis_url=redis_url, redis_db=DB,  # type: ignore[call-arg]
                        auth_enabled=False, service_host="127.0.0.1",  # the loopback demo mode
                        rate_limit_enabled=False, **TIMINGS)
    client = make_redis(settings)
    client.flushdb()
    from api import create_app
    from workers.celery_app import create_celery

    producer = create_celery(settings)
    app = create_app({"TESTING": True}, settings=settings, redis_client=client,
                     dispatch=lambda did: producer.send_task("discussion.step", args=[did]))
    yield settings, app.test_client()
    client.flushdb()
    client.close()


class Worker:
    """A real `celery worker` process on the isolated database."""

    def __init__(self, settings: Settings, log: Path) -> None:
        env = {**os.environ, "REDIS_URL": settings.redis_url, "REDIS_DB": str(DB),
               **{k.upper(): str(v) for k, v in TIMINGS.items()}}
        self.log = log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "workers.main", "worker", "-P", "threads",
             "-c", "2", "-Q", "steps", "--without-mingle", "--without-gossip",
             "--loglevel", "INFO"],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=30)
        self.log.close()


def test_human_turn_survives_worker_restarts(isolated, tmp_path: Path) -> None:
    settings, client = isolated
    state = make_redis(settings)
    workers: list[Worker] = []
    try:
        workers.append(Worker(settings, tmp_path / "w1.log"))
        # 1. Warm restart: the scheduled deadline check outlives the worker that held it.
        s = client.post("/v1/discussions", json=two_agents_and_john(
            rounds=1, human_turn_timeout_s=4)).json
        did = s["id"]

        def status(d: str = did) -> dict:
            return client.get(f"/v1/discussions/{d}").json

        wait_for(lambda: status()["status"] == "waiting_for_human", timeout=60)
        wait_for(lambda: not state.exists(keys.lock(did)), timeout=30)
        workers[0].stop(signal.SIGTERM)
        assert status()["status"] == "waiting_for_human"
        workers.append(Worker(settings, tmp_path / "w2.log"))
        done = wait_for(lambda: (s_ := status())["status"] == "completed" and s_, timeout=60)
        assert done["message_count"] == 2 and done["stop_reason"] == "max_rounds"
        events = client.get(f"/v1/discussions/{did}").json  # still readable after restarts
        assert events["waiting_for"] is None

        # 2. Hard crash while a person is waited for: the wait is Redis state; a new worker
        # carries on when the person answers.
        s2 = client.post("/v1/discussions", json=two_agents_and_john(
            rounds=1, human_turn_timeout_s=3600)).json
        wait_for(lambda: status(s2["id"])["status"] == "waiting_for_human", timeout=60)
        # The crash hits while the person is being waited for, after the step let go of its
        # lease (a crash inside a step is the reconciler's and the lease TTL's business).
        wait_for(lambda: not state.exists(keys.lock(s2["id"])), timeout=30)
        workers[1].stop(signal.SIGKILL)
        workers.append(Worker(settings, tmp_path / "w3.log"))
        resp = client.post(f"/v1/discussions/{s2['id']}/messages",
                           json={"participant_id": people(s2)["John"], "content": "Back."})
        assert resp.status_code == 201
        done2 = wait_for(lambda: (s_ := status(s2["id"]))["status"] == "completed" and s_,
                         timeout=60)
        assert done2["message_count"] == 3
    finally:
        for w in workers:
            w.stop(signal.SIGTERM)
        state.close()
