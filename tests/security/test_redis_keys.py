"""Issue 13, finding 3: client strings never become part of a Redis key unhashed.

An Idempotency-Key is hashed into its key; path ids are checked against their id pattern before
any Redis call; an idempotency key belongs to the participant who posted with it (in the
service and in the Lua commit), so another person's post with the same key is their own.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import redis

from core.ground.settings import Settings
from tests.security.conftest import shared_discussion


@contextmanager
def _monitor(settings: Settings) -> Iterator[list[str]]:
    """Every command the Redis server runs meanwhile, as text (Redis MONITOR)."""
    seen: list[str] = []
    client = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    ready = threading.Event()
    stop = threading.Event()

    def watch() -> None:
        with client.monitor() as m:
            ready.set()
            for cmd in m.listen():
                seen.append(cmd["command"])
                if stop.is_set() and "monitor-stop-marker" in cmd["command"]:
                    return

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    ready.wait(5)
    try:
        yield seen
    finally:
        stop.set()
        client.get("monitor-stop-marker")
        thread.join(timeout=5)
        client.close()


def test_idempotency_key_is_hashed_into_its_redis_key(sec_client, users, r) -> None:
    did, _, bob = shared_discussion(sec_client, users)
    h = {**users.headers("bob"), "Idempotency-Key": "zz:session"}
    first = sec_client.post(f"/v1/discussions/{did}/messages", headers=h,
                            json={"participant_id": bob, "content": "once"})
    assert first.status_code == 201
    names = list(r.scan_iter(match="*zz*"))
    assert names == [], names
    # The old layout made `{id}:idem:zz` look like a discussion id with keys of its own.
    for method in ("get", "delete"):
        resp = getattr(sec_client, method)(f"/v1/discussions/{did}:idem:zz",
                                           headers=users.headers("alice"))
        assert resp.status_code == 404, (method, resp.status_code, resp.json)
    again = sec_client.post(f"/v1/discussions/{did}/messages", headers=h,
                            json={"participant_id": bob, "content": "once"})
    assert again.status_code == 201 and again.headers.get("Idempotent-Replayed") == "true"
    assert again.json["message_id"] == first.json["message_id"]


@pytest.mark.parametrize("path", [
    "/v1/discussions/disc_x:session", "/v1/discussions/disc_*", "/v1/discussions/zz%0d%0aPING",
    "/v1/discussions/disc_x:session/messages", "/v1/discussions/disc_x:state/stats",
    "/v1/discussions/disc_x:audit/audit", "/v1/schedules/sched_x:runs",
    "/v1/batches/batch_x:items", "/v1/batches/batch_x:items/cancel",
])
def test_path_ids_are_checked_before_any_redis_call(sec_client, sec_settings, users,
                                                    path) -> None:
    h = users.headers("alice")
    users.key("alice")  # made before watching
    bad_id = path.split("/")[3]
    method = sec_client.post if path.endswith("/cancel") else sec_client.get
    with _monitor(sec_settings) as seen:
        resp = method(path, headers=h)
    assert resp.status_code in (404, 422), (resp.status_code, resp.json)
    assert resp.json["error"] != "internal_error"
    touched = [c for c in seen if bad_id.split(":")[0].replace("%0d%0a", "") in c
               and "monitor-stop-marker" not in c]
    assert touched == [], touched


def test_idempotency_keys_belong_to_the_participant(sec_client, users) -> None:
    did, alice, bob = shared_discussion(sec_client, users)
    url = f"/v1/discussions/{did}/messages"
    a = sec_client.post(url, json={"participant_id": alice, "content": "alice's words"},
                        headers={**users.headers("alice"), "Idempotency-Key": "k1"})
    b = sec_client.post(url, json={"participant_id": bob, "content": "bob's words"},
                        headers={**users.headers("bob"), "Idempotency-Key": "k1"})
    assert a.status_code == 201 and b.status_code == 201
    assert b.headers.get("Idempotent-Replayed") is None
    assert b.json["participant_id"] == bob and b.json["content"] == "bob's words"
    replay = sec_client.post(url, json={"participant_id": alice, "content": "alice's words"},
                             headers={**users.headers("alice"), "Idempotency-Key": "k1"})
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert replay.json["message_id"] == a.json["message_id"]
    contents = [m["content"] for m in
                sec_client.get(url, headers=users.headers("alice")).json["messages"]]
    assert contents == ["alice's words", "bob's words"]


def test_the_commit_itself_scopes_idempotency_to_the_participant(store, sec_client,
                                                                 users) -> None:
    """Below the service: a commit with another participant's key never replays theirs."""
    from core.ground.clock import iso
    from core.ground.models import Message, ParticipantType
    from core.storage.store import Commit

    did, alice, bob = shared_discussion(sec_client, users)

    def msg(pid: str, text: str) -> Message:
        return Message(message_id=f"msg_{text}", participant_id=pid, participant_name=pid,
                       participant_type=ParticipantType.HUMAN, content=text, timestamp=iso())

    first = store.commit(did, Commit(message=msg(alice, "a")), idempotency_key="k",
                         idempotency_ttl_s=60, participant_id=alice)
    second = store.commit(did, Commit(message=msg(bob, "b")), idempotency_key="k",
                          idempotency_ttl_s=60, participant_id=bob)
    assert not second.replayed and second.message.content == "b"
    again = store.commit(did, Commit(message=msg(alice, "a2")), idempotency_key="k",
                         idempotency_ttl_s=60, participant_id=alice)
    assert again.replayed and again.message.message_id == first.message.message_id
