"""The REST contract against a real Redis; steps are only recorded here, not run."""

from __future__ import annotations

import json

import pytest
import redis

from core.storage import keys
from tests.helpers import agent_body

SEED_CREATE = {
    "topic": "Design API for user authentication",
    "agents": [
        {"persona": "Security Expert", "provider": "simulated", "model": "gpt-4",
         "system_prompt": "You are an expert in security best practices..."},
        {"persona": "Backend Developer", "provider": "simulated", "model": "gpt-4"},
    ],
    "humans": [{"user_id": "user_123", "name": "John Doe", "role": "Product Manager",
                "permissions": ["read", "write", "moderate"]}],
    "protocol": "round_robin",
    "max_rounds": 10,
}


def create(client, body=None) -> dict:
    resp = client.post("/v1/discussions", json=body or agent_body())
    assert resp.status_code == 201, resp.json
    return resp.json


def test_health(client) -> None:
    resp = client.get("/health")
    assert resp.status_code == 200
    assert resp.json["status"] == "healthy"
    assert resp.json["dependencies"]["redis"]["status"] == "ok"


def test_create_returns_session_with_seed_ids(client, dispatched, r: redis.Redis) -> None:
    resp = client.post("/v1/discussions", json=SEED_CREATE)
    assert resp.status_code == 201
    body = resp.json
    assert body["id"].startswith("disc_")
    assert resp.headers["Location"] == f"/v1/discussions/{body['id']}"
    assert body["status"] == "pending" and body["current_round"] == 0
    agents = [p for p in body["participants"] if p["participant_type"] == "agent"]
    humans = [p for p in body["participants"] if p["participant_type"] == "human"]
    assert [a["persona"] for a in agents] == ["Security Expert", "Backend Developer"]
    assert all(a["participant_id"].startswith("agent_") for a in agents)
    assert humans[0]["user_id"] == "user_123"
    assert humans[0]["permissions"] == ["read", "write", "moderate"]
    assert dispatched == [body["id"]]  # creating starts it
    assert r.sismember(keys.user_discussions("user_123"), body["id"])


def test_seed_curl_create_runs_with_default_provider(client) -> None:
    resp = client.post("/v1/discussions", data=json.dumps(
        {"topic": "Test discussion", "agents": [{"persona": "Test Agent"}],
         "protocol": "free_form"}), headers={"Content-Type": "application/json"})
    assert resp.status_code == 201
    assert resp.json["participants"][0]["provider"] == "simulated"


def test_get_list_delete(client, r: redis.Redis) -> None:
    first, second = create(client), create(client)
    listing = client.get("/v1/discussions").json
    assert listing["discussions"] == [second["id"], first["id"]] and listing["count"] == 2
    got = client.get(f"/v1/discussions/{first['id']}")
    assert got.status_code == 200 and got.json["topic"] == first["topic"]
    deleted = client.delete(f"/v1/discussions/{first['id']}")
    assert deleted.status_code == 200 and deleted.json == {"id": first["id"], "deleted": True}
    assert client.get(f"/v1/discussions/{first['id']}").status_code == 404
    assert r.keys(f"discussion:{first['id']}:*") == []
    assert client.get("/v1/discussions").json["discussions"] == [second["id"]]
    assert client.delete(f"/v1/discussions/{first['id']}").status_code == 404


def test_post_and_page_messages(client) -> None:
    disc = create(client, {**agent_body(), "protocol": "free_form"})
    pid = disc["participants"][0]["participant_id"]
    for i in range(3):
        resp = client.post(f"/v1/discussions/{disc['id']}/messages",
                           json={"participant_id": pid, "content": f"point {i}"})
        assert resp.status_code == 201
        assert resp.json["seq"] == i + 1 and resp.json["message_id"].startswith("msg_")
    page = client.get(f"/v1/discussions/{disc['id']}/messages?limit=2&offset=1").json
    assert [m["content"] for m in page["messages"]] == ["point 1", "point 2"]
    assert page["total"] == 3


def test_idempotent_post(client) -> None:
    disc = create(client, {**agent_body(), "protocol": "free_form"})
    pid = disc["participants"][0]["participant_id"]
    url = f"/v1/discussions/{disc['id']}/messages"
    first = client.post(url, json={"participant_id": pid, "content": "once"},
                        headers={"Idempotency-Key": "abc"})
    again = client.post(url, json={"participant_id": pid, "content": "once"},
                        headers={"Idempotency-Key": "abc"})
    assert first.json == again.json
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert client.get(f"{url}").json["total"] == 1


@pytest.mark.parametrize(
    ("method", "url", "kwargs", "status", "code"),
    [
        ("post", "/v1/discussions", {"data": "{not json", "content_type": "application/json"},
         400, "bad_request"),
        ("post", "/v1/discussions", {"json": {"agents": []}}, 422, "validation_error"),
        ("post", "/v1/discussions", {"json": {"topic": 5}}, 422, "validation_error"),
        ("post", "/v1/discussions", {"json": {"topic": "x", "max_rounds": "many",
                                              "agents": [{"persona": "A"}]}},
         422, "validation_error"),
        ("post", "/v1/discussions", {"json": {"topic": "x", "agents": [{"persona": "A"}],
                                              "id": "disc_mine"}}, 422, "validation_error"),
        ("post", "/v1/discussions", {"json": {"topic": "x", "agents": [
            {"persona": "A", "provider": "nonexistent"}]}}, 422, "validation_error"),
        ("post", "/v1/discussions", {"json": {"topic": "x", "protocol": "telepathy",
                                              "agents": [{"persona": "A"}]}},
         422, "validation_error"),
        ("post", "/v1/discussions", {"json": {"topic": "x"}}, 422, "validation_error"),
        ("post", "/v1/discussions", {"json": {"topic": "x", "agents": [{"persona": "A"}],
                                              "max_rounds": 10**6}}, 422, "validation_error"),
        ("post", "/v1/discussions", {"data": "x=1", "content_type": "text/plain"},
         415, "unsupported_media_type"),
        ("post", "/v1/discussions", {"data": "{\"topic\": \"" + "x" * 400_000 + "\"}",
                                     "content_type": "application/json"},
         413, "request_entity_too_large"),
        ("get", "/v1/discussions/disc_nope", {}, 404, "discussion_not_found"),
        ("delete", "/v1/discussions/disc_nope", {}, 404, "discussion_not_found"),
        ("get", "/v1/discussions/disc_nope/messages", {}, 404, "discussion_not_found"),
        ("post", "/v1/discussions/disc_nope/messages",
         {"json": {"participant_id": "agent_x", "content": "hi"}}, 404, "discussion_not_found"),
        ("put", "/v1/discussions", {"json": {}}, 405, "method_not_allowed"),
        ("get", "/v1/nothing-here", {}, 404, "not_found"),
    ],
)
def test_bad_input_gets_json_error(client, r: redis.Redis, method, url, kwargs, status,
                                   code) -> None:
    before = r.dbsize()
    resp = getattr(client, method)(url, **kwargs)
    assert resp.status_code == status, resp.json
    assert resp.is_json and resp.json["error"] == code and resp.json["message"]
    assert "Traceback" not in resp.get_data(as_text=True)
    assert r.dbsize() == before  # nothing half-written


def test_bad_messages(client, r: redis.Redis) -> None:
    disc = create(client, {**agent_body(), "protocol": "free_form"})
    url = f"/v1/discussions/{disc['id']}/messages"
    pid = disc["participants"][0]["participant_id"]
    cases = [
        ({"participant_id": "agent_unknown", "content": "hi"}, 404, "participant_not_found"),
        ({"participant_id": pid, "content": ""}, 422, "validation_error"),
        ({"participant_id": pid}, 422, "validation_error"),
        ({"participant_id": pid, "content": "x", "seq": 99}, 422, "validation_error"),
        ({"participant_id": pid, "content": "x" * 20_001}, 422, "validation_error"),
        ({"participant_id": pid, "content": "x", "message_type": "shout"}, 422,
         "validation_error"),
    ]
    for body, status, code in cases:
        resp = client.post(url, json=body)
        assert (resp.status_code, resp.json["error"]) == (status, code), body
    assert client.get(url).json["total"] == 0
    assert client.get(url + "?limit=0").status_code == 422
    assert client.get(url + "?limit=abc").status_code == 422


def test_post_to_finished_discussion_is_409(client, r: redis.Redis) -> None:
    disc = create(client, {**agent_body(), "protocol": "free_form"})
    r.hset(keys.state(disc["id"]), "status", "completed")
    resp = client.post(f"/v1/discussions/{disc['id']}/messages",
                       json={"participant_id": disc["participants"][0]["participant_id"],
                             "content": "late"})
    assert resp.status_code == 409 and resp.json["error"] == "conflict"


def test_round_robin_person_out_of_turn_is_409(client) -> None:
    body = {**agent_body(2), "humans": [{"user_id": "john", "name": "John"}]}
    disc = create(client, body)
    human = [p for p in disc["participants"] if p["participant_type"] == "human"][0]
    resp = client.post(f"/v1/discussions/{disc['id']}/messages",
                       json={"participant_id": human["participant_id"], "content": "me!"})
    assert resp.status_code == 409


def test_openapi_and_docs_offline(client) -> None:
    spec = client.get("/openapi.json").json
    assert "/v1/discussions" in spec["paths"]
    assert "/v1/discussions/{discussion_id}/messages" in spec["paths"]
    docs = client.get("/docs", follow_redirects=True)
    assert docs.status_code == 200 and b"swagger" in docs.data.lower()
    assert b"cdn" not in docs.data.lower() and b"unpkg" not in docs.data.lower()
    redoc = client.get("/redoc")
    assert redoc.status_code == 200 and b"redoc" in redoc.data.lower()
    assert b"cdn." not in redoc.data.lower()


def test_cors_allows_configured_origin(client) -> None:
    resp = client.get("/health", headers={"Origin": "http://localhost:3000"})
    assert resp.headers.get("Access-Control-Allow-Origin") == "http://localhost:3000"
    other = client.get("/health", headers={"Origin": "http://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers


def test_redis_down_fails_fast_with_503(settings) -> None:
    import time

    from api import create_app
    from core.storage.redis_client import make_redis

    dead = settings.model_copy(update={"redis_url": "redis://127.0.0.1:1"})
    app = create_app({"TESTING": True}, settings=dead, redis_client=make_redis(dead),
                     dispatch=lambda d: None)
    c = app.test_client()
    started = time.monotonic()
    assert c.get("/health").status_code == 503
    resp = c.get("/v1/discussions")
    assert resp.status_code == 503 and resp.json["error"] == "service_unavailable"
    assert c.post("/v1/discussions", json=agent_body()).status_code == 503
    assert time.monotonic() - started < 5
