"""Finding 5: an open socket follows its credentials, whether or not it sends.

A revoked API key or an expired JWT closes the socket with 4401 within one ping interval
(`WS_PING_INTERVAL_S`, default settings), while the discussion is busy or idle; a `resume` frame
sent after the revocation replays nothing.
"""

from __future__ import annotations

import json
import threading
import time

import requests
import websocket

from core.services.auth import revoke_api_key
from tests.helpers import agent_body
from tests.security.conftest import make_jwt


def _url(base: str, did: str) -> str:
    return base.replace("http://", "ws://") + f"/v1/discussions/{did}/stream"


def _shared(client, users) -> tuple[str, dict[str, str]]:
    """A free-form discussion of alice's with wade in it: (id, participant id by user)."""
    body = {**agent_body(1, 1), "protocol": "free_form",
            "humans": [{"user_id": "alice", "name": "Alice"}, {"user_id": "wade", "name": "Wade"}]}
    resp = client.post("/v1/discussions", json=body, headers=users.headers("alice"))
    assert resp.status_code == 201, resp.text
    pids = {p["user_id"]: p["participant_id"] for p in resp.json["participants"]
            if p["user_id"]}
    return resp.json["id"], pids


def _keep_posting(base: str, did: str, pid: str, headers: dict[str, str],
                  stop: threading.Event) -> threading.Thread:
    """Alice keeps the discussion busy (a post every 0.3 s) until `stop`."""

    def run() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            requests.post(f"{base}/v1/discussions/{did}/messages", headers=headers, timeout=5,
                          json={"participant_id": pid, "content": f"busy {n}"})
            stop.wait(0.3)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _until_close(ws: websocket.WebSocket, limit_s: float) -> tuple[int | None, list[dict]]:
    """Read until the server closes (its code) or `limit_s` passes (None); the frames seen."""
    frames: list[dict] = []
    ws.settimeout(1.0)
    ends = time.monotonic() + limit_s
    while time.monotonic() < ends:
        try:
            # Raw frames: the server may be gone before the client could answer its close.
            frame = ws.recv_frame()
        except websocket.WebSocketTimeoutException:
            continue
        except (websocket.WebSocketConnectionClosedException, ConnectionError):
            return -1, frames
        if frame.opcode == websocket.ABNF.OPCODE_CLOSE:
            return int.from_bytes(frame.data[:2], "big"), frames
        if frame.opcode == websocket.ABNF.OPCODE_TEXT:
            frames.append(json.loads(frame.data))
    return None, frames


def test_revoked_key_closes_a_silent_socket_of_a_busy_discussion(sec_client, sec_server, users,
                                                                 r, sec_settings) -> None:
    did, pids = _shared(sec_client, users)
    key = users.key("wade")
    ws = websocket.create_connection(_url(sec_server, did), timeout=10,
                                     header=[f"X-API-Key: {key}"])
    stop = threading.Event()
    poster = _keep_posting(sec_server, did, pids["alice"], users.headers("alice"), stop)
    try:
        assert json.loads(ws.recv())["type"] == "init"
        revoke_api_key(r, key.split("_")[1])
        revoked_at = time.monotonic()
        code, _ = _until_close(ws, sec_settings.ws_ping_interval_s + 5)
        assert code == 4401, "an open socket outlived its revoked key"
        assert time.monotonic() - revoked_at <= sec_settings.ws_ping_interval_s
    finally:
        stop.set()
        poster.join(timeout=10)
        ws.close()


def test_resume_after_revocation_replays_nothing(sec_client, sec_server, users, r) -> None:
    did, pids = _shared(sec_client, users)
    for i in range(5):
        resp = sec_client.post(f"/v1/discussions/{did}/messages", headers=users.headers("alice"),
                               json={"participant_id": pids["alice"], "content": f"secret {i}"})
        assert resp.status_code == 201
    key = users.key("wade")
    ws = websocket.create_connection(_url(sec_server, did), timeout=10,
                                     header=[f"X-API-Key: {key}"])
    try:
        assert json.loads(ws.recv())["type"] == "init"
        revoke_api_key(r, key.split("_")[1])
        ws.send(json.dumps({"type": "resume", "last_event_id": "0-0"}))
        code, frames = _until_close(ws, 10)
        assert code == 4401
        assert not [f for f in frames if f.get("type") == "message"], "history replayed"
    finally:
        ws.close()


def test_expired_jwt_closes_a_silent_socket_within_one_ping_interval(
        sec_client, sec_server, users, sec_settings) -> None:
    # Default leeway (30 s): the open socket still closes within one ping interval of `exp`.
    did, pids = _shared(sec_client, users)
    exp_in = 3
    token = make_jwt("wade", exp_in=exp_in)
    expires = time.monotonic() + exp_in
    ws = websocket.create_connection(_url(sec_server, did), timeout=10,
                                     subprotocols=["bearer", token])
    stop = threading.Event()
    poster = _keep_posting(sec_server, did, pids["alice"], users.headers("alice"), stop)
    try:
        assert json.loads(ws.recv())["type"] == "init"
        code, _ = _until_close(ws, exp_in + sec_settings.ws_ping_interval_s + 5)
        assert code == 4401, "an open socket outlived its token"
        assert time.monotonic() - expires <= sec_settings.ws_ping_interval_s
    finally:
        stop.set()
        poster.join(timeout=10)
        ws.close()


def test_valid_credentials_keep_the_socket_open(sec_client, sec_server, users) -> None:
    """The checks close only what should close: a live key keeps watching."""
    did, pids = _shared(sec_client, users)
    ws = websocket.create_connection(_url(sec_server, did), timeout=10,
                                     header=[f"X-API-Key: {users.key('wade')}"])
    try:
        assert json.loads(ws.recv())["type"] == "init"
        sec_client.post(f"/v1/discussions/{did}/messages", headers=users.headers("alice"),
                        json={"participant_id": pids["alice"], "content": "still here"})
        code, frames = _until_close(ws, 6)
        assert code is None
        assert any(f.get("type") == "message" and f["data"]["content"] == "still here"
                   for f in frames)
    finally:
        ws.close()
