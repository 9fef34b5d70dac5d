"""Snapshots reuse the parsed config and participants only while their stored JSON is the same."""

from __future__ import annotations

import json

import redis

from core.ground.models import Status
from core.storage import keys
from core.storage.store import Store
from tests.helpers import agent, config, human


def _create(store: Store) -> str:
    store.create(config(), [agent("a1"), agent("a2"), human("h1", "john")],
                 status=Status.ACTIVE, users=["john"])
    return "disc_test"


def test_snapshots_see_changed_participants_and_config(r: redis.Redis, store: Store) -> None:
    did = _create(store)
    first = store.snapshot(did, 5)
    again = store.snapshot(did, 5)
    assert again.config is first.config  # parsed once while nothing changed
    assert again.participants is not first.participants  # each snapshot owns its list
    assert sorted(p.participant_id for p in again.participants) == ["a1", "a2", "h1"]

    raw = json.loads(r.hget(keys.participants(did), "a2"))
    raw["name"] = "Renamed"
    r.hset(keys.participants(did), "a2", json.dumps(raw))
    cfg = json.loads(r.get(keys.session(did)))
    cfg["topic"] = "A new topic"
    r.set(keys.session(did), json.dumps(cfg))

    fresh = store.snapshot(did, 5)
    assert fresh.participant("a2").name == "Renamed"
    assert fresh.config.topic == "A new topic"


def test_a_recreated_discussion_is_parsed_anew(r: redis.Redis, store: Store) -> None:
    did = _create(store)
    assert len(store.snapshot(did, 5).participants) == 3
    store.delete(did)
    store.create(config(), [agent("a1")], status=Status.ACTIVE)
    assert [p.participant_id for p in store.snapshot(did, 5).participants] == ["a1"]
