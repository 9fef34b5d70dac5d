"""Issue 13, finding 7: storage is bounded by default.

Finished discussions are deleted after a default retention (RETENTION_FINISHED_S=0 keeps them
forever); a user's discussions may hold at most USER_STORAGE_BYTES, one discussion at most
MAX_DISCUSSION_BYTES, each with a clear 413; the bytes stored per message are measured.
"""

from __future__ import annotations

import time

import redis

from core.agents import Backends
from core.ground.settings import Settings
from core.operations import retention
from core.storage import keys
from core.storage.store import Store
from tests.helpers import agent_body
from workers.engine import Runtime, run_step


def _free_form(users_: list[str]) -> dict:
    return {**agent_body(1, 1), "protocol": "free_form",
            "humans": [{"user_id": u, "name": u.title()} for u in users_]}


def _pid(session: dict, user: str) -> str:
    return next(p["participant_id"] for p in session["participants"] if p["user_id"] == user)


def test_finished_discussions_expire_by_default(sec_client, users, store, r) -> None:
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    retention_s = defaults.retention_finished_s
    assert retention_s > 0, "finished discussions must not be kept forever by default"
    h = users.headers("alice")
    did = sec_client.post("/v1/discussions", json=agent_body(1, 1), headers=h).json["id"]
    assert sec_client.post(f"/v1/discussions/{did}/cancel", headers=h).status_code == 200
    assert retention.sweep(store, retention_s, now=time.time() + retention_s / 2) == []
    assert retention.sweep(store, retention_s, now=time.time() + retention_s + 5) == [did]
    assert not any(r.exists(k) for k in keys.discussion_keys(did))
    # One that finished before the finished index existed is found by the one-time pass.
    old = sec_client.post("/v1/discussions", json=agent_body(1, 1), headers=h).json["id"]
    sec_client.post(f"/v1/discussions/{old}/cancel", headers=h)
    r.zrem(keys.FINISHED, old)
    r.delete(keys.RETENTION_INDEXED)
    assert retention.sweep(store, retention_s, now=time.time() + retention_s + 5) == [old]
    assert r.exists(keys.RETENTION_INDEXED) and r.zcard(keys.FINISHED) == 0
    # RETENTION_FINISHED_S=0 keeps them forever.
    did = sec_client.post("/v1/discussions", json=agent_body(1, 1), headers=h).json["id"]
    sec_client.post(f"/v1/discussions/{did}/cancel", headers=h)
    assert retention.sweep(store, 0, now=time.time() + 10 * 365 * 86400) == []


def test_a_discussion_has_a_byte_cap(make_app, sec_settings, users) -> None:
    # A 64 KiB cap (default 16 MiB) so that four 20,000-character posts reach it.
    client = make_app(sec_settings.model_copy(
        update={"max_discussion_bytes": 64 * 1024})).test_client()
    h = users.headers("alice")
    session = client.post("/v1/discussions", json=_free_form(["alice"]), headers=h).json
    url = f"/v1/discussions/{session['id']}/messages"
    answers = [client.post(url, json={"participant_id": _pid(session, "alice"),
                                      "content": "x" * 20_000}, headers=h)
               for _ in range(5)]
    codes = [a.status_code for a in answers]
    assert codes[:3] == [201, 201, 201] and codes[-1] == 413, codes
    refused = answers[-1].json
    assert refused["error"] == "discussion_storage_full", refused
    assert refused["details"]["limit"] == 64 * 1024


def test_a_user_has_a_storage_quota(make_app, sec_settings, users) -> None:
    # A 100 KiB quota (default 256 MiB) so that a few posts reach it.
    client = make_app(sec_settings.model_copy(
        update={"user_storage_bytes": 100 * 1024})).test_client()
    h = users.headers("alice")
    one = client.post("/v1/discussions", json=_free_form(["alice"]), headers=h).json
    two = client.post("/v1/discussions", json=_free_form(["alice"]), headers=h).json
    codes = []
    for _ in range(3):
        for s in (one, two):
            codes.append(client.post(f"/v1/discussions/{s['id']}/messages", headers=h,
                                     json={"participant_id": _pid(s, "alice"),
                                           "content": "y" * 20_000}).status_code)
    assert 413 in codes and codes[0] == 201, codes
    over = client.post(f"/v1/discussions/{two['id']}/messages", headers=h,
                       json={"participant_id": _pid(two, "alice"), "content": "y" * 20_000})
    assert over.status_code == 413 and over.json["error"] == "storage_quota_exceeded"
    assert over.json["details"]["limit"] == 100 * 1024
    size = 10_000  # fill what is left with smaller posts, down to a few hundred bytes
    while size >= 100:
        resp = client.post(f"/v1/discussions/{two['id']}/messages", headers=h,
                           json={"participant_id": _pid(two, "alice"), "content": "y" * size})
        if resp.status_code == 413:
            size //= 2
    created = client.post("/v1/discussions", json=_free_form(["alice"]), headers=h)
    assert created.status_code == 413 and created.json["error"] == "storage_quota_exceeded"
    # Other users are not affected; deleting gives the space back.
    assert client.post("/v1/discussions", json=agent_body(1, 1),
                       headers=users.headers("bob")).status_code == 201
    assert client.delete(f"/v1/discussions/{one['id']}", headers=h).status_code == 200
    assert client.post(f"/v1/discussions/{two['id']}/messages", headers=h,
                       json={"participant_id": _pid(two, "alice"),
                             "content": "y" * 20_000}).status_code == 201


def test_agent_turns_stop_at_the_discussion_cap(make_app, sec_settings, users, store) -> None:
    # A 4 KiB cap (default 16 MiB) so that about ten simulated replies reach it.
    settings = sec_settings.model_copy(update={"max_discussion_bytes": 4096})
    client = make_app(settings).test_client()
    did = client.post("/v1/discussions", json=agent_body(2, 200),
                      headers=users.headers("alice")).json["id"]
    rt = Runtime(settings=settings, store=store, backends=Backends(settings),
                 enqueue=lambda _did: None)
    for _ in range(50):
        run_step(rt, did)
        if store.state(did).status.terminal:
            break
    state = store.state(did)
    assert state.status.value == "completed" and state.stop_reason == "storage_limit", state
    assert 4 <= state.seq < 30
    assert int(store.r.hget(keys.state(did), "bytes")) <= 4096 + 2000  # one reply past, at most


def test_bytes_stored_per_message_are_measured(sec_client, users, r: redis.Redis,
                                               store: Store) -> None:
    h = users.headers("alice")
    session = sec_client.post("/v1/discussions", json=_free_form(["alice"]), headers=h).json
    did, pid = session["id"], _pid(session, "alice")
    content_chars, n = 2000, 50

    def stored() -> int:
        return sum(r.memory_usage(k) or 0 for k in keys.discussion_keys(did) if r.exists(k))

    before = stored()
    for i in range(n):
        assert sec_client.post(f"/v1/discussions/{did}/messages", headers=h,
                               json={"participant_id": pid,
                                     "content": f"{i:04d}" + "z" * (content_chars - 4)}
                               ).status_code == 201
    per_message = (stored() - before) / n
    counted = int(r.hget(keys.state(did), "bytes") or 0) / n
    print(f"bytes stored per message of {content_chars} characters: {per_message:.0f} in Redis "
          f"({per_message / content_chars:.2f}x content), {counted:.0f} counted against quotas")
    assert per_message <= 3 * content_chars + 1024
    # The quotas count each message's record; Redis holds it and its event's copy.
    assert 0.4 * per_message <= counted <= per_message
