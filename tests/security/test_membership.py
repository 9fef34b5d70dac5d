"""Finding 10 (must do 9b): nobody can force another user into a discussion for good.

The model (docs/security.md, "Membership"): a person named in someone else's discussion is a
member at once and can leave at any time with `POST /v1/discussions/{id}/leave`. Leaving is final:
the discussion leaves their list, they lose every permission (404 from then on, REST and
WebSocket), their seat is muted so no protocol waits for them, and the audit log records it.
"""

from __future__ import annotations

import websocket

from tests.helpers import agent_body


def _forced(client, users) -> tuple[str, str]:
    """alice names bob, a stranger, as a moderator of her discussion."""
    body = {**agent_body(1, 1), "protocol": "moderated",
            "humans": [{"user_id": "bob", "name": "Bob", "permissions": ["read", "moderate"]}]}
    resp = client.post("/v1/discussions", json=body, headers=users.headers("alice"))
    assert resp.status_code == 201, resp.text
    bob = next(p["participant_id"] for p in resp.json["participants"] if p["user_id"] == "bob")
    return resp.json["id"], bob


def _listed(client, users, user: str) -> list[str]:
    resp = client.get("/v1/discussions", headers=users.headers(user))
    assert resp.status_code == 200
    return [d if isinstance(d, str) else d["id"] for d in resp.json["discussions"]]


def test_a_named_person_can_leave_for_good(sec_client, users) -> None:
    did, bob = _forced(sec_client, users)
    assert did in _listed(sec_client, users, "bob")
    resp = sec_client.post(f"/v1/discussions/{did}/leave", headers=users.headers("bob"))
    assert resp.status_code == 200, resp.text
    assert resp.json["left"] is True
    assert did not in _listed(sec_client, users, "bob")
    for method, path in (("get", ""), ("get", "/messages"), ("post", "/pause"),
                         ("post", "/leave")):
        answer = getattr(sec_client, method)(f"/v1/discussions/{did}{path}",
                                             headers=users.headers("bob"))
        assert answer.status_code == 404, (path, answer.status_code)
    moderation = sec_client.post(f"/v1/discussions/{did}/moderation",
                                 headers=users.headers("bob"),
                                 json={"action": "mute", "by": bob, "participant_id": bob})
    assert moderation.status_code == 404
    # The creator still sees the discussion, with bob's seat emptied and muted.
    session = sec_client.get(f"/v1/discussions/{did}", headers=users.headers("alice")).json
    seat = next(p for p in session["participants"] if p["participant_id"] == bob)
    assert seat["permissions"] == [] and seat["user_id"] is None
    audit = sec_client.get(f"/v1/discussions/{did}/audit", headers=users.headers("alice")).json
    assert any(e["action"] == "participant.left" for e in audit["entries"]), audit


def test_a_person_who_left_cannot_watch(sec_client, sec_server, users) -> None:
    did, _ = _forced(sec_client, users)
    assert sec_client.post(f"/v1/discussions/{did}/leave",
                           headers=users.headers("bob")).status_code == 200
    ws = websocket.create_connection(
        sec_server.replace("http://", "ws://") + f"/v1/discussions/{did}/stream", timeout=10,
        header=[f"X-API-Key: {users.key('bob')}"])
    frame = ws.recv_frame()  # raw: the server may be gone before the client answers its close
    assert frame.opcode == websocket.ABNF.OPCODE_CLOSE
    assert int.from_bytes(frame.data[:2], "big") == 4404
    ws.close()


def test_only_named_people_leave(sec_client, users) -> None:
    did, _ = _forced(sec_client, users)
    # The creator deletes instead; a stranger cannot see it at all.
    owner = sec_client.post(f"/v1/discussions/{did}/leave", headers=users.headers("alice"))
    assert owner.status_code == 409
    stranger = sec_client.post(f"/v1/discussions/{did}/leave", headers=users.headers("eve"))
    assert stranger.status_code == 404


def test_the_cli_finds_leave_among_the_actions(sec_client, sec_server, users) -> None:
    from cli.actions import run_action
    from cli.client import Client

    did, bob = _forced(sec_client, users)
    result = run_action(Client(sec_server, users.key("bob")), did, "leave", None, {})
    assert result == {"discussion_id": did, "participant_id": bob, "left": True}
    assert did not in _listed(sec_client, users, "bob")
