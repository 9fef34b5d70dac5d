"""Property-level authorization and error hygiene: server-owned fields are refused, errors carry
no traces, logs carry no secrets."""

from __future__ import annotations

import logging

import pytest

from core.ground import redact
from tests.helpers import agent_body
from tests.security.conftest import make_jwt


@pytest.mark.parametrize("field,value", [
    ("id", "disc_mine"), ("status", "completed"), ("seq", 9), ("created_at", "2020-01-01"),
    ("owner", "mallory"), ("message_count", 100), ("current_round", 5), ("messages", []),
    ("participants", []), ("stop_reason", "x"), ("outcome", {}), ("updated_at", "x"),
])
def test_create_refuses_server_owned_fields(sec_client, users, field, value) -> None:
    resp = sec_client.post("/v1/discussions", json={**agent_body(1, 1), field: value},
                           headers=users.headers("alice"))
    assert resp.status_code == 422, field
    assert resp.json["error"] == "validation_error"


@pytest.mark.parametrize("part,extra", [
    ("agent", {"participant_id": "agent_x"}), ("agent", {"instance_id": "i"}),
    ("agent", {"permissions": ["moderate"]}), ("human", {"participant_id": "human_x"}),
    ("human", {"participant_type": "agent"}),
])
def test_participants_refuse_server_owned_fields(sec_client, users, part, extra) -> None:
    body = agent_body(1, 1)
    if part == "agent":
        body["agents"][0].update(extra)
    else:
        body["humans"] = [{"user_id": "bob", "name": "Bob", **extra}]
    resp = sec_client.post("/v1/discussions", json=body, headers=users.headers("alice"))
    assert resp.status_code == 422


def test_reserved_metadata_is_refused(sec_client, users) -> None:
    h = users.headers("alice")
    resp = sec_client.post("/v1/discussions", headers=h, json={
        **agent_body(1, 1), "metadata": {"_participant_order": ["agent_evil"]}})
    assert resp.status_code == 422 and "_participant_order" in resp.json["message"]
    body = {**agent_body(1, 1), "protocol": "free_form",
            "humans": [{"user_id": "alice", "name": "Alice"}]}
    session = sec_client.post("/v1/discussions", json=body, headers=h).json
    pid = next(p["participant_id"] for p in session["participants"] if p["user_id"])
    url = f"/v1/discussions/{session['id']}/messages"
    for bad in ({"metadata": {"cost_usd": -100}}, {"metadata": {"prompt_tokens": 1}},
                {"message_type": "system"}, {"seq": 1}, {"message_id": "msg_x"},
                {"participant_name": "Admin"}, {"timestamp": "2020-01-01"}, {"turn": 3}):
        resp = sec_client.post(url, headers=h,
                               json={"participant_id": pid, "content": "hi", **bad})
        assert resp.status_code == 422, bad
    ok = sec_client.post(url, headers=h, json={"participant_id": pid, "content": "hi",
                                                "metadata": {"client_ref": "a1"}})
    assert ok.status_code == 201 and ok.json["seq"] == 1
    assert ok.json["participant_name"] == "Alice"


def test_owner_is_the_caller_never_the_body(sec_client, users) -> None:
    resp = sec_client.post("/v1/discussions", json=agent_body(1, 1),
                           headers=users.headers("alice"))
    assert resp.json["owner"] == "alice"


def test_an_unexpected_error_leaks_no_trace(sec_app, users) -> None:
    @sec_app.get("/v1/boom", doc_ui=False)
    def _boom():
        raise RuntimeError("secret at /srv/app/core/thing.py line 12: password=hunter2")

    client = sec_app.test_client()
    resp = client.get("/v1/boom", headers=users.headers("alice"))
    text = resp.get_data(as_text=True)
    assert resp.status_code == 500 and resp.json == {
        "error": "internal_error", "message": "internal error", "details": {}}
    assert "hunter2" not in text and "Traceback" not in text and ".py" not in text


def test_auth_errors_do_not_echo_credentials(sec_client, users) -> None:
    key = users.key("alice")
    for header in (f"Bearer {key}x", f"Bearer {make_jwt(aud='other')}"):
        resp = sec_client.get("/v1/discussions", headers={"Authorization": header})
        assert resp.status_code == 401
        assert header.split(" ")[1] not in resp.get_data(as_text=True)


def test_secrets_never_reach_logs(sec_server, users, caplog) -> None:
    import requests
    import websocket

    key, token = users.key("alice"), make_jwt("alice")
    redact.install()  # onto pytest's capture handler too, as create_app does for the real ones
    with caplog.at_level(logging.INFO):
        requests.get(f"{sec_server}/v1/discussions", headers={"Authorization": f"Bearer {key}"},
                     timeout=5)
        ws_url = sec_server.replace("http://", "ws://")
        try:
            websocket.create_connection(f"{ws_url}/v1/discussions/disc_x/stream?"
                                        f"access_token={token}", timeout=5).close()
        except websocket.WebSocketException:
            pass
        logging.getLogger("probe").warning("client sent Authorization: Bearer %s and %s", key,
                                           token)
    text = "\n".join(handler_text(caplog))
    assert "Bearer [redacted]" in text
    secret = key.split("_", 2)[2]
    assert secret not in text and token not in text


def handler_text(caplog) -> list[str]:
    out = []
    for record in caplog.records:
        out.append(record.getMessage())
    return out + [caplog.text]


def test_redact_masks_every_token_shape() -> None:
    key = "dok_0123456789abcdef01_AbC-dEf_123"
    jwt_ = make_jwt()
    line = (f"GET /x?access_token={key}&a=1 Authorization: Bearer {jwt_} "
            f"X-API-Key: {key}")
    cleaned = redact.redact(line)
    assert "AbC-dEf_123" not in cleaned and jwt_ not in cleaned and "&a=1" in cleaned


def test_oversized_bodies_are_413_json(make_app, sec_settings, users) -> None:
    client = make_app(sec_settings.model_copy(update={"max_body_bytes": 4096})).test_client()
    big = {**agent_body(1, 1), "topic": "x" * 1000, "metadata": {"pad": "y" * 8000}}
    resp = client.post("/v1/discussions", json=big, headers=users.headers("alice"))
    assert resp.status_code == 413 and resp.json["error"] == "request_entity_too_large"
    # Without credentials the body is never read: 401 first.
    assert client.post("/v1/discussions", json=big).status_code == 401
