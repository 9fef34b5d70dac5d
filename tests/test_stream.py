"""The live stream with a real WebSocket client against a real server and worker."""

from __future__ import annotations

import json
import time

import pytest
import requests
import websocket

from tests.helpers import agent_body


def ws_url(base: str, did: str, query: str = "") -> str:
    return base.replace("http://", "ws://") + f"/v1/discussions/{did}/stream" + query


def recv(ws: websocket.WebSocket) -> dict:
    return json.loads(ws.recv())


def collect_until_done(ws: websocket.WebSocket, timeout: float = 30) -> list[dict]:
    frames, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        frame = recv(ws)
        frames.append(frame)
        if frame["type"] == "status" and frame["data"]["status"] in ("completed", "failed"):
            return frames
    raise AssertionError("discussion did not finish on the stream")


def test_init_then_live_messages_in_seq_order_and_pong(live_server: str) -> None:
    # Slow enough agents that the viewer connects before the discussion ends.
    resp = requests.post(f"{live_server}/v1/discussions", json=agent_body(3, 3, latency_ms=50),
                         timeout=5)
    did = resp.json()["id"]
    ws = websocket.create_connection(ws_url(live_server, did), timeout=10)
    try:
        init = recv(ws)
        assert init["type"] == "init"
        assert init["data"]["session"]["id"] == did
        assert isinstance(init["data"]["messages"], list)
        assert init["id"] == init["data"]["last_event_id"]
        ws.send(json.dumps({"type": "ping"}))
        frames = collect_until_done(ws)
    finally:
        ws.close()
    assert {"type": "pong"} in frames
    events = [f for f in frames if "id" in f]
    ids = [tuple(map(int, f["id"].split("-"))) for f in events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    seqs = [m["seq"] for m in init["data"]["messages"]] + [
        f["data"]["seq"] for f in events if f["type"] == "message"]
    assert seqs == list(range(1, 10))  # history + live: every message once, in order
    assert any(f["type"] == "turn_started" for f in events)
    rest = requests.get(f"{live_server}/v1/discussions/{did}/messages", timeout=5).json()
    live = [f["data"] for f in events if f["type"] == "message"]
    assert [m["message_id"] for m in rest["messages"]][-len(live):] == \
        [m["message_id"] for m in live]


def test_resume_from_last_event_id_misses_nothing(live_server: str) -> None:
    resp = requests.post(f"{live_server}/v1/discussions", json=agent_body(2, 5, latency_ms=20),
                         timeout=5)
    did = resp.json()["id"]
    ws = websocket.create_connection(ws_url(live_server, did), timeout=10)
    init = recv(ws)
    seen = [m["seq"] for m in init["data"]["messages"]]
    last_id = init["id"]
    for _ in range(3):  # read a few frames, then drop the connection
        frame = recv(ws)
        last_id = frame["id"]
        if frame["type"] == "message":
            seen.append(frame["data"]["seq"])
    ws.close()
    time.sleep(0.3)  # events pass while disconnected
    ws = websocket.create_connection(ws_url(live_server, did, f"?last_event_id={last_id}"),
                                     timeout=10)
    try:
        frames = collect_until_done(ws)
    finally:
        ws.close()
    seen += [f["data"]["seq"] for f in frames if f["type"] == "message"]
    assert seen == list(range(1, 11))


def test_unknown_discussion_closes_with_reason(live_server: str) -> None:
    ws = websocket.create_connection(ws_url(live_server, "disc_missing"), timeout=10)
    with pytest.raises(websocket.WebSocketConnectionClosedException):
        while True:
            opcode, data = ws.recv_data(control_frame=True)
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                code = int.from_bytes(data[:2], "big")
                assert code == 4404 and b"not found" in data[2:]
                ws.close()
                raise websocket.WebSocketConnectionClosedException()


def test_bad_frames_get_error_frames_not_a_crash(live_server: str) -> None:
    did = requests.post(f"{live_server}/v1/discussions", json=agent_body(1, 1),
                        timeout=5).json()["id"]
    ws = websocket.create_connection(ws_url(live_server, did), timeout=10)
    try:
        assert recv(ws)["type"] == "init"
        for bad in ("not json", "[1,2]", json.dumps({"type": "dance"})):
            ws.send(bad)
            frame = recv(ws)
            while frame.get("type") not in ("error",):
                frame = recv(ws)
            assert frame["data"]["message"]
        ws.send(json.dumps({"type": "ping"}))
        frame = recv(ws)
        while frame.get("type") != "pong":
            frame = recv(ws)
    finally:
        ws.close()
