"""Finding 6: one accounting of consumption per user, whatever the door.

WebSocket posts share the per-user request budget with REST; batches and schedules count against
the per-user create limit and the active-discussion quota, and a batch item that meets either
waits instead of failing; `resume` frames are throttled and one replay's bytes are capped;
`max_messages` holds for posts while a discussion is paused.
"""

from __future__ import annotations

import json
import time

import websocket

from core.operations import batches, schedules
from core.operations.schedules import CreateSchedule
from tests.helpers import agent_body
from tests.security.conftest import serve


def _url(base: str, did: str) -> str:
    return base.replace("http://", "ws://") + f"/v1/discussions/{did}/stream"


def _limited(sec_settings, **extra):
    # Rate limits on, as by default (the security fixtures turn them off for other tests).
    return sec_settings.model_copy(update={"rate_limit_enabled": True, **extra})


def _shared(client, users, **extra) -> tuple[str, dict[str, str]]:
    body = {**agent_body(1, 1), "protocol": "free_form", **extra,
            "humans": [{"user_id": "alice", "name": "Alice"},
                       {"user_id": "wade", "name": "Wade", "permissions": ["read", "write"]}]}
    resp = client.post("/v1/discussions", json=body, headers=users.headers("alice"))
    assert resp.status_code == 201, resp.text
    return resp.json["id"], {p["user_id"]: p["participant_id"]
                             for p in resp.json["participants"] if p["user_id"]}


def test_websocket_posts_share_the_per_user_budget_with_rest(make_app, sec_settings,
                                                            users) -> None:
    # A small per-user budget (the default is 600/minute) keeps the test short; the
    # accounting is the same at any size.
    budget = 20
    app = make_app(_limited(sec_settings, rate_limit_per_user=f"{budget}/minute"))
    client = app.test_client()
    did, pids = _shared(client, users)
    base, server, thread = serve(app)
    header = [f"X-API-Key: {users.key('wade')}"]
    sockets = []
    try:
        for _ in range(3):  # three doors, one budget (each upgrade is a request too)
            ws = websocket.create_connection(_url(base, did), timeout=10, header=header)
            assert json.loads(ws.recv())["type"] == "init"
            sockets.append(ws)
        accepted, refused = 0, 0
        for n, ws in enumerate(sockets):
            for i in range(10):
                ws.send(json.dumps({"type": "post", "ref": i, "participant_id": pids["wade"],
                                    "content": f"socket {n} post {i}"}))
            answers = 0
            while answers < 10:
                frame = json.loads(ws.recv())
                if frame["type"] == "posted":
                    accepted, answers = accepted + 1, answers + 1
                elif frame["type"] == "error":
                    assert frame["data"]["status"] == 429
                    assert frame["data"]["code"] == "rate_limited"
                    refused, answers = refused + 1, answers + 1
        rest = client.post(f"/v1/discussions/{did}/messages", headers=users.headers("wade"),
                           json={"participant_id": pids["wade"], "content": "rest"})
        assert rest.status_code == 429, "REST still had budget the sockets had used"
        assert accepted + len(sockets) <= budget, (accepted, refused)
        assert refused >= 30 - budget
        # A refused frame leaves the socket open.
        sockets[0].send(json.dumps({"type": "ping"}))
        while json.loads(sockets[0].recv())["type"] != "pong":
            pass
    finally:
        for ws in sockets:
            ws.close()
        server.shutdown()
        thread.join(timeout=10)


def _batch(client, users, n: int, user: str = "alice"):
    body = {"name": "b", "topics": [f"topic {i}" for i in range(n)], "concurrency": n,
            "template": agent_body(1, 1)}
    resp = client.post("/v1/batches", json=body, headers=users.headers(user))
    assert resp.status_code in (200, 201), resp.text
    return resp.json


def test_batch_items_wait_for_the_active_quota(make_app, sec_settings, users, r) -> None:
    app = make_app(_limited(sec_settings))
    client = app.test_client()
    quota = sec_settings.max_active_discussions_per_user  # 20 by default
    status = _batch(client, users, quota + 5)
    assert status["counts"].get("failed_to_start", 0) == 0, status["counts"]
    started = [i["discussion_id"] for i in status["items"] if i.get("discussion_id")]
    assert len(started) == quota
    assert status["pending"] + status["running"] >= 5
    # Finishing some frees the quota: the waiting items start on the next pump.
    for did in started[:5]:
        assert client.post(f"/v1/discussions/{did}/cancel",
                           headers=users.headers("alice")).status_code == 200
    with app.app_context():
        from api.extension import ext

        batches.pump(ext().services(), status["id"])
        after = batches.status(ext().services(), status["id"])
    assert after["counts"].get("failed_to_start", 0) == 0, after["counts"]
    assert sum(1 for i in after["items"] if i.get("discussion_id")) == quota + 5


def test_batches_count_against_the_per_user_create_limit(make_app, sec_settings, users) -> None:
    app = make_app(_limited(sec_settings))  # RATE_LIMIT_CREATE 30/minute by default
    client = app.test_client()
    per_minute = int(sec_settings.rate_limit_create.split("/")[0])
    made = 0
    for _ in range(per_minute - 5):
        resp = client.post("/v1/discussions", json=agent_body(1, 1),
                           headers=users.headers("alice"))
        assert resp.status_code == 201
        made += 1
        # Cancelled at once, so the active-discussion quota is not what stops the batch.
        client.post(f"/v1/discussions/{resp.json['id']}/cancel", headers=users.headers("alice"))
    status = _batch(client, users, 10)
    started = sum(1 for i in status["items"] if i.get("discussion_id"))
    assert started == per_minute - made, status["counts"]
    assert status["counts"].get("failed_to_start", 0) == 0, "items must wait, not fail"
    late = client.post("/v1/discussions", json=agent_body(1, 1), headers=users.headers("alice"))
    assert late.status_code == 429


def test_schedules_count_against_the_per_user_create_limit(make_app, sec_settings,
                                                           users) -> None:
    app = make_app(_limited(sec_settings))
    client = app.test_client()
    per_minute = int(sec_settings.rate_limit_create.split("/")[0])
    for _ in range(per_minute):
        resp = client.post("/v1/discussions", json=agent_body(1, 1),
                           headers=users.headers("alice"))
        assert resp.status_code == 201
        client.post(f"/v1/discussions/{resp.json['id']}/cancel", headers=users.headers("alice"))
    with app.app_context():
        from api.extension import ext

        svc = ext().services()
        s = schedules.create(svc, CreateSchedule.model_validate(
            {"name": "s", "interval_s": 60, "template": agent_body(1, 1)}), owner="alice",
            now=time.time() - 61)
        created = schedules.fire_due(svc, now=time.time())
        runs = schedules.runs(svc, s.id)
    assert created == [], "a schedule created a discussion past its owner's create limit"
    assert runs and runs[0].get("discussion_id") is None


def test_resume_is_throttled_and_a_replay_is_capped(make_app, sec_settings, users) -> None:
    app = make_app(sec_settings)
    client = app.test_client()
    body = {**agent_body(1, 1), "protocol": "free_form",
            "humans": [{"user_id": "alice", "name": "Alice"},
                       {"user_id": "vera", "name": "Vera", "permissions": ["read"]}]}
    session = client.post("/v1/discussions", json=body, headers=users.headers("alice")).json
    alice = next(p["participant_id"] for p in session["participants"] if p["user_id"] == "alice")
    did = session["id"]
    chunk = "x" * 19_000
    for i in range(150):  # about 2.9 MB of events
        resp = client.post(f"/v1/discussions/{did}/messages", headers=users.headers("alice"),
                           json={"participant_id": alice, "content": f"{i} {chunk}"})
        assert resp.status_code == 201
    base, server, thread = serve(app)
    try:
        ws = websocket.create_connection(_url(base, did), timeout=10,
                                         header=[f"X-API-Key: {users.key('vera')}"])
        received = len(ws.recv())  # init
        for _ in range(10):  # about 700 bytes from a read-only viewer
            ws.send(json.dumps({"type": "resume", "last_event_id": "0-0"}))
        ws.settimeout(2.0)
        refused = 0
        ends = time.monotonic() + 5
        while time.monotonic() < ends:
            try:
                data = ws.recv()
            except websocket.WebSocketTimeoutException:
                break
            received += len(data)
            if '"rate_limited"' in data[:200]:
                refused += 1
        ws.close()
    finally:
        server.shutdown()
        thread.join(timeout=10)
    # Defaults: WS_MAX_REPLAY_BYTES 1 MiB, WS_RESUME_BURST 3 (getattr: a build without them
    # fails on the bytes, not on a missing name).
    cap = getattr(sec_settings, "ws_max_replay_bytes", 1 << 20)
    burst = getattr(sec_settings, "ws_resume_burst", 3)
    # At most the initial init and a burst of capped replays, never ten full histories.
    assert received <= (1 + burst) * cap + 100_000, received
    assert refused >= 10 - burst


def test_max_messages_holds_while_paused(sec_client, users) -> None:
    did, pids = _shared(sec_client, users, max_messages=5)
    assert sec_client.post(f"/v1/discussions/{did}/pause",
                           headers=users.headers("alice")).status_code == 200
    codes = [sec_client.post(f"/v1/discussions/{did}/messages", headers=users.headers("wade"),
                             json={"participant_id": pids["wade"], "content": f"m{i}"}).status_code
             for i in range(10)]
    assert codes.count(201) == 5 and set(codes[5:]) == {409}, codes
    session = sec_client.get(f"/v1/discussions/{did}", headers=users.headers("alice")).json
    assert session["message_count"] == 5
