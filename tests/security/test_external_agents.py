"""With authentication on, the creator posts as the discussion's external agents, and only as
those: an agent the engine calls is never the creator's to speak for (REST and WebSocket)."""

from __future__ import annotations

import json

import requests
import websocket

from tests.security.conftest import ORIGIN, Users

BODY = {"topic": "Pick a database", "protocol": "free_form",
        "agents": [{"persona": "Security Expert"},
                   {"persona": "Review Bot", "provider": "external"}]}


def _create(base: str, users: Users) -> tuple[str, dict[str, str]]:
    resp = requests.post(f"{base}/v1/discussions", json=BODY, headers=users.headers("alice"),
                         timeout=5)
    assert resp.status_code == 201, resp.text
    ids = {p["name"]: p["participant_id"] for p in resp.json()["participants"]}
    return resp.json()["id"], ids


def test_the_creator_posts_as_its_external_agent_over_rest(sec_server: str,
                                                           users: Users) -> None:
    did, ids = _create(sec_server, users)
    url = f"{sec_server}/v1/discussions/{did}/messages"

    def post(user: str, who: str):
        return requests.post(url, json={"participant_id": ids[who], "content": "hi"},
                             headers=users.headers(user), timeout=5)

    sent = post("alice", "Review Bot")
    assert sent.status_code == 201 and sent.json()["participant_name"] == "Review Bot"
    assert post("alice", "Security Expert").status_code == 403  # the engine's agent
    assert post("mallory", "Review Bot").status_code == 404  # no access at all


def test_the_creator_posts_as_its_external_agent_over_the_websocket(sec_server: str,
                                                                    users: Users) -> None:
    did, ids = _create(sec_server, users)
    ws_url = sec_server.replace("http://", "ws://") + f"/v1/discussions/{did}/stream"
    ws = websocket.create_connection(f"{ws_url}?access_token={users.key('alice')}",
                                     origin=ORIGIN, timeout=10)
    try:
        assert json.loads(ws.recv())["type"] == "init"
        ws.send(json.dumps({"type": "post", "ref": 1, "participant_id": ids["Review Bot"],
                            "content": "from the bot's own system"}))
        ws.send(json.dumps({"type": "post", "ref": 2, "participant_id": ids["Security Expert"],
                            "content": "not mine to say"}))
        replies = {}
        while len(replies) < 2:
            frame = json.loads(ws.recv())
            if "ref" in frame:
                replies[frame["ref"]] = frame
        assert replies[1]["type"] == "posted"
        assert replies[2]["type"] == "error" and replies[2]["data"]["status"] == 403
    finally:
        ws.close()
