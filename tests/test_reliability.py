"""Crash safety of steps against a real Redis: attempts cap, recorded failures, the reconciler."""

from __future__ import annotations

import time

import pytest
import redis

from core.agents import AgentReply, Backends, TurnRequest
from core.ground.errors import AgentError
from core.ground.models import Status
from core.ground.settings import Settings
from core.storage import audit, keys
from core.storage.store import Store
from tests.helpers import agent, agent_body, config, wait_for
from workers import reconciler
from workers.engine import Outcome, Runtime, run_step


class Boom:
    """A backend whose call raises something no backend should raise: a bug."""

    name = "boom"
    costly = False

    def validate(self, agent: object) -> None:
        return None

    def register(self, discussion_id: str, agent: object) -> None:
        return None

    def generate(self, request: TurnRequest) -> AgentReply:
        raise RuntimeError("backend bug: list index out of range")


class Cut(BaseException):
    """What gevent's hard time limit raises inside a step (a BaseException)."""


class Hangs(Boom):
    name = "hangs"

    def generate(self, request: TurnRequest) -> AgentReply:
        raise Cut()


class Flaky(Boom):
    name = "flaky"

    def generate(self, request: TurnRequest) -> AgentReply:
        raise AgentError("upstream said no", transient=True)


@pytest.fixture
def enqueued() -> list[str]:
    return []


@pytest.fixture
def rt(settings: Settings, store: Store, enqueued: list[str]) -> Runtime:
    s = settings.model_copy(update={"step_max_attempts": 3, "reconcile_stale_s": 5.0})
    return Runtime(settings=s, store=store,
                   backends=Backends(s, extra={"boom": Boom(), "flaky": Flaky(),
                                                "hangs": Hangs()}),
                   enqueue=enqueued.append)


def _create(store: Store, did: str = "disc_test", provider: str = "simulated",
            status: Status = Status.PENDING, **cfg: object) -> str:
    a = agent("a1")
    a.provider = provider
    b = agent("a2")
    b.provider = provider
    c = config(**cfg).model_copy(update={"id": did})
    store.create(c, [a, b], status=status)
    return did


def _crash_mid_turn(store: Store, did: str, ttl_ms: int) -> None:
    """What a worker killed between the agent call and the commit leaves behind."""
    token = store.acquire(did, ttl_ms)
    assert token is not None
    st = store.state(did)
    store.begin_turn(did, token, st.turn, {"turn": st.turn}, max_attempts=1000)
    store.r.delete(keys.lock(did))  # the lease expires


def test_a_turn_that_keeps_crashing_fails_the_discussion_with_the_reason(
        rt: Runtime, store: Store, r: redis.Redis) -> None:
    did = _create(store, status=Status.ACTIVE)
    for _ in range(3):  # three attempts each died before committing
        _crash_mid_turn(store, did, rt.settings.lease_ttl_ms)
    assert run_step(rt, did) == Outcome.IDLE
    st = store.state(did)
    assert st.status == Status.FAILED
    assert st.stop_reason == "step_attempts"
    assert "turn 0" in (st.error or "") and "3 times" in (st.error or "")
    assert st.seq == 0  # nothing was committed for the poisoned turn
    assert not r.sismember(keys.ACTIVE, did)
    last = store.events_after(did, "0")[-1]
    assert last.type == "status" and last.data["reason"] == "step_attempts"
    assert not r.exists(keys.lock(did))


def test_fewer_crashes_than_the_cap_still_complete_each_turn_once(
        rt: Runtime, store: Store) -> None:
    did = _create(store, status=Status.ACTIVE, max_rounds=2)
    for _ in range(2):
        _crash_mid_turn(store, did, rt.settings.lease_ttl_ms)
    while run_step(rt, did) == Outcome.MORE:
        pass
    st = store.state(did)
    assert st.status == Status.COMPLETED and st.seq == 4
    messages, _ = store.messages(did, 0, 10)
    assert [m.turn for m in messages] == [0, 1, 2, 3]
    started = [e for e in store.events_after(did, "0") if e.type == "turn_started"]
    assert [e.data["turn"] for e in started] == [0, 1, 2, 3]  # announced once despite retries


def test_an_unexpected_exception_is_recorded_on_the_discussion(
        rt: Runtime, store: Store, r: redis.Redis) -> None:
    did = _create(store)
    r.hset(keys.state(did), "pstate", "{corrupt")  # a step cannot even read its snapshot
    assert run_step(rt, did) == Outcome.IDLE
    raw = r.hgetall(keys.state(did))
    assert raw["status"] == "failed"
    assert raw["stop_reason"] == "internal_error"
    assert raw["error"] == "internal_error"  # the code for clients; the audit has the detail
    assert any("JSONDecodeError" in str(e["details"]) for e in audit.entries(r, did))
    last = store.events_after(did, "0")[-1]
    assert last.type == "status" and last.data["reason"] == "internal_error"
    assert not r.exists(keys.lock(did))  # the lease was released, not left to expire
    assert not r.sismember(keys.ACTIVE, did)


@pytest.mark.parametrize("provider", ["flaky", "boom"])
def test_agent_errors_stay_turn_failures_not_internal_errors(
        rt: Runtime, store: Store, provider: str) -> None:
    did = _create(store, provider=provider)
    while run_step(rt, did) == Outcome.MORE:
        pass
    st = store.state(did)
    assert st.status == Status.FAILED and st.stop_reason == "agent_failures"


def test_a_step_cut_short_is_not_parked_so_the_reconciler_still_sees_it(
        rt: Runtime, store: Store, r: redis.Redis, enqueued: list[str]) -> None:
    did = _create(store, provider="hangs", status=Status.ACTIVE)
    with pytest.raises(Cut):
        run_step(rt, did)
    assert r.hget(keys.state(did), "parked") is None
    assert not r.exists(keys.lock(did))
    _age(r, did, 60)
    assert reconciler.sweep(rt).nudged == [did]


# ---------------------------------------------------------------- the reconciler


def _age(r: redis.Redis, did: str, seconds: float) -> None:
    """Pretend the discussion's last change was `seconds` ago."""
    from datetime import UTC, datetime

    ts = datetime.fromtimestamp(time.time() - seconds, UTC)
    r.hset(keys.state(did), "updated_at", ts.isoformat(timespec="milliseconds")
           .replace("+00:00", "Z"))


def test_reconciler_nudges_only_discussions_that_should_move(
        rt: Runtime, store: Store, r: redis.Redis, enqueued: list[str]) -> None:
    lost = _create(store, "disc_lost")  # created, its dispatch lost
    fresh = _create(store, "disc_fresh")  # created just now: its step may still be queued
    leased = _create(store, "disc_leased")  # a step is running
    parked = _create(store, "disc_parked", protocol="free_form", status=Status.ACTIVE)
    waiting = _create(store, "disc_waiting", status=Status.WAITING_FOR_HUMAN)
    paused = _create(store, "disc_paused", status=Status.PAUSED)
    for did in (lost, leased, parked, waiting, paused):
        _age(r, did, 60)
    store.acquire(leased, 60_000)
    # A free-form discussion whose step found nobody to speak parks itself.
    r.hset(keys.state(parked), "parked", r.hget(keys.state(parked), "updated_at"))
    r.sadd(keys.ACTIVE, "disc_deleted")

    sweep = reconciler.sweep(rt)
    assert sweep.nudged == [lost] and enqueued == [lost]
    assert sweep.forgotten == ["disc_deleted"] and not r.sismember(keys.ACTIVE, "disc_deleted")
    assert sweep.checked == 7
    # The nudge is claimed for a window: a second sweep (or a second beat) does not repeat it.
    assert reconciler.sweep(rt).nudged == []
    # Any later change unparks: a post that should have woken the engine but whose dispatch
    # was lost is picked up once it is stale.
    _age(r, parked, 60)
    assert reconciler.sweep(rt).nudged == [parked]
    assert fresh not in enqueued


def test_reconciler_reenqueues_a_dead_steps_discussion_as_soon_as_its_lease_expires(
        rt: Runtime, store: Store, r: redis.Redis, enqueued: list[str]) -> None:
    did = _create(store, status=Status.ACTIVE)
    store.acquire(did, 200)  # a worker took the lease and died: it never released it
    assert reconciler.sweep(rt).orphans == [] and enqueued == []  # still leased
    time.sleep(0.3)
    # Not stale (it changed just now), but its last lease ended without a release.
    sweep = reconciler.sweep(rt)
    assert sweep.orphans == [did] and enqueued == [did] and sweep.nudged == []
    # Adopted once: another sweep (another worker, beat) does not enqueue it again.
    assert reconciler.sweep(rt).orphans == [] and enqueued == [did]
    # A lease given back normally is no orphan.
    token = store.acquire(did, 200)
    assert token is not None
    store.release(did, token)
    time.sleep(0.3)
    assert reconciler.sweep(rt).orphans == []


def test_release_parks_an_idle_active_discussion_only_if_nothing_moved(
        rt: Runtime, store: Store, r: redis.Redis) -> None:
    did = _create(store, status=Status.ACTIVE)
    token = store.acquire(did, 10_000)
    assert token is not None
    store.release(did, token, park_at_seq=0)
    parked, updated = r.hmget(keys.state(did), "parked", "updated_at")
    assert parked == updated
    # A release by a step that saw an older seq (a post landed meanwhile) does not park.
    r.hdel(keys.state(did), "parked")
    token = store.acquire(did, 10_000)
    assert token is not None
    r.hset(keys.state(did), "seq", 1)
    store.release(did, token, park_at_seq=0)
    assert r.hget(keys.state(did), "parked") is None
    # Nor does a release of a lease that is no longer ours.
    token = store.acquire(did, 10_000)
    assert token is not None
    store.release(did, token + 1, park_at_seq=1)
    assert r.hget(keys.state(did), "parked") is None


def test_waiting_for_human_goes_to_the_human_turn_hook(
        rt: Runtime, store: Store, r: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    did = _create(store, status=Status.WAITING_FOR_HUMAN)
    seen: list[str] = []

    def fake_expire(rt_: Runtime, discussion_id: str) -> bool:
        seen.append(discussion_id)
        return True

    monkeypatch.setattr(reconciler, "expire_human_turn", fake_expire)
    sweep = reconciler.sweep(rt)
    assert seen == [did] and sweep.expired_human_turns == [did] and sweep.nudged == []


def test_time_based_retention_trims_old_events(
        rt: Runtime, store: Store, r: redis.Redis) -> None:
    did = _create(store, status=Status.ACTIVE, max_rounds=30)
    while run_step(rt, did) == Outcome.MORE:
        pass
    before = r.xlen(keys.events(did))
    rt.settings = rt.settings.model_copy(update={"events_retention_s": 1.0})
    sweep = reconciler.sweep(rt, now=time.time() + 3600)
    # Approximate trimming removes whole radix-tree nodes: some, maybe not all, go.
    assert r.xlen(keys.events(did)) <= before
    assert sweep.trimmed_events == before - r.xlen(keys.events(did))


def test_reconcile_task_recovers_a_lost_enqueue_end_to_end(
        settings: Settings, store: Store, r: redis.Redis, celery_app, celery_worker) -> None:
    # Stored but never dispatched: only the reconciler can start it.
    did = _create(store, "disc_orphan", max_rounds=2)
    _age(r, did, 3600)
    summary = celery_app.send_task("discussion.reconcile")
    assert summary is not None
    wait_for(lambda: store.state(did).status == Status.COMPLETED, timeout=30)
    assert store.state(did).seq == 4


def test_a_broker_that_refuses_the_enqueue_does_not_fail_the_request(
        settings: Settings, r: redis.Redis, store: Store) -> None:
    from kombu.exceptions import OperationalError

    from api import create_app

    def broken_broker(did: str) -> None:
        raise OperationalError("broker unreachable")

    app = create_app({"TESTING": True}, settings=settings, redis_client=r,
                     dispatch=broken_broker)
    resp = app.test_client().post("/v1/discussions", json=agent_body(2, 1))
    assert resp.status_code == 201, resp.get_json()
    did = resp.get_json()["id"]
    assert store.state(did).status == Status.PENDING  # accepted; the reconciler will start it
    assert r.sismember(keys.ACTIVE, did)
