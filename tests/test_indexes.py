"""Indexes kept as data changes (core.storage.indexes), against a real Redis: status counts,
delete without a keyspace scan, the per-user listing and its cursor, the finished set and the
trim of a finished discussion's events (past the tail, a resume gets resync)."""

from __future__ import annotations

import time

import redis

from core.ground.clock import iso
from core.ground.models import Message, ParticipantType, Status
from core.operations import retention
from core.storage import indexes, keys
from core.storage.heartbeats import discussions_by_status
from core.storage.listing import ListFilter, list_page
from core.storage.store import Commit, Store
from tests.helpers import agent, config, human


def _create(store: Store, did: str, *, user: str = "john", created_at: str | None = None,
            status: Status = Status.ACTIVE) -> str:
    cfg = config().model_copy(update={"id": did, "created_at": created_at or iso()})
    store.create(cfg, [agent("a1"), human("h1", user)], status=status, users=[user])
    return did


def _msg(text: str) -> Message:
    return Message(message_id="msg_x", participant_id="h1", participant_name="Pat",
                   participant_type=ParticipantType.HUMAN, content=text, timestamp=iso())


def _finish(store: Store, did: str, status: Status = Status.COMPLETED) -> None:
    store.commit(did, Commit(updates={"status": status}, events=[("status", {"status": status})]))


def _scans(r: redis.Redis) -> int:
    return int(r.info("commandstats").get("cmdstat_scan", {}).get("calls", 0))


def test_status_counts_follow_create_commit_and_delete(store: Store, r: redis.Redis) -> None:
    for i in range(5):
        _create(store, f"disc_{i}", status=Status.PENDING)
    store.commit("disc_0", Commit(updates={"status": Status.ACTIVE}))
    _finish(store, "disc_1")
    _finish(store, "disc_2", Status.CANCELLED)
    store.commit("disc_3", Commit(updates={"status": Status.PENDING}))  # no change, no count
    assert discussions_by_status(r) == {"pending": 2, "active": 1, "completed": 1,
                                        "cancelled": 1}
    store.delete("disc_1")
    assert discussions_by_status(r) == {"pending": 2, "active": 1, "cancelled": 1}
    # A second delete of the same id (a retried request, a retention race) counts nothing.
    indexes.delete_discussion(r, "disc_1", ["john"])
    assert discussions_by_status(r) == {"pending": 2, "active": 1, "cancelled": 1}


def test_status_counts_are_rebuilt_once_from_stored_data(store: Store, r: redis.Redis) -> None:
    for i in range(3):
        _create(store, f"disc_{i}")
    _finish(store, "disc_0")
    r.delete(keys.STATUS_COUNTS)  # as after an upgrade: discussions stored, no counts yet
    r.hincrby(keys.STATUS_COUNTS, "active", -1)  # a commit that ran before the first scrape
    assert discussions_by_status(r) == {"active": 2, "completed": 1}
    assert r.hget(keys.STATUS_COUNTS, "_built") == "1"


def test_delete_removes_idempotency_keys_without_scanning(store: Store, r: redis.Redis) -> None:
    did = _create(store, "disc_idem")
    other = _create(store, "disc_other")
    for key in ("k1", "k2"):
        store.commit(did, Commit(message=_msg(key)), idempotency_key=key, idempotency_ttl_s=60)
    store.commit(other, Commit(message=_msg("x")), idempotency_key="k1", idempotency_ttl_s=60)
    assert r.exists(keys.idempotency(did, "h1", "k1"), keys.idempotency(did, "h1", "k2")) == 2
    scans = _scans(r)
    store.delete(did)
    assert _scans(r) == scans
    assert [k for k in r.scan_iter(count=1000) if did in k] == []
    assert not r.sismember(keys.user_discussions("john"), did)
    assert r.zscore(keys.user_listing("john"), did) is None
    assert r.exists(keys.idempotency(other, "h1", "k1"))  # another discussion's key stays


def test_the_idempotency_index_keeps_live_keys_only(store: Store, r: redis.Redis) -> None:
    did = _create(store, "disc_idem")
    store.commit(did, Commit(message=_msg("a")), idempotency_key="old", idempotency_ttl_s=1)
    # Expired by its score: the next indexed write drops it from the index.
    r.zadd(keys.idempotency_index(did), {keys.idempotency(did, "h1", "old"): time.time() - 5})
    store.commit(did, Commit(message=_msg("b")), idempotency_key="new", idempotency_ttl_s=60)
    assert r.zrange(keys.idempotency_index(did), 0, -1) == [keys.idempotency(did, "h1", "new")]


def test_a_users_listing_pages_their_index_by_cursor(store: Store, r: redis.Redis) -> None:
    base = time.time() - 1000
    mine = [_create(store, f"disc_m{i}", created_at=_iso(base + i)) for i in range(7)]
    for i in range(50):
        _create(store, f"disc_o{i}", user="someone", created_at=_iso(base + i))
    pages, cursor = [], None
    while True:
        ids, cursor = list_page(r, ListFilter(user="john"), limit=3, cursor=cursor)
        pages.append(ids)
        if cursor is None:
            break
    assert pages == [mine[6:3:-1], mine[3:0:-1], mine[:1]]
    assert list_page(r, ListFilter(user="nobody"), limit=10) == ([], None)
    _finish(store, mine[5])
    assert list_page(r, ListFilter(user="john", active_only=True), limit=3)[0] == \
        [mine[6], mine[4], mine[3]]


def test_a_listing_finds_discussions_stored_before_the_index(store: Store,
                                                            r: redis.Redis) -> None:
    older = _create(store, "disc_old", created_at=_iso(time.time() - 60))
    r.delete(keys.user_listing("john"))  # stored by a version without the ordered index
    newer = _create(store, "disc_new")
    assert list_page(r, ListFilter(user="john"))[0] == [newer, older]


def test_a_finished_discussions_events_are_trimmed_and_resume_resyncs(
        store: Store, r: redis.Redis) -> None:
    did = _create(store, "disc_trim")
    for i in range(30):
        store.commit(did, Commit(message=_msg(f"m{i}")))
    early = store.events_after(did, "0", count=2)[1].id
    _finish(store, did)
    last = store.last_event_id(did)
    assert r.zscore(keys.UNTRIMMED, did) is not None
    assert retention.trim_finished_events(store, 3600, 5) == []  # not yet due
    assert retention.trim_finished_events(store, 0, 5) == [did]
    assert r.xlen(keys.events(did)) == 5 and r.zscore(keys.UNTRIMMED, did) is None
    assert store.events_trimmed_after(did, early) is not None  # resume: resync_required
    assert store.events_trimmed_after(did, last) is None  # a viewer at the end: nothing lost
    assert store.messages(did, 0, 100)[1] == 30  # the transcript itself is whole


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{int(epoch % 1 * 1e6):06d}Z"
