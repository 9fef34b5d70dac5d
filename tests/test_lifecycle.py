"""Lifecycle endpoints: pause, resume, cancel; 409 for illegal transitions; status events."""

from __future__ import annotations

import time

import pytest

from core.storage.store import Store
from tests.e2e import Api
from tests.helpers import agent_body, wait_for


def _statuses(store: Store, did: str) -> list[tuple[str, str]]:
    return [(e.data.get("previous"), e.data["status"]) for e in store.events_after(did, "0")
            if e.type == "status"]


def test_pause_mid_turn_keeps_the_reply_and_resume_finishes(live_server: str,
                                                            store: Store) -> None:
    api = Api(live_server)
    s = api.create(agent_body(2, 2, latency_ms=1500))
    did = s["id"]
    wait_for(lambda: any(e.type == "turn_started" for e in store.events_after(did, "0")))
    resp = api.post(did, "pause", {"reason": "coffee"})
    assert resp.status_code == 200 and resp.json()["status"] == "paused"
    assert api.post(did, "pause").status_code == 409  # already paused
    time.sleep(1.8)  # the agent's reply arrives while paused: it must not join the transcript
    paused = api.get(did)
    assert paused["status"] == "paused" and paused["message_count"] == 0
    assert api.post(did, "resume").status_code == 200
    done = api.finished(did)
    assert done["status"] == "completed" and done["message_count"] == 4
    msgs = api.messages(did)
    assert [m["seq"] for m in msgs] == [1, 2, 3, 4] and [m["turn"] for m in msgs] == [0, 1, 2, 3]
    assert msgs[0]["metadata"].get("cached_reply") is True  # the in-flight reply, kept
    assert api.post(did, "resume").status_code == 409  # completed: nothing to resume
    flow = _statuses(store, did)
    assert flow[:4] == [(None, "pending"), ("pending", "active"), ("active", "paused"),
                        ("paused", "active")]
    assert flow[-1] == ("active", "completed")


def test_cancel_and_illegal_transitions(client, store: Store, dispatched) -> None:
    s = client.post("/v1/discussions", json=agent_body(2, 2)).json
    did = s["id"]
    assert client.post(f"/v1/discussions/{did}/resume").status_code == 409  # pending
    assert client.post(f"/v1/discussions/{did}/pause", json={}).json["status"] == "paused"
    resp = client.post(f"/v1/discussions/{did}/cancel", json={"reason": "wrong topic"})
    assert resp.status_code == 200 and resp.json["status"] == "cancelled"
    session = client.get(f"/v1/discussions/{did}").json
    assert session["status"] == "cancelled" and session["stop_reason"] == "cancelled"
    for action in ("pause", "resume", "cancel"):
        resp = client.post(f"/v1/discussions/{did}/{action}")
        assert resp.status_code == 409 and resp.json["error"] == "conflict"
        assert resp.json["details"]["status"] == "cancelled"
    assert did not in client.get("/v1/discussions?state=active").json["discussions"]
    events = [e for e in store.events_after(did, "0") if e.type == "status"]
    assert [e.data["status"] for e in events] == ["pending", "paused", "cancelled"]
    assert events[-1].data["note"] == "wrong topic"


@pytest.mark.parametrize(("path", "kwargs", "status"), [
    ("disc_nope/pause", {}, 404),
    ("{did}/pause", {"json": {"by": "human_nobody"}}, 404),
    ("{did}/pause", {"json": {"reason": "x" * 501}}, 422),
    ("{did}/pause", {"json": {"unknown": 1}}, 422),
    ("{did}/cancel", {"data": "{bad", "content_type": "application/json"}, 400),
    ("{did}/resume", {"data": "x", "content_type": "text/plain"}, 415),
])
def test_lifecycle_bad_input(client, path, kwargs, status) -> None:
    did = client.post("/v1/discussions", json=agent_body(1, 1)).json["id"]
    resp = client.post("/v1/discussions/" + path.format(did=did), **kwargs)
    assert resp.status_code == status, resp.json
    assert resp.is_json and resp.json["message"]


def test_termination_conditions_end_to_end(live_server: str) -> None:
    api = Api(live_server)
    # The second agent answers the first by name: the stop phrase (matched in any case) is
    # said in message 2, never in the opening.
    stop = api.create({**agent_body(2, 5), "stop_phrases": ["SECURITY EXPERT"]})
    budget = api.create({**agent_body(2, 50), "token_budget": 300})
    late = api.create({**agent_body(2, 500, latency_ms=100), "deadline_s": 1.0})
    s = api.finished(stop["id"])
    assert s["stop_reason"] == "stop_phrase" and s["message_count"] == 2
    b = api.finished(budget["id"])
    assert b["stop_reason"] == "token_budget" and b["tokens_used"] >= 300
    assert b["message_count"] < 100
    d = api.finished(late["id"])
    assert d["stop_reason"] == "deadline" and 2 <= d["message_count"] < 100


def test_openapi_documents_the_new_endpoints_and_fields(client) -> None:
    spec = client.get("/openapi.json").json
    for path in ("pause", "resume", "cancel", "moderation", "votes"):
        op = spec["paths"][f"/v1/discussions/{{discussion_id}}/{path}"]["post"]
        assert "409" in op["responses"] and "requestBody" in op
    assert "403" in spec["paths"]["/v1/discussions/{discussion_id}/moderation"]["post"][
        "responses"]
    assert "/v1/discussions/{discussion_id}/held" in spec["paths"]
    schemas = spec["components"]["schemas"]
    create = schemas["CreateDiscussion"]["properties"]
    for field in ("human_turn_timeout_s", "human_turn_policy", "proxy_agent", "stop_phrases",
                  "deadline_s", "token_budget", "parallel_rounds", "require_approval",
                  "consensus"):
        assert field in create and create[field].get("description"), field
    assert "moderator" in schemas["AgentInput"]["properties"]
    for field in ("wait_deadline", "muted", "floor", "held_count", "tokens_used", "outcome"):
        assert field in schemas["Session"]["properties"], field
