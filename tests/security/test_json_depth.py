"""Issue 13, finding 2: no free-form JSON value can break a discussion others share.

Every free-form value a client sends (message and discussion `metadata`, agent `params`, batch
`variables`, schedule templates, WebSocket frames) has a depth and a size cap enforced at input,
over REST and the WebSocket alike; a whole body nested 900+ deep is a 4xx; and a read that meets
one record that will not parse answers 200 with that record marked, never 500.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import websocket

from core.storage import keys
from tests.helpers import agent_body
from tests.security.conftest import ORIGIN, shared_discussion

DEEP = "__deep__"


def _nested(depth: int, leaf: Any = 1) -> Any:
    value: Any = leaf
    for _ in range(depth):
        value = {"a": value}
    return value


def _text(body: Any, depth: int) -> str:
    """`body` as JSON with the string DEEP replaced by an object nested `depth` levels (the
    test's own encoder would recurse too far to write it)."""
    return json.dumps(body).replace(f'"{DEEP}"', '{"a":' * depth + "1" + "}" * depth)


def _post(client, url: str, body: Any, depth: int, headers: dict) -> Any:
    return client.post(url, data=_text(body, depth), content_type="application/json",
                       headers=headers)




def _reads_all_work(sec_client, users, did: str) -> None:
    h = users.headers("alice")
    for path in ("", "/messages", "/stats", "/export", "/export?format=markdown"):
        resp = sec_client.get(f"/v1/discussions/{did}{path}", headers=h)
        assert resp.status_code == 200, (path, resp.status_code, resp.data[:200])


@pytest.mark.parametrize("depth", [40, 200, 950, 5000])
def test_deep_message_metadata_is_refused_over_rest(sec_client, users, depth) -> None:
    did, _, bob = shared_discussion(sec_client, users)
    resp = _post(sec_client, f"/v1/discussions/{did}/messages",
                 {"participant_id": bob, "content": "hi", "metadata": DEEP}, depth,
                 users.headers("bob"))
    assert resp.status_code in (413, 422), (resp.status_code, resp.data[:200])
    assert "deep" in resp.json["message"] or "nested" in resp.json["message"]
    _reads_all_work(sec_client, users, did)
    # Shallow metadata is still fine.
    ok = sec_client.post(f"/v1/discussions/{did}/messages", headers=users.headers("bob"),
                         json={"participant_id": bob, "content": "hi",
                               "metadata": _nested(5)})
    assert ok.status_code == 201, ok.json


def test_large_message_metadata_is_refused(sec_client, users) -> None:
    did, _, bob = shared_discussion(sec_client, users)
    resp = sec_client.post(f"/v1/discussions/{did}/messages", headers=users.headers("bob"),
                           json={"participant_id": bob, "content": "hi",
                                 "metadata": {f"k{i}": "v" * 100 for i in range(400)}})
    assert resp.status_code in (413, 422), resp.json
    assert "metadata" in resp.json["message"]


@pytest.mark.parametrize("where", ["metadata", "params", "body"])
@pytest.mark.parametrize("depth", [60, 950, 5000])
def test_deep_create_bodies_are_a_4xx(sec_client, users, where, depth) -> None:
    body: dict[str, Any] = agent_body(1, 1)
    if where == "metadata":
        body["metadata"] = DEEP
    elif where == "params":
        body["agents"][0]["params"] = DEEP
    else:
        body["agents"] = [DEEP]
    resp = _post(sec_client, "/v1/discussions", body, depth, users.headers("alice"))
    assert 400 <= resp.status_code < 500, (resp.status_code, resp.data[:200])
    assert resp.is_json and resp.json["error"] != "internal_error"


def test_deep_batch_variables_and_schedule_templates_are_refused(sec_client, users) -> None:
    h = users.headers("alice")
    template = {**agent_body(1, 1), "metadata": _nested(60)}
    for path, body in (("/v1/batches", {"template": template, "topics": ["a"]}),
                       ("/v1/schedules", {"name": "s", "interval_s": 60, "template": template}),
                       ("/v1/batches", {"template": agent_body(1, 1),
                                        "variables": [_nested(60)]})):
        resp = sec_client.post(path, json=body, headers=h)
        assert resp.status_code in (413, 422), (path, resp.status_code, resp.data[:200])


def _ws(base: str, did: str, key: str) -> websocket.WebSocket:
    ws = websocket.create_connection(
        base.replace("http://", "ws://") + f"/v1/discussions/{did}/stream", timeout=10,
        header=[f"X-API-Key: {key}"], origin=ORIGIN)
    assert json.loads(ws.recv())["type"] == "init"
    return ws


def _answer(ws: websocket.WebSocket, ref: int) -> dict:
    while True:
        frame = json.loads(ws.recv())
        if frame.get("ref") == ref or frame["type"] == "pong":
            return frame
        if frame["type"] == "error" and "ref" not in frame:  # a frame too deep to read a ref
            return frame


@pytest.mark.parametrize("depth", [200, 950])
def test_deep_metadata_is_refused_over_the_websocket(sec_client, sec_server, users,
                                                     depth) -> None:
    did, _, bob = shared_discussion(sec_client, users)
    ws = _ws(sec_server, did, users.key("bob"))
    try:
        ws.send(_text({"type": "post", "ref": 1, "participant_id": bob, "content": "hi",
                       "metadata": DEEP}, depth))
        answer = _answer(ws, 1)
        assert answer["type"] == "error", answer
        assert answer["data"]["status"] in (413, 422)
        ws.send(json.dumps({"type": "ping"}))
        assert _answer(ws, -1)["type"] == "pong"  # the socket is still fine
    finally:
        ws.close()
    _reads_all_work(sec_client, users, did)


def test_one_bad_record_never_fails_the_whole_discussion(sec_client, sec_server, users,
                                                         r) -> None:
    """Records written before the caps (or damaged) are shown marked, not as a 500."""
    did, _, bob = shared_discussion(sec_client, users)
    h = users.headers("bob")
    assert sec_client.post(f"/v1/discussions/{did}/messages", headers=h,
                           json={"participant_id": bob, "content": "before"}).status_code == 201
    good = json.loads(r.lindex(keys.messages(did), 0))
    deep = {**good, "seq": 2, "message_id": "msg_deep", "metadata": _nested(200)}
    r.rpush(keys.messages(did), json.dumps(deep), "{not json")
    r.hset(keys.state(did), "seq", 3)
    r.xadd(keys.events(did), {"type": "message", "data": json.dumps(deep)})
    assert sec_client.post(f"/v1/discussions/{did}/messages", headers=h,
                           json={"participant_id": bob, "content": "after"}).status_code == 201
    _reads_all_work(sec_client, users, did)
    page = sec_client.get(f"/v1/discussions/{did}/messages", headers=h).json
    assert [m["content"] for m in page["messages"]][0] == "before"
    assert page["messages"][-1]["content"] == "after"
    assert page["total"] == 4
    marked = [m for m in page["messages"] if m["metadata"].get("unreadable")]
    assert len(marked) == 2
    session = sec_client.get(f"/v1/discussions/{did}", headers=h).json
    assert session["status"] != "failed"
    ws = websocket.create_connection(
        sec_server.replace("http://", "ws://") + f"/v1/discussions/{did}/stream?last_event_id=0-0",
        timeout=10, header=[f"X-API-Key: {users.key('bob')}"], origin=ORIGIN)
    try:
        ws.send(json.dumps({"type": "ping"}))
        frames = []
        while not frames or frames[-1]["type"] != "pong":
            frames.append(json.loads(ws.recv()))
        assert any(f["type"] == "message" for f in frames)
    finally:
        ws.close()
