"""Moderation: floor, held messages, mute, pause/resume/end; 403 for everyone else."""

from __future__ import annotations

import pytest

from core.storage.store import Store
from tests.e2e import Api, people
from tests.helpers import wait_for


def moderated(**extra) -> dict:
    agents = extra.pop("agents", [{"persona": "Security Expert"},
                                  {"persona": "Backend Developer"}])
    return {
        "topic": "Design API for user authentication",
        "agents": agents,
        "humans": [{"user_id": "ann", "name": "Ann",
                    "permissions": ["read", "write", "moderate"]},
                   {"user_id": "john", "name": "John", "permissions": ["read", "write"]}],
        "protocol": "moderated",
        "max_rounds": 2,
        **extra,
    }


def act(client, did: str, **body):
    return client.post(f"/v1/discussions/{did}/moderation", json=body)


def test_every_action_needs_moderate(client, store: Store) -> None:
    s = client.post("/v1/discussions", json=moderated()).json
    ids = people(s)
    did, john, agent = s["id"], ids["John"], ids["Security Expert"]
    before = len(store.events_after(did, "0"))
    for body in ({"action": "floor", "participant_id": agent}, {"action": "mute",
                 "participant_id": agent}, {"action": "unmute", "participant_id": agent},
                 {"action": "approve", "held_id": "held_x"}, {"action": "reject",
                 "held_id": "held_x"}, {"action": "pause"}, {"action": "resume"},
                 {"action": "end"}):
        for who in (john, agent):  # a writer and a plain agent: neither may moderate
            resp = act(client, did, by=who, **body)
            assert resp.status_code == 403, (body, resp.json)
            assert resp.json["error"] == "forbidden"
    assert len(store.events_after(did, "0")) == before  # nothing happened
    assert act(client, did, by="human_nobody", action="pause").status_code == 404


@pytest.mark.parametrize("body", [
    {"action": "floor"}, {"action": "approve"}, {"action": "dance"},
    {"action": "mute", "participant_id": "x" * 65}, {"by": "", "action": "pause"},
])
def test_moderation_bad_input(client, body) -> None:
    s = client.post("/v1/discussions", json=moderated()).json
    resp = act(client, s["id"], **{"by": people(s)["Ann"], **body})
    assert resp.status_code == 422 and resp.json["error"] == "validation_error"


def test_held_messages_approve_and_reject(client, dispatched) -> None:
    s = client.post("/v1/discussions", json=moderated(require_approval=True)).json
    ids = people(s)
    did, ann, john = s["id"], ids["Ann"], ids["John"]
    url = f"/v1/discussions/{did}/messages"
    first = client.post(url, json={"participant_id": john, "content": "Use OAuth."},
                        headers={"Idempotency-Key": "k1"})
    assert first.status_code == 202 and first.json["status"] == "held"
    replay = client.post(url, json={"participant_id": john, "content": "Use OAuth."},
                         headers={"Idempotency-Key": "k1"})
    assert replay.status_code == 202 and replay.json["held_id"] == first.json["held_id"]
    assert replay.headers["Idempotent-Replayed"] == "true"
    second = client.post(url, json={"participant_id": john, "content": "Spam!"}).json
    own = client.post(url, json={"participant_id": ann, "content": "Welcome."})
    assert own.status_code == 201  # a moderator's post is not held
    held = client.get(f"/v1/discussions/{did}/held").json["held"]
    assert [h["message"]["content"] for h in held] == ["Use OAuth.", "Spam!"]
    assert client.get(url).json["total"] == 1
    assert client.get(f"/v1/discussions/{did}").json["held_count"] == 2
    ok = act(client, did, by=ann, action="approve", held_id=first.json["held_id"])
    assert ok.status_code == 200
    assert act(client, did, by=ann, action="approve",
               held_id=first.json["held_id"]).status_code == 404  # once only
    assert act(client, did, by=ann, action="reject",
               held_id=second["held_id"]).status_code == 200
    transcript = client.get(url).json["messages"]
    assert [m["content"] for m in transcript] == ["Welcome.", "Use OAuth."]
    assert transcript[1]["metadata"]["approved_by"] == ann
    assert client.get(f"/v1/discussions/{did}/held").json["held"] == []


def test_mute_unmute_and_floor_state(client, store: Store) -> None:
    s = client.post("/v1/discussions", json=moderated()).json
    ids = people(s)
    did, ann, john = s["id"], ids["Ann"], ids["John"]
    assert act(client, did, by=ann, action="mute", participant_id=john).status_code == 200
    resp = client.post(f"/v1/discussions/{did}/messages",
                       json={"participant_id": john, "content": "hello?"})
    assert resp.status_code == 409 and "muted" in resp.json["message"]
    assert client.get(f"/v1/discussions/{did}").json["muted"] == [john]
    assert act(client, did, by=ann, action="floor", participant_id=john).status_code == 409
    assert act(client, did, by=ann, action="mute", participant_id=ann).status_code == 409
    assert act(client, did, by=ann, action="unmute", participant_id=john).status_code == 200
    assert act(client, did, by=ann, action="floor", participant_id=john).status_code == 200
    floor = client.get(f"/v1/discussions/{did}").json["floor"]
    assert floor["participant_id"] == john and floor["by"] == ann
    kinds = [(e.data["action"], e.data.get("participant_id")) for e in
             store.events_after(did, "0") if e.type == "moderation"]
    assert kinds == [("mute", john), ("unmute", john), ("floor", john)]
    from core.storage import audit

    logged = [(e["action"], e["actor"], e["target"]) for e in audit.entries(store.r, did)
              if e["action"].startswith("moderation.")]
    assert logged == [("moderation.mute", ann, john), ("moderation.unmute", ann, john),
                      ("moderation.floor", ann, john)]
    # Floor and mute belong to moderated discussions.
    rr = client.post("/v1/discussions", json={**moderated(), "protocol": "round_robin"}).json
    assert act(client, rr["id"], by=people(rr)["Ann"], action="mute",
               participant_id=people(rr)["John"]).status_code == 409


def test_moderated_run_with_floor_to_a_person_and_end(live_server: str) -> None:
    api = Api(live_server)
    s = api.create(moderated(max_rounds=50, agents=[
        {"persona": "Security Expert", "params": {"latency_ms": 150}},
        {"persona": "Backend Developer", "params": {"latency_ms": 150}}]))
    ids = people(s)
    did, ann, john = s["id"], ids["Ann"], ids["John"]
    wait_for(lambda: api.get(did)["message_count"] >= 1)
    assert api.post(did, "moderation", {"by": ann, "action": "floor",
                                        "participant_id": john}).status_code == 200
    waiting = api.wait_status(did, "waiting_for_human")
    assert waiting["waiting_for"] == john
    resp = api.post(did, "messages", {"participant_id": john, "content": "My view: passkeys."})
    assert resp.status_code == 201 and resp.json()["turn"] is not None
    wait_for(lambda: api.get(did)["message_count"] >= resp.json()["seq"] + 1)
    assert api.post(did, "moderation", {"by": ann, "action": "mute",
                                        "participant_id": ids["Security Expert"]}
                    ).status_code == 200
    mark = api.get(did)["message_count"] + 1  # one turn may already be under way
    wait_for(lambda: api.get(did)["message_count"] >= mark + 3)
    later = [m for m in api.messages(did) if m["seq"] > mark]
    assert later and {m["participant_name"] for m in later} == {"Backend Developer"}
    assert api.post(did, "moderation", {"by": ann, "action": "end"}).status_code == 200
    done = api.get(did)
    assert done["status"] == "completed" and done["stop_reason"] == "moderator"


def test_moderator_agent_chooses_and_ends(live_server: str, store: Store) -> None:
    api = Api(live_server)
    s = api.create(moderated(max_rounds=10, agents=[
        {"persona": "Chair", "moderator": True,
         "params": {"choose": ["Backend Developer", "Backend Developer", "Security Expert"],
                    "end_after": 3}},
        {"persona": "Security Expert"}, {"persona": "Backend Developer"}]))
    done = api.finished(s["id"])
    assert done["status"] == "completed" and done["stop_reason"] == "moderator"
    names = [m["participant_name"] for m in api.messages(s["id"])]
    assert names == ["Backend Developer", "Backend Developer", "Security Expert"]
    picks = [e.data for e in store.events_after(s["id"], "0") if e.type == "moderation"]
    assert [p["action"] for p in picks] == ["floor", "floor", "floor", "end"]
    assert all(p["auto"] and p["by"] == people(s)["Chair"] for p in picks)


def test_moderator_agent_validation(client) -> None:
    two = [{"persona": "A", "moderator": True}, {"persona": "B", "moderator": True}]
    assert client.post("/v1/discussions", json=moderated(agents=two)).status_code == 422
    rr = {**moderated(agents=[{"persona": "A", "moderator": True}]), "protocol": "round_robin"}
    assert client.post("/v1/discussions", json=rr).status_code == 422
    bad = [{"persona": "A", "moderator": True, "params": {"choose": 5}}]
    assert client.post("/v1/discussions", json=moderated(agents=bad)).status_code == 422
