"""Every endpoint and WebSocket action against every role: the documented answer in each cell.

Roles in one discussion created by `alice`: `rita` (read), `wade` (read, write), `mona` (read,
moderate), `alice` (creator, not a participant), `eve` (another user), and no credentials.
A new endpoint fails `test_every_endpoint_is_in_the_matrix` until it is given its row here.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import websocket

from api.auth import is_public
from tests.helpers import agent_body

ROLES = ["none", "eve", "rita", "wade", "mona", "alice"]
HUMANS = [
    {"user_id": "rita", "name": "Rita", "permissions": ["read"]},
    {"user_id": "wade", "name": "Wade", "permissions": ["read", "write"]},
    {"user_id": "mona", "name": "Mona", "permissions": ["read", "moderate"]},
]


SCHEDULE = {"name": "nightly", "interval_s": 3600, "template": agent_body(1, 1)}
BATCH = {"name": "b", "template": agent_body(1, 1), "topics": ["one", "two"], "concurrency": 1}


def _setup(client, users) -> dict[str, Any]:
    """A discussion, a schedule and a batch, all alice's."""
    body = {**agent_body(1, 1), "protocol": "free_form", "humans": HUMANS}
    h = users.headers("alice")
    resp = client.post("/v1/discussions", json=body, headers=h)
    assert resp.status_code == 201, resp.json
    session = resp.json
    pids = {p["user_id"] or "agent": p["participant_id"] for p in session["participants"]}
    schedule = client.post("/v1/schedules", json=SCHEDULE, headers=h)
    batch = client.post("/v1/batches", json=BATCH, headers=h)
    assert schedule.status_code == 201 and batch.status_code == 201, (schedule.json, batch.json)
    return {"did": session["id"], "pids": pids, "sid": schedule.json["id"],
            "bid": batch.json["id"]}


def _post_as(author: str):
    def call(client, ctx, headers):
        return client.post(f"/v1/discussions/{ctx['did']}/messages", headers=headers,
                           json={"participant_id": ctx["pids"][author], "content": "hello"})
    return call


# endpoint -> (request builder, {role: expected status}); `own` = the caller's own participant.
def _own_post(client, ctx, headers, role):
    author = role if role in ctx["pids"] else "wade"
    return client.post(f"/v1/discussions/{ctx['did']}/messages", headers=headers,
                       json={"participant_id": ctx["pids"][author], "content": "mine"})


REST: dict[str, tuple[Any, dict[str, int]]] = {
    "discussions.create_discussion": (
        lambda c, ctx, h, role: c.post("/v1/discussions", json=agent_body(1, 1), headers=h),
        {"none": 401, "eve": 201, "rita": 201, "wade": 201, "mona": 201, "alice": 201}),
    "discussions.list_discussions": (
        lambda c, ctx, h, role: c.get("/v1/discussions", headers=h),
        {"none": 401, "eve": 200, "rita": 200, "wade": 200, "mona": 200, "alice": 200}),
    "discussions.get_discussion": (
        lambda c, ctx, h, role: c.get(f"/v1/discussions/{ctx['did']}", headers=h),
        {"none": 401, "eve": 404, "rita": 200, "wade": 200, "mona": 200, "alice": 200}),
    "discussions.list_messages": (
        lambda c, ctx, h, role: c.get(f"/v1/discussions/{ctx['did']}/messages", headers=h),
        {"none": 401, "eve": 404, "rita": 200, "wade": 200, "mona": 200, "alice": 200}),
    "discussions.post_message": (
        _own_post,
        # alice is not a participant: she may not post as wade.
        {"none": 401, "eve": 404, "rita": 403, "wade": 201, "mona": 403, "alice": 403}),
    "discussions.delete_discussion": (
        lambda c, ctx, h, role: c.delete(f"/v1/discussions/{ctx['did']}", headers=h),
        {"none": 401, "eve": 404, "rita": 403, "wade": 403, "mona": 403, "alice": 200}),
}
READERS = {"none": 401, "eve": 404, "rita": 200, "wade": 200, "mona": 200, "alice": 200}
OWNER_ONLY = {"none": 401, "eve": 404, "rita": 404, "wade": 404, "mona": 404, "alice": 200}
ANYONE = {"none": 401, "eve": 200, "rita": 200, "wade": 200, "mona": 200, "alice": 200}
ANYONE_CREATES = {k: (201 if v == 200 else v) for k, v in ANYONE.items()}


def _get(url: str):
    return lambda c, ctx, h, role: c.get(url.format(**ctx), headers=h)


def _post(url: str, body: Any = None):
    return lambda c, ctx, h, role: c.post(url.format(**ctx), headers=h, json=body)


REST.update({
    "insights.stats": (_get("/v1/discussions/{did}/stats"), READERS),
    "insights.export": (_get("/v1/discussions/{did}/export?format=markdown"), READERS),
    "insights.audit_log": (_get("/v1/discussions/{did}/audit"),
                           {**READERS, "rita": 403, "wade": 403}),
    "schedules.create_schedule": (_post("/v1/schedules", SCHEDULE), ANYONE_CREATES),
    "schedules.list_schedules": (_get("/v1/schedules"), ANYONE),
    "schedules.get_schedule": (_get("/v1/schedules/{sid}"), OWNER_ONLY),
    "schedules.update_schedule": (
        lambda c, ctx, h, role: c.patch(f"/v1/schedules/{ctx['sid']}", headers=h,
                                        json={"name": "renamed"}), OWNER_ONLY),
    "schedules.pause_schedule": (_post("/v1/schedules/{sid}/pause"), OWNER_ONLY),
    "schedules.resume_schedule": (_post("/v1/schedules/{sid}/resume"), OWNER_ONLY),
    "schedules.delete_schedule": (
        lambda c, ctx, h, role: c.delete(f"/v1/schedules/{ctx['sid']}", headers=h), OWNER_ONLY),
    "schedules.schedule_runs": (_get("/v1/schedules/{sid}/runs"), OWNER_ONLY),
    "batches.create_batch": (_post("/v1/batches", BATCH), ANYONE_CREATES),
    "batches.list_batches": (_get("/v1/batches"), ANYONE),
    "batches.get_batch": (_get("/v1/batches/{bid}"), OWNER_ONLY),
    "batches.cancel_batch": (_post("/v1/batches/{bid}/cancel"), OWNER_ONLY),
    "batches.delete_batch": (
        lambda c, ctx, h, role: c.delete(f"/v1/batches/{ctx['bid']}", headers=h), OWNER_ONLY),
})
MODERATORS = {"none": 401, "eve": 404, "rita": 403, "wade": 403, "mona": 200, "alice": 200}


def _own(ctx: dict, role: str) -> str:
    """The caller's own participant id; callers who are not participants borrow wade's."""
    return ctx["pids"][role if role in ctx["pids"] else "wade"]


REST.update({
    "control.pause": (_post("/v1/discussions/{did}/pause"), MODERATORS),
    "control.cancel": (_post("/v1/discussions/{did}/cancel"), MODERATORS),
    # Authorized callers reach the state check: a pending discussion cannot be resumed.
    "control.resume": (_post("/v1/discussions/{did}/resume"),
                       {**MODERATORS, "mona": 409, "alice": 409}),
    "control.moderate": (
        lambda c, ctx, h, role: c.post(f"/v1/discussions/{ctx['did']}/moderation", headers=h,
                                       json={"by": ctx["pids"]["mona"] if role == "alice"
                                             else _own(ctx, role), "action": "pause"}),
        # alice may moderate, but only as a participant of her own: not as mona.
        {**MODERATORS, "alice": 403}),
    "control.list_held": (_get("/v1/discussions/{did}/held"), MODERATORS),
    # Authorized voters reach the protocol check: votes need a consensus discussion.
    "control.cast_vote": (
        lambda c, ctx, h, role: c.post(f"/v1/discussions/{ctx['did']}/votes", headers=h,
                                       json={"participant_id": _own(ctx, role), "vote": "yes"}),
        {"none": 401, "eve": 404, "rita": 403, "wade": 409, "mona": 403, "alice": 403}),
})
WEBSOCKET_ENDPOINTS = {"stream"}


def test_every_endpoint_is_in_the_matrix(sec_app) -> None:
    private = {rule.endpoint for rule in sec_app.url_map.iter_rules()
               if not is_public(rule.endpoint)}
    missing = private - set(REST) - WEBSOCKET_ENDPOINTS
    assert not missing, f"endpoints without a row in the role matrix: {sorted(missing)}"


@pytest.mark.parametrize("endpoint", sorted(REST))
@pytest.mark.parametrize("role", ROLES)
def test_rest_cell(sec_client, users, endpoint: str, role: str) -> None:
    ctx = _setup(sec_client, users)
    call, expected = REST[endpoint]
    headers = users.headers(None if role == "none" else role)
    resp = call(sec_client, ctx, headers, role)
    assert resp.status_code == expected[role], (endpoint, role, resp.get_data(as_text=True))
    if resp.status_code == 404 and "discussion" in endpoint:
        # No access looks exactly like no such discussion.
        missing = sec_client.get("/v1/discussions/disc_doesnotexist", headers=headers)
        assert resp.json["error"] == missing.json["error"]
        assert resp.json["message"].replace(ctx["did"], "X") == \
            missing.json["message"].replace("disc_doesnotexist", "X")


def test_listing_shows_only_the_callers_discussions(sec_client, users) -> None:
    ctx = _setup(sec_client, users)
    own = sec_client.post("/v1/discussions", json=agent_body(1, 1),
                          headers=users.headers("eve")).json["id"]
    for role in ("rita", "wade", "mona"):
        listed = sec_client.get("/v1/discussions", headers=users.headers(role)).json
        assert listed["discussions"] == [ctx["did"]], role
    alices = sec_client.get("/v1/discussions", headers=users.headers("alice")).json
    assert ctx["did"] in alices["discussions"] and own not in alices["discussions"]
    eves = sec_client.get("/v1/discussions", headers=users.headers("eve")).json
    assert eves["discussions"] == [own] and eves["count"] == 1
    for role, mine in (("alice", True), ("eve", False)):
        schedules = sec_client.get("/v1/schedules", headers=users.headers(role)).json
        batches = sec_client.get("/v1/batches", headers=users.headers(role)).json
        assert ([s["id"] for s in schedules["schedules"]] == [ctx["sid"]]) is mine
        assert (batches["batches"] == [ctx["bid"]]) is mine


@pytest.mark.parametrize("author", ["agent", "rita", "mona"])
def test_a_person_posts_only_as_themself(sec_client, users, author: str) -> None:
    ctx = _setup(sec_client, users)
    resp = _post_as(author)(sec_client, ctx, users.headers("wade"))
    assert resp.status_code == 403 and resp.json["error"] == "forbidden"
    messages = sec_client.get(f"/v1/discussions/{ctx['did']}/messages",
                              headers=users.headers("wade")).json
    assert messages["total"] == 0


# ---------------------------------------------------------------- WebSocket


def _ws(base: str, did: str, key: str | None, **kw: Any) -> websocket.WebSocket:
    url = base.replace("http://", "ws://") + f"/v1/discussions/{did}/stream"
    header = [f"Authorization: Bearer {key}"] if key else []
    return websocket.create_connection(url, timeout=10, header=header, **kw)


def _close_code(ws: websocket.WebSocket) -> int:
    while True:
        opcode, data = ws.recv_data(control_frame=True)
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return int.from_bytes(data[:2], "big")


def _next(ws: websocket.WebSocket, *types: str) -> dict:
    while True:
        frame = json.loads(ws.recv())
        if frame.get("type") in types:
            return frame


# role -> (connect answer, ping answer, post answer)
WS_MATRIX = {
    "none": ("http 401", None, None),
    "eve": ("close 4404", None, None),
    "rita": ("init", "pong", 403),
    "wade": ("init", "pong", "posted"),
    "mona": ("init", "pong", 403),
    "alice": ("init", "pong", 403),
}


@pytest.mark.parametrize("role", ROLES)
def test_websocket_cell(sec_client, sec_server, users, role: str) -> None:
    ctx = _setup(sec_client, users)
    connect, ping, post = WS_MATRIX[role]
    key = None if role == "none" else users.key(role)
    if connect == "http 401":
        with pytest.raises(websocket.WebSocketBadStatusException) as err:
            _ws(sec_server, ctx["did"], key)
        assert err.value.status_code == 401
        return
    ws = _ws(sec_server, ctx["did"], key)
    try:
        if connect == "close 4404":
            assert _close_code(ws) == 4404
            return
        assert json.loads(ws.recv())["type"] == "init"
        ws.send(json.dumps({"type": "ping"}))
        assert _next(ws, "pong", "error")["type"] == ping
        author = role if role in ctx["pids"] else "wade"
        ws.send(json.dumps({"type": "post", "ref": 7, "participant_id": ctx["pids"][author],
                            "content": "over the socket"}))
        seen: list[dict] = []
        answer = None
        while answer is None:
            frame = json.loads(ws.recv())
            seen.append(frame)
            if frame["type"] in ("posted", "error"):
                answer = frame
        assert answer["ref"] == 7
        if post == "posted":
            assert answer["type"] == "posted" and answer["data"]["seq"] == 1
            if not any(f["type"] == "message" for f in seen):  # the event may come either side
                seen.append(_next(ws, "message"))
            assert [f["data"]["content"] for f in seen if f["type"] == "message"] == \
                ["over the socket"]
        else:
            assert answer["type"] == "error" and answer["data"]["status"] == post
    finally:
        ws.close()
