"""Short leases that live as long as the work, against a real Redis (issue 14).

A step's lease lives a fraction of its agent call here and survives anyway (renewed); a
renewal that finds the token stale stops the step without committing (at once under gevent,
shown in a real gevent-patched process); a lease a failed step could not release is released,
and its discussion re-enqueued, as soon as Redis answers again; a dead worker's leases are
freed by the sweep without waiting for their TTL.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis

from core.agents import AgentReply, Backends, TurnRequest
from core.ground.models import Status
from core.ground.settings import Settings
from core.storage import heartbeats, keys
from core.storage.leases import dead_owners, owner_id
from core.storage.redis_client import make_redis
from core.storage.store import Store
from scripts import embedded_redis
from tests.helpers import agent, config, wait_for
from workers import reconciler
from workers.engine import Outcome, Runtime, run_step
from workers.leases import LeaseKeeper

ROOT = Path(__file__).resolve().parents[1]


class Slow:
    """An agent that takes `seconds` to answer (in a thread: a blocking sleep)."""

    name = "slow"
    costly = False

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.calls = 0

    def validate(self, agent: object) -> None:
        return None

    def register(self, discussion_id: str, agent: object) -> None:
        return None

    def generate(self, request: TurnRequest) -> AgentReply:
        self.calls += 1
        time.sleep(self.seconds)
        return AgentReply(content=f"answer to turn {request.turn}")


def _runtime(settings: Settings, store: Store, slow: Slow, enqueued: list[str]) -> Runtime:
    # A lease far shorter than the agent call (why these settings: the point of the test).
    s = settings.model_copy(update={"lease_ttl_s": 0.6, "lease_renew_interval_s": 0.2,
                                    "step_slice_s": 0.1})
    return Runtime(settings=s, store=store, backends=Backends(s, extra={"slow": slow}),
                   enqueue=enqueued.append)


def _create(store: Store, did: str) -> str:
    a, b = agent("a1"), agent("a2")
    a.provider = b.provider = "slow"
    store.create(config(max_rounds=1).model_copy(update={"id": did}), [a, b],
                 status=Status.ACTIVE)
    return did


def test_a_step_keeps_its_lease_through_an_agent_call_three_times_longer(
        settings: Settings, store: Store, r: redis.Redis) -> None:
    slow = Slow(1.8)
    rt = _runtime(settings, store, slow, [])
    did = _create(store, "disc_slow")
    assert run_step(rt, did) == Outcome.MORE
    assert store.state(did).seq == 1, "the turn committed: the lease outlived its TTL"
    assert slow.calls == 1
    assert not r.exists(keys.lock(did))
    assert r.hget(keys.state(did), "released") == r.hget(keys.state(did), "fence")


def test_a_renewal_that_finds_its_token_stale_stops_the_step_without_committing(
        settings: Settings, store: Store, r: redis.Redis) -> None:
    slow = Slow(1.5)
    rt = _runtime(settings, store, slow, [])
    did = _create(store, "disc_stolen")
    outcome: list[Outcome] = []
    t = threading.Thread(target=lambda: outcome.append(run_step(rt, did)))
    t.start()
    wait_for(lambda: slow.calls == 1)
    # Another step takes over (as after a lease that expired while its worker stalled).
    r.delete(keys.lock(did))
    assert store.acquire(did, 60_000) is not None
    t.join(timeout=10)
    assert outcome == [Outcome.STALE]
    assert store.state(did).seq == 0 and r.llen(keys.messages(did)) == 0


def test_under_gevent_a_stale_renewal_ends_the_agent_call_at_once(redis_url: str) -> None:
    # The Procfile's worker runs the gevent pool: a real process with gevent's patches runs
    # a step whose agent would take 20 s; its lease is taken over after 0.5 s.
    script = r'''
import gevent.monkey; gevent.monkey.patch_all()
import json, sys, time
import gevent
from core.agents import AgentReply, Backends
from core.ground.models import Status
from core.ground.settings import Settings
from core.storage import keys
from core.storage.redis_client import make_redis
from core.storage.store import Store
from tests.helpers import agent, config
from workers.engine import Runtime, run_step

class Slow:
    name, costly = "slow", False
    def validate(self, a): return None
    def register(self, d, a): return None
    def generate(self, request):
        time.sleep(20)
        return AgentReply(content="late")

s = Settings(_env_file=None, redis_url=sys.argv[1], lease_ttl_s=0.6, lease_renew_interval_s=0.2)
store = Store(make_redis(s))
a, b = agent("a1"), agent("a2")
a.provider = b.provider = "slow"
did = "disc_gevent"
store.r.delete(*keys.discussion_keys(did))
store.create(config(max_rounds=1).model_copy(update={"id": did}), [a, b], status=Status.ACTIVE)
rt = Runtime(settings=s, store=store, backends=Backends(s, extra={"slow": Slow()}),
             enqueue=lambda d: None)

def steal():
    gevent.sleep(0.5)
    store.r.delete(keys.lock(did))
    store.acquire(did, 60_000)

gevent.spawn(steal)
started = time.monotonic()
outcome = run_step(rt, did)
print(json.dumps({"outcome": outcome.value, "seconds": time.monotonic() - started,
                  "seq": store.state(did).seq}))
'''
    proc = subprocess.run([sys.executable, "-c", script, redis_url], cwd=ROOT,
                          capture_output=True, text=True, timeout=60,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    assert found["outcome"] == "stale" and found["seq"] == 0, found
    assert found["seconds"] < 3, f"the step waited on its agent after losing the lease: {found}"


def test_a_lease_a_failed_step_could_not_release_is_released_once_redis_answers(
        tmp_path: Path, settings: Settings) -> None:
    # A Redis of its own, stopped and started again (append-only, so the lease survives).
    port = embedded_redis.free_port()
    proc = embedded_redis.start(port, tmp_path, appendonly=True)
    s = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{port}"})
    store = Store(make_redis(s))
    enqueued: list[str] = []
    keeper = LeaseKeeper(s, store, enqueued.append)
    try:
        did = "disc_outage"
        store.create(config().model_copy(update={"id": did}), [agent("a1")],
                     status=Status.ACTIVE)
        token = store.acquire(did, 60_000)  # a minute: only a release frees it in this test
        assert token is not None
        proc.terminate()
        proc.wait(timeout=10)
        keeper.release_later(did, token)  # what a step does when its release failed
        time.sleep(0.5)
        assert enqueued == []
        proc = embedded_redis.start(port, tmp_path, appendonly=True)
        back = time.monotonic()
        wait_for(lambda: enqueued == [did], timeout=5)
        assert time.monotonic() - back < 1.5
        assert not store.r.exists(keys.lock(did))
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_the_sweep_frees_a_restarted_workers_old_leases_at_once(
        settings: Settings, store: Store, r: redis.Redis) -> None:
    enqueued: list[str] = []
    rt = Runtime(settings=settings, store=store, backends=Backends(settings),
                 enqueue=enqueued.append)
    did = _create(store, "disc_dead_owner")
    heartbeats.heartbeat(r, "w1@host", boot="boot-a")
    old = owner_id("w1@host", "boot-a")
    assert store.acquire(did, 60_000, owner=old) is not None
    assert dead_owners(r, [old], settings.worker_heartbeat_ttl_s) == set()
    assert reconciler.sweep(rt).freed == [] and enqueued == []
    # The worker comes back under the same name: its previous boot's leases are dead.
    heartbeats.heartbeat(r, "w1@host", boot="boot-b")
    assert dead_owners(r, [old], settings.worker_heartbeat_ttl_s) == {old}
    sweep = reconciler.sweep(rt)
    assert sweep.freed == [did] and sweep.orphans == [did] and enqueued == [did]
    assert not r.exists(keys.lock(did))
    # A heartbeat that stopped (older than the TTL) marks the owner dead too.
    later = time.time() + settings.worker_heartbeat_ttl_s + 1
    assert dead_owners(r, [owner_id("w1@host", "boot-b")], settings.worker_heartbeat_ttl_s,
                       now=later) == {owner_id("w1@host", "boot-b")}
    # An owner with no heartbeat entry is not judged: its lease expires by its TTL.
    assert dead_owners(r, [owner_id("gone@host", "x")], 1.0, now=later) == set()


@pytest.fixture(autouse=True)
def _forget_workers(r: redis.Redis) -> None:
    r.delete(keys.WORKER_HEARTBEATS, keys.WORKER_BOOTS)
