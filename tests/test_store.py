"""The store against a real Redis: atomic commits, fencing, deletion."""

from __future__ import annotations

import pytest
import redis

from core.ground.clock import iso
from core.ground.errors import Conflict, DiscussionNotFound, StaleLease
from core.ground.models import Message, ParticipantType, Status
from core.storage import keys
from core.storage.store import Commit, Store
from tests.helpers import agent, config, human


def _msg(text: str = "hi") -> Message:
    return Message(message_id="msg_x", participant_id="a1", participant_name="A",
                   participant_type=ParticipantType.AGENT, content=text, timestamp=iso())


@pytest.fixture
def created(store: Store) -> str:
    store.create(config(), [agent("a1"), agent("a2"), human("h1", "john")],
                 status=Status.ACTIVE, users=["john"])
    return "disc_test"


def test_create_writes_the_seed_layout(r: redis.Redis, created: str) -> None:
    assert r.exists(keys.session(created), keys.participants(created), keys.state(created),
                    keys.events(created)) == 4
    assert r.sismember(keys.ACTIVE, created)
    assert r.sismember(keys.user_discussions("john"), created)
    assert r.hget(keys.state(created), "status") == "active"


def test_commit_assigns_contiguous_seq_and_writes_event(store: Store, created: str) -> None:
    seqs = [store.commit(created, Commit(message=_msg(f"m{i}"))).seq for i in range(5)]
    assert seqs == [1, 2, 3, 4, 5]
    messages, total = store.messages(created, 0, 10)
    assert total == 5 and [m.seq for m in messages] == [1, 2, 3, 4, 5]
    events = [e for e in store.events_after(created, "0") if e.type == "message"]
    assert [e.data["seq"] for e in events] == [1, 2, 3, 4, 5]
    assert events[0].data["content"] == "m0"


def test_fencing_refuses_a_stale_token(store: Store, created: str) -> None:
    token = store.acquire(created, 10_000)
    assert token is not None
    assert store.acquire(created, 10_000) is None  # held
    store.commit(created, Commit(message=_msg(), advance_turn=True), token=token, turn=0,
                 lease_ttl_ms=10_000)
    with pytest.raises(StaleLease):  # the same turn again: already moved on
        store.commit(created, Commit(message=_msg(), advance_turn=True), token=token, turn=0)
    store.release(created, token)
    newer = store.acquire(created, 10_000)
    assert newer is not None and newer > token
    with pytest.raises(StaleLease):  # the old token after a takeover
        store.commit(created, Commit(message=_msg(), advance_turn=True), token=token, turn=1)
    assert store.messages(created, 0, 10)[1] == 1


def test_terminal_discussion_refuses_messages(store: Store, created: str) -> None:
    store.commit(created, Commit(updates={"status": "completed"}))
    with pytest.raises(Conflict):
        store.commit(created, Commit(message=_msg()))
    assert not store.r.sismember(keys.ACTIVE, created)


def test_idempotent_commit_replays(store: Store, created: str) -> None:
    first = store.commit(created, Commit(message=_msg("once")), idempotency_key="k1",
                         idempotency_ttl_s=60)
    again = store.commit(created, Commit(message=_msg("once")), idempotency_key="k1",
                         idempotency_ttl_s=60)
    assert again.replayed and again.seq == first.seq
    assert store.messages(created, 0, 10)[1] == 1


def test_delete_leaves_no_key(r: redis.Redis, store: Store, created: str) -> None:
    store.commit(created, Commit(message=_msg()), idempotency_key="k", idempotency_ttl_s=60)
    token = store.acquire(created, 10_000)
    assert token
    store.delete(created)
    assert r.keys(f"discussion:{created}:*") == []
    assert not r.sismember(keys.ACTIVE, created)
    assert not r.sismember(keys.user_discussions("john"), created)
    assert r.zscore(keys.ALL, created) is None
    with pytest.raises(DiscussionNotFound):
        store.commit(created, Commit(message=_msg()), token=token, turn=0)
    store.cache_reply(created, 0, {"content": "late"})
    assert r.keys(f"discussion:{created}:*") == []  # a late step recreates nothing
