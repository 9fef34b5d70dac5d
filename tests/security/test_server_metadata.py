"""Issue 13, finding 9 (first half): server-owned message metadata is one list, used everywhere.

Every key the engine writes on a message (accounting, retries, estimated usage, stand-ins,
votes it parsed, approvals) is in `SERVER_MESSAGE_METADATA_KEYS`, and no client can set any of
them, over REST or the WebSocket.
"""

from __future__ import annotations

import json

import pytest
import websocket

from core.agents import Backends
from core.ground.owned import SERVER_MESSAGE_METADATA_KEYS
from tests.helpers import agent_body
from tests.security.conftest import ORIGIN
from workers.engine import Runtime, run_step

CLAIMED = ("attempts", "retries", "usage_estimated", "provider", "cost_usd", "cached_reply",
           "proxy_for", "approved_by", "vote", "vote_unparsed", "verdict", "chosen_by")


def _shared(sec_client, users) -> tuple[str, str]:
    body = {**agent_body(1, 1), "protocol": "free_form",
            "humans": [{"user_id": "bob", "name": "Bob"}]}
    session = sec_client.post("/v1/discussions", json=body, headers=users.headers("alice")).json
    return session["id"], next(p["participant_id"] for p in session["participants"]
                               if p["user_id"] == "bob")


def test_the_list_holds_what_the_engine_writes() -> None:
    for key in CLAIMED:
        assert key in SERVER_MESSAGE_METADATA_KEYS, key


@pytest.mark.parametrize("key", CLAIMED)
def test_clients_cannot_set_server_keys_over_rest(sec_client, users, key) -> None:
    did, bob = _shared(sec_client, users)
    resp = sec_client.post(f"/v1/discussions/{did}/messages", headers=users.headers("bob"),
                           json={"participant_id": bob, "content": "hi", "metadata": {key: 1}})
    assert resp.status_code == 422, (key, resp.json)
    assert key in resp.json["message"]


def test_clients_cannot_set_server_keys_over_the_websocket(sec_client, sec_server,
                                                           users) -> None:
    did, bob = _shared(sec_client, users)
    ws = websocket.create_connection(
        sec_server.replace("http://", "ws://") + f"/v1/discussions/{did}/stream", timeout=10,
        header=[f"X-API-Key: {users.key('bob')}"], origin=ORIGIN)
    try:
        assert json.loads(ws.recv())["type"] == "init"
        for i, key in enumerate(CLAIMED):
            ws.send(json.dumps({"type": "post", "ref": i, "participant_id": bob,
                                "content": "hi", "metadata": {key: True}}))
            answer = json.loads(ws.recv())
            while answer.get("ref") != i:
                answer = json.loads(ws.recv())
            assert answer["type"] == "error" and answer["data"]["status"] == 422, (key, answer)
    finally:
        ws.close()


PANELS = {
    # Simulated agents and the reference platform's OpenAI-compatible server, over HTTP.
    "round_robin": {"protocol": "round_robin", "agents": [
        {"persona": "Sim", "provider": "simulated"},
        {"persona": "Remote", "provider": "openai", "model": "fake-model"}]},
    "consensus": {"protocol": "consensus", "agents": [
        {"persona": "A", "provider": "simulated", "params": {"vote": "none"}},
        {"persona": "B", "provider": "simulated", "params": {"vote": "yes"}}]},
    "moderated": {"protocol": "moderated", "agents": [
        {"persona": "Mod", "provider": "simulated", "moderator": True,
         "params": {"choose": ["A", "B"], "end_after": 3}},
        {"persona": "A", "provider": "simulated"}, {"persona": "B", "provider": "simulated"}]},
    "debate": {"protocol": "debate", "agents": [
        {"persona": "Advocate", "role": "pro", "provider": "simulated"},
        {"persona": "Critic", "role": "con", "provider": "simulated"},
        {"persona": "Judge", "role": "judge", "provider": "simulated",
         "params": {"choose": "con"}}]},
}


@pytest.mark.parametrize("protocol", sorted(PANELS))
def test_every_key_an_agent_turn_writes_is_in_the_list(make_app, sec_settings, users,
                                                       store, platform, protocol) -> None:
    """Real turns of every protocol through the engine; the keys written must all be listed
    (a protocol that starts writing a new key fails here until it is added)."""
    client = make_app(sec_settings).test_client()
    body = {"topic": "Monoliths beat microservices", "max_rounds": 2, **PANELS[protocol]}
    resp = client.post("/v1/discussions", json=body, headers=users.headers("alice"))
    assert resp.status_code == 201, resp.json
    did = resp.json["id"]
    rt = Runtime(settings=sec_settings, store=store, backends=Backends(sec_settings),
                 enqueue=lambda _did: None)
    for _ in range(30):
        run_step(rt, did)
        if store.state(did).status.terminal:
            break
    messages, _ = store.messages(did, 0, 100)
    written = {k for m in messages if m.participant_type.value == "agent" for k in m.metadata}
    assert written, messages
    assert written <= SERVER_MESSAGE_METADATA_KEYS, written - SERVER_MESSAGE_METADATA_KEYS
