"""End to end: a real Celery worker runs discussions created over HTTP, against a real Redis."""

from __future__ import annotations

import time

import requests

from tests.helpers import agent_body, wait_for


def _run(live_server: str, body: dict) -> dict:
    resp = requests.post(f"{live_server}/v1/discussions", json=body, timeout=5)
    assert resp.status_code == 201, resp.text
    did = resp.json()["id"]

    def finished() -> dict | None:
        s = requests.get(f"{live_server}/v1/discussions/{did}", timeout=5).json()
        return s if s["status"] in ("completed", "failed", "cancelled") else None

    return wait_for(finished, timeout=30)


def test_three_agents_three_rounds_complete_in_order(live_server: str) -> None:
    session = _run(live_server, agent_body(3, 3))
    assert session["status"] == "completed"
    assert session["stop_reason"] == "max_rounds"
    assert session["current_round"] == 3
    page = requests.get(f"{live_server}/v1/discussions/{session['id']}/messages?limit=100",
                        timeout=5).json()
    messages = page["messages"]
    assert page["total"] == 9
    assert [m["seq"] for m in messages] == list(range(1, 10))
    assert [m["turn"] for m in messages] == list(range(9))
    agents = [p["participant_id"] for p in session["participants"]]
    assert [m["participant_id"] for m in messages] == agents * 3
    assert [m["round"] for m in messages] == [1, 1, 1, 2, 2, 2, 3, 3, 3]
    # Simulated replies refer to the topic and to the previous speaker by name.
    assert "api for user authentication" in messages[0]["content"].lower()
    assert messages[1]["participant_name"] in messages[2]["content"]
    assert all(m["metadata"]["completion_tokens"] > 0 for m in messages)


def test_free_form_seed_example_runs(live_server: str) -> None:
    # The seed's example: the single agent opens, then never answers itself, so the
    # discussion stays open (active, idle) for the people who join it.
    body = {"topic": "Test discussion", "agents": [{"persona": "Test Agent"}],
            "protocol": "free_form", "max_rounds": 4}
    resp = requests.post(f"{live_server}/v1/discussions", json=body, timeout=5)
    did = resp.json()["id"]
    session = wait_for(lambda: (s := requests.get(f"{live_server}/v1/discussions/{did}",
                                                  timeout=5).json())["message_count"] == 1
                       and s, timeout=30)
    time.sleep(1.0)
    again = requests.get(f"{live_server}/v1/discussions/{did}", timeout=5).json()
    assert session["status"] == again["status"] == "active" and again["message_count"] == 1


def test_max_messages_stops(live_server: str) -> None:
    session = _run(live_server, {**agent_body(2, 10), "max_messages": 5})
    assert session["stop_reason"] == "max_messages" and session["message_count"] == 5


def test_long_discussion_spans_several_slices(live_server: str) -> None:
    # 3 agents x 40 rounds with 5 ms agents: more than one 0.5 s slice, so steps chain.
    session = _run(live_server, agent_body(3, 40, latency_ms=5))
    assert session["message_count"] == 120
    page = requests.get(f"{live_server}/v1/discussions/{session['id']}/messages?limit=500",
                        timeout=5).json()
    assert [m["seq"] for m in page["messages"]] == list(range(1, 121))
    assert len({m["message_id"] for m in page["messages"]}) == 120
