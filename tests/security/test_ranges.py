"""Issue 13, finding 4: every path and query parameter and every frame field is range-checked.

None of these produces a 500 or a 1011: a cursor decoding to `nan|x`, an audit `after` past
Redis' 64-bit stream ids, a socket `resume` (or `?last_event_id=`) with a huge event id.
"""

from __future__ import annotations

import base64
import json

import pytest
import websocket

from tests.helpers import agent_body
from tests.security.conftest import ORIGIN

HUGE = "99999999999999999999-0"  # past 2**64 - 1
MAX_ID = "18446744073709551615-18446744073709551615"


def _cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _create(sec_client, users) -> str:
    resp = sec_client.post("/v1/discussions", json=agent_body(1, 1),
                           headers=users.headers("alice"))
    assert resp.status_code == 201
    return resp.json["id"]


@pytest.mark.parametrize("raw", ["nan|x", "inf|disc_x", "-inf|disc_x", "1e999|disc_x",
                                 "1.0|disc_x:session", "1.0|", "|", "1.0"])
def test_cursors_that_decode_to_nonsense_are_a_422(sec_client, users, raw) -> None:
    _create(sec_client, users)
    resp = sec_client.get(f"/v1/discussions?limit=1&cursor={_cursor(raw)}",
                          headers=users.headers("alice"))
    assert resp.status_code == 422, (raw, resp.status_code, resp.json)
    assert sec_client.get("/v1/discussions?cursor=bmFufHg",
                          headers=users.headers("alice")).status_code == 422


@pytest.mark.parametrize("after", [HUGE, "18446744073709551615-18446744073709551616",
                                   "18446744073709551615-18446744073709551615",
                                   "1-99999999999999999999"])
def test_audit_after_past_64_bits_is_not_a_500(sec_client, users, after) -> None:
    did = _create(sec_client, users)
    resp = sec_client.get(f"/v1/discussions/{did}/audit?after={after}",
                          headers=users.headers("alice"))
    assert resp.status_code in (200, 422), (after, resp.status_code, resp.json)
    if resp.status_code == 200:
        assert resp.json["entries"] == []


@pytest.mark.parametrize("query", [
    "created_after=9999-12-31T23:59:59-23:59", "created_before=0001-01-01T00:00:00%2B23:59",
    "limit=99999999999999999999", "limit=-1", "status=nope", "state=x",
])
def test_list_filters_are_range_checked(sec_client, users, query) -> None:
    resp = sec_client.get(f"/v1/discussions?{query}", headers=users.headers("alice"))
    assert resp.status_code in (200, 422), (query, resp.status_code, resp.json)


@pytest.mark.parametrize("query", ["offset=99999999999999999999", "limit=0", "offset=-1",
                                   "limit=1e3"])
def test_message_paging_is_range_checked(sec_client, users, query) -> None:
    did = _create(sec_client, users)
    resp = sec_client.get(f"/v1/discussions/{did}/messages?{query}",
                          headers=users.headers("alice"))
    assert resp.status_code in (200, 422), (query, resp.status_code, resp.json)


def _ws(base: str, did: str, key: str, query: str = "") -> websocket.WebSocket:
    return websocket.create_connection(
        base.replace("http://", "ws://") + f"/v1/discussions/{did}/stream{query}", timeout=10,
        header=[f"X-API-Key: {key}"], origin=ORIGIN)


def _until(ws: websocket.WebSocket, kind: str) -> list[dict]:
    frames: list[dict] = []
    while not frames or frames[-1]["type"] != kind:
        opcode, data = ws.recv_data(control_frame=True)
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            raise AssertionError(f"closed {int.from_bytes(data[:2], 'big')} after {frames}")
        if opcode == websocket.ABNF.OPCODE_TEXT:
            frames.append(json.loads(data))
    return frames


@pytest.mark.parametrize("event_id", [HUGE, MAX_ID,
                                      "1-99999999999999999999", "0-18446744073709551616"])
def test_resume_with_a_huge_event_id_is_an_error_frame(sec_client, sec_server, users,
                                                       event_id) -> None:
    did = _create(sec_client, users)
    ws = _ws(sec_server, did, users.key("alice"))
    try:
        assert _until(ws, "init")[-1]["type"] == "init"
        ws.send(json.dumps({"type": "resume", "ref": 3, "last_event_id": event_id}))
        ws.send(json.dumps({"type": "ping"}))
        frames = _until(ws, "pong")  # the socket stays open (the old main closed it 1011)
        if event_id != MAX_ID:  # the largest id is valid: nothing follows it
            assert any(f["type"] == "error" for f in frames), frames
    finally:
        ws.close()
    on_connect = _ws(sec_server, did, users.key("alice"), f"?last_event_id={event_id}")
    try:
        on_connect.send(json.dumps({"type": "ping"}))
        frames = _until(on_connect, "pong")
        if event_id != MAX_ID:  # told the id is malformed, then a fresh init
            assert [f["type"] for f in frames][:2] == ["error", "init"], frames
    finally:
        on_connect.close()


@pytest.mark.parametrize("frame", [
    {"type": "post", "ref": {"a": [1] * 5000}, "participant_id": "x", "content": "hi"},
    {"type": "post", "ref": "r" * 5000, "participant_id": "x", "content": "hi"},
    {"type": "post", "participant_id": ["x"], "content": "hi"},
    {"type": "post", "participant_id": "x", "content": {"a": 1}},
    {"type": "resume", "last_event_id": 12},
    {"type": ["ping"]},
])
def test_odd_frame_fields_get_an_error_frame(sec_client, sec_server, users, frame) -> None:
    did = _create(sec_client, users)
    ws = _ws(sec_server, did, users.key("alice"))
    try:
        _until(ws, "init")
        ws.send(json.dumps(frame))
        ws.send(json.dumps({"type": "ping"}))
        frames = _until(ws, "pong")
        errors = [f for f in frames if f["type"] == "error"]
        assert errors, frames
        assert len(json.dumps(errors[0])) < 2000  # nothing large echoed back
    finally:
        ws.close()
