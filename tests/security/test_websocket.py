"""WebSocket security: credentials on upgrade, Origin, frame size and rate, expiry."""

from __future__ import annotations

import json
import time

import pytest
import websocket

from tests.helpers import agent_body
from tests.security.conftest import ORIGIN, make_jwt, serve


def _url(base: str, did: str, query: str = "") -> str:
    return base.replace("http://", "ws://") + f"/v1/discussions/{did}/stream" + query


def _create(client, users, user: str = "alice") -> str:
    resp = client.post("/v1/discussions", json=agent_body(1, 1), headers=users.headers(user))
    assert resp.status_code == 201
    return resp.json["id"]


def _close_code(ws: websocket.WebSocket) -> int:
    while True:
        opcode, data = ws.recv_data(control_frame=True)
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return int.from_bytes(data[:2], "big")


def test_token_in_query_string_or_subprotocol(sec_client, sec_server, users) -> None:
    did = _create(sec_client, users)
    key = users.key("alice")
    ws = websocket.create_connection(_url(sec_server, did, f"?access_token={key}"), timeout=10)
    assert json.loads(ws.recv())["type"] == "init"
    ws.close()
    ws = websocket.create_connection(_url(sec_server, did), timeout=10,
                                     subprotocols=["bearer", make_jwt("alice")])
    assert ws.getsubprotocol() == "bearer"  # a browser needs one offered protocol echoed
    assert json.loads(ws.recv())["type"] == "init"
    ws.close()
    for bad in ("?access_token=dok_0123456789abcdef01_nope", ""):
        with pytest.raises(websocket.WebSocketBadStatusException) as err:
            websocket.create_connection(_url(sec_server, did, bad), timeout=10)
        assert err.value.status_code == 401


def test_cross_site_upgrade_with_valid_credentials_is_refused(sec_client, sec_server,
                                                              users) -> None:
    did = _create(sec_client, users)
    header = [f"Authorization: Bearer {users.key('alice')}"]
    with pytest.raises(websocket.WebSocketBadStatusException) as err:
        websocket.create_connection(_url(sec_server, did), timeout=10, header=header,
                                    origin="https://evil.example")
    assert err.value.status_code == 403
    # Listed origins and the service's own origin are fine.
    for origin in (ORIGIN, sec_server):
        ws = websocket.create_connection(_url(sec_server, did), timeout=10, header=header,
                                         origin=origin)
        assert json.loads(ws.recv())["type"] == "init"
        ws.close()


def test_cross_site_upgrade_refused_in_demo_mode_too(live_server) -> None:
    import requests

    did = requests.post(f"{live_server}/v1/discussions", json=agent_body(1, 1),
                        timeout=5).json()["id"]
    with pytest.raises(websocket.WebSocketBadStatusException) as err:
        websocket.create_connection(_url(live_server, did), timeout=10,
                                    origin="https://evil.example")
    assert err.value.status_code == 403


def test_the_service_page_under_another_loopback_name_may_open_the_stream(live_server) -> None:
    """The run command prints http://127.0.0.1:5000 and the README's WebSocket snippet dials
    ws://localhost:5000: from the printed page, that is the same service, not another site."""
    import requests

    did = requests.post(f"{live_server}/v1/discussions", json=agent_body(1, 1),
                        timeout=5).json()["id"]
    port = int(live_server.rsplit(":", 1)[1])
    ws = websocket.create_connection(_url(live_server, did), timeout=10,
                                     origin=f"http://localhost:{port}")
    assert json.loads(ws.recv())["type"] == "init"
    ws.close()
    # Another port, scheme or a look-alike name is another site: refused.
    for origin in (f"http://localhost:{port + 1}", f"https://localhost:{port}",
                   f"http://127.0.0.1.evil.example:{port}", f"http://localhost:{port}x"):
        with pytest.raises(websocket.WebSocketBadStatusException) as err:
            websocket.create_connection(_url(live_server, did), timeout=10, origin=origin)
        assert err.value.status_code == 403, origin


def test_oversized_frame_closes_1009(make_app, sec_settings, sec_client, users) -> None:
    app = make_app(sec_settings.model_copy(update={"ws_max_frame_bytes": 1024}))
    base, server, thread = serve(app)
    try:
        did = _create(sec_client, users)
        ws = websocket.create_connection(_url(base, did), timeout=10,
                                         header=[f"X-API-Key: {users.key('alice')}"])
        assert json.loads(ws.recv())["type"] == "init"
        ws.send(json.dumps({"type": "ping", "pad": "x" * 4096}))
        assert _close_code(ws) == 1009
    finally:
        server.shutdown()
        thread.join(timeout=10)


def test_frame_rate_closes_4429(make_app, sec_settings, sec_client, users) -> None:
    app = make_app(sec_settings.model_copy(update={"ws_max_messages_per_s": 1.0,
                                                   "ws_message_burst": 5}))
    base, server, thread = serve(app)
    try:
        did = _create(sec_client, users)
        ws = websocket.create_connection(_url(base, did), timeout=10,
                                         header=[f"X-API-Key: {users.key('alice')}"])
        assert json.loads(ws.recv())["type"] == "init"
        pongs = 0
        for _ in range(20):
            try:
                ws.send(json.dumps({"type": "ping"}))
            except (websocket.WebSocketConnectionClosedException, BrokenPipeError):
                break
        code = None
        while code is None:
            opcode, data = ws.recv_data(control_frame=True)
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                code = int.from_bytes(data[:2], "big")
            elif opcode == websocket.ABNF.OPCODE_TEXT and json.loads(data)["type"] == "pong":
                pongs += 1
        assert code == 4429
        assert pongs == 5  # the burst was served, the rest refused
    finally:
        server.shutdown()
        thread.join(timeout=10)


def test_expired_token_closes_4401(make_app, sec_settings, sec_client, users) -> None:
    app = make_app(sec_settings.model_copy(update={"jwt_leeway_s": 0}))
    base, server, thread = serve(app)
    try:
        did = _create(sec_client, users)
        ws = websocket.create_connection(_url(base, did), timeout=10,
                                         subprotocols=["bearer", make_jwt("alice", exp_in=2)])
        assert json.loads(ws.recv())["type"] == "init"
        # The server closes it at `exp`, unasked (test_socket_credentials.py); read the raw
        # frames, since the server may be gone before the client could answer its close.
        frame = ws.recv_frame()
        while frame.opcode != websocket.ABNF.OPCODE_CLOSE:
            frame = ws.recv_frame()
        assert int.from_bytes(frame.data[:2], "big") == 4401
    finally:
        server.shutdown()
        thread.join(timeout=10)


def test_revoked_key_cannot_post_on_an_open_socket(sec_client, sec_server, users, r) -> None:
    from core.services.auth import revoke_api_key

    body = {**agent_body(1, 1), "protocol": "free_form",
            "humans": [{"user_id": "wade", "name": "Wade"}]}
    session = sec_client.post("/v1/discussions", json=body, headers=users.headers("alice")).json
    pid = next(p["participant_id"] for p in session["participants"] if p["user_id"] == "wade")
    key = users.key("wade")
    ws = websocket.create_connection(_url(sec_server, session["id"]), timeout=10,
                                     header=[f"X-API-Key: {key}"])
    assert json.loads(ws.recv())["type"] == "init"
    revoke_api_key(r, key.split("_")[1])
    ws.send(json.dumps({"type": "post", "participant_id": pid, "content": "after revoke"}))
    assert _close_code(ws) == 4401
    assert r.llen(f"discussion:{session['id']}:messages") == 0


@pytest.mark.parametrize("frame,code", [
    ({"type": "post", "participant_id": "x", "content": ""}, "validation_error"),
    ({"type": "post", "participant_id": "x", "content": "hi", "seq": 5}, "validation_error"),
    ({"type": "post", "participant_id": "x", "content": "hi", "idempotency_key": 5},
     "validation_error"),
    ({"type": "post", "participant_id": "human_nope", "content": "hi"}, "participant_not_found"),
    ({"type": "moderate"}, "bad_request"),
])
def test_bad_post_frames_get_error_frames(sec_client, sec_server, users, frame, code) -> None:
    did = _create(sec_client, users)
    ws = websocket.create_connection(_url(sec_server, did), timeout=10,
                                     header=[f"X-API-Key: {users.key('alice')}"])
    try:
        assert json.loads(ws.recv())["type"] == "init"
        ws.send(json.dumps(frame))
        answer = json.loads(ws.recv())
        while answer["type"] != "error":
            answer = json.loads(ws.recv())
        assert answer["data"]["code"] == code
    finally:
        ws.close()


def test_open_sockets_per_user_are_capped(make_app, sec_settings, sec_client, users, r) -> None:
    app = make_app(sec_settings.model_copy(update={"ws_max_connections_per_user": 2}))
    base, server, thread = serve(app)
    header = [f"X-API-Key: {users.key('alice')}"]
    opened = []
    try:
        did = _create(sec_client, users)
        for _ in range(2):
            ws = websocket.create_connection(_url(base, did), timeout=10, header=header)
            assert json.loads(ws.recv())["type"] == "init"
            opened.append(ws)
        third = websocket.create_connection(_url(base, did), timeout=10, header=header)
        assert _close_code(third) == 4429
        other = websocket.create_connection(_url(base, did), timeout=10,
                                            header=[f"X-API-Key: {users.key('bob')}"])
        assert _close_code(other) == 4404  # bob is not capped by alice's sockets
        opened.pop().close()
        deadline = time.monotonic() + 10
        while r.zcard("user:alice:sockets") > 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        again = websocket.create_connection(_url(base, did), timeout=10, header=header)
        assert json.loads(again.recv())["type"] == "init"
        opened.append(again)
    finally:
        for ws in opened:
            ws.close()
        server.shutdown()
        thread.join(timeout=10)
