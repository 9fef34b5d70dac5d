"""Agents through the API and a real Celery worker: the same discussion with each provider,
faults survived, instance ids kept, usage in the session, and 422/503 at creation."""

from __future__ import annotations

import pytest
import requests

from scripts.embedded_redis import free_port
from tests.agent_helpers import calls, ep_agent, openai_agent, tuned
from tests.helpers import wait_for

TOPIC = "Design API for user authentication"


def _finished(base: str, did: str) -> dict:
    def done() -> dict | None:
        s = requests.get(f"{base}/v1/discussions/{did}", timeout=5).json()
        return s if s["status"] in ("completed", "failed", "cancelled") else None

    return wait_for(done, timeout=60)


@pytest.mark.parametrize("provider", ["simulated", "execution_platform", "openai"])
def test_same_discussion_runs_with_each_provider(live_server, platform, provider) -> None:
    base, _ = platform
    agents = [{"persona": p, "provider": provider, "model": "gpt-4o-mini"}
              for p in ("Security Expert", "Backend Developer", "Product Manager")]
    resp = requests.post(f"{live_server}/v1/discussions", timeout=10,
                         json={"topic": TOPIC, "agents": agents, "max_rounds": 2})
    assert resp.status_code == 201, resp.text
    session = _finished(live_server, resp.json()["id"])
    assert session["status"] == "completed" and session["message_count"] == 6
    usage = session["usage"]
    assert usage["total"]["messages"] == 6 and usage["total"]["completion_tokens"] > 0
    assert set(usage["participants"]) == {p["participant_id"] for p in session["participants"]}
    if provider == "execution_platform":
        for i, p in enumerate(session["participants"]):
            assert p["instance_id"].startswith("inst_")
            assert calls(base, p["instance_id"], i) == 1
    if provider == "openai":  # priced from the default table
        assert usage["total"]["cost_usd"] > 0


def test_discussion_survives_injected_faults(live_server, platform) -> None:
    agents = [ep_agent("Five Hundred", faults={"fail_first": 1, "error_mode": "500"}),
              ep_agent("Rate Limited", faults={"fail_first": 1, "error_mode": "429",
                                               "retry_after_s": 0.2}),
              openai_agent("Slow Stream", stream=True,
                           extra_body={"faults": {"latency_ms": 50, "fail_first": 1,
                                                  "error_mode": "503"}}),
              ep_agent("Broken", faults={"fail_first": 100, "error_mode": "malformed"})]
    resp = requests.post(f"{live_server}/v1/discussions", timeout=10,
                         json={"topic": TOPIC, "agents": agents, "max_rounds": 2})
    assert resp.status_code == 201, resp.text
    session = _finished(live_server, resp.json()["id"])
    assert session["status"] == "completed", session
    assert session["message_count"] == 6  # 3 agents x 2 rounds; "Broken" skipped twice
    total = session["usage"]["total"]
    assert total["failures"] == 2 and total["retries"] == 6  # 1 per good agent per turn
    page = requests.get(f"{live_server}/v1/discussions/{session['id']}/messages?limit=50",
                        timeout=5).json()
    assert all(m["metadata"]["retries"] == 1 for m in page["messages"])
    assert "Broken" not in {m["participant_name"] for m in page["messages"]}


@pytest.mark.parametrize(("agent", "message"), [
    ({"persona": "A", "provider": "nonexistent"}, "not available"),
    ({"persona": "A", "provider": "openai"}, "needs a model"),
    ({"persona": "A", "provider": "openai", "model": "m", "temperature": 2.5}, "temperature"),
    ({"persona": "A", "provider": "simulated", "temperature": -1}, "temperature"),
    ({"persona": "A", "provider": "openai", "model": "m", "params": {"stream": "yes"}},
     "stream"),
    ({"persona": "A", "provider": "execution_platform",
      "params": {"faults": {"error_mode": "boom"}}}, "refused agent"),
])
def test_bad_agent_configuration_is_422(client, platform, agent, message) -> None:
    resp = client.post("/v1/discussions", json={"topic": "x", "agents": [agent]})
    assert resp.status_code == 422, resp.get_json()
    body = resp.get_json()
    assert body["error"] == "validation_error" and message in body["message"]


def test_unreachable_platform_is_503_and_nothing_is_stored(settings, r) -> None:
    from api import create_app

    down = tuned(settings, execution_platform_url=f"http://127.0.0.1:{free_port()}",
                 agent_register_deadline_s=1.0)
    client = create_app({"TESTING": True}, settings=down, redis_client=r,
                        dispatch=lambda did: None).test_client()
    resp = client.post("/v1/discussions", json={"topic": "x", "agents": [
        {"persona": "A", "provider": "execution_platform"}]})
    assert resp.status_code == 503 and resp.get_json()["error"] == "service_unavailable"
    assert client.get("/v1/discussions").get_json()["count"] == 0


def test_default_provider_is_the_platform_when_its_url_is_set(settings, r, platform) -> None:
    from api import create_app

    chosen = tuned(settings, default_provider="")
    assert chosen.default_provider == "execution_platform"
    client = create_app({"TESTING": True}, settings=chosen, redis_client=r,
                        dispatch=lambda did: None).test_client()
    resp = client.post("/v1/discussions", json={"topic": "x", "agents": [{"persona": "A"}]})
    assert resp.status_code == 201
    agent = resp.get_json()["participants"][0]
    assert agent["provider"] == "execution_platform" and agent["instance_id"]


def test_viewers_see_message_deltas_then_one_message(live_server, platform) -> None:
    import json

    import websocket

    agents = [openai_agent("Streamer", stream=True,
                           extra_body={"faults": {"chunk_delay_ms": 5}})]
    resp = requests.post(f"{live_server}/v1/discussions", timeout=10,
                         json={"topic": TOPIC, "agents": agents, "max_rounds": 2})
    did = resp.json()["id"]
    url = live_server.replace("http://", "ws://") + f"/v1/discussions/{did}/stream"
    ws = websocket.create_connection(url + "?last_event_id=0", timeout=20)
    frames: list[dict] = []
    try:
        while not any(f.get("type") == "status" and f["data"].get("status") == "completed"
                      for f in frames):
            frames.append(json.loads(ws.recv()))
    finally:
        ws.close()
    messages = [f["data"] for f in frames if f.get("type") == "message"]
    assert [m["turn"] for m in messages] == [0, 1]
    for m in messages:
        deltas = [f["data"] for f in frames
                  if f.get("type") == "message_delta" and f["data"]["turn"] == m["turn"]]
        assert deltas and "".join(d["delta"] for d in deltas) == m["content"]
