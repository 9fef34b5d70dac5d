"""Agents from anywhere, end to end: an A2A agent (the a2a-sdk's server), an AutoGen agent (its
model client on the reference platform's OpenAI-compatible server), a simulated agent and a
person complete a discussion through a real Celery worker; and a worker SIGKILLed in the middle
of the AutoGen agent's turn still leaves exactly one message for that turn."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import requests

from tests.a2a_agent import A2AAgent, start_a2a_agent
from tests.autogen_helpers import component
from tests.e2e import Api, people
from tests.faults.harness import Cluster
from tests.helpers import wait_for

TOPIC = "Design API for user authentication"


@pytest.fixture
def a2a_partner() -> Iterator[A2AAgent]:
    agent = start_a2a_agent("Partner Agent", streaming=True)
    agent.behaviour.mode = "stream"
    yield agent
    agent.stop()


def body(a2a_url: str, model_url: str, *, key: str = "e2e-autogen",
         humans: bool = True) -> dict:
    """The request body of the issue's shape (the exact body is in docs/agents.md)."""
    return {
        "topic": TOPIC,
        "protocol": "round_robin",
        "max_rounds": 2,
        "agents": [
            {"persona": "Partner Agent", "provider": "a2a",
             "params": {"url": a2a_url, "stream": True}},
            {"persona": "Security Expert", "provider": "autogen",
             "params": {"component": component(
                 model_url, default_headers={"Idempotency-Key": key})}},
            {"persona": "Product Manager", "provider": "simulated"},
        ],
        "humans": [{"user_id": "john", "name": "John", "permissions": ["read", "write"]}]
        if humans else [],
    }


def test_a2a_autogen_simulated_and_a_person_complete_a_discussion(live_server, platform,
                                                                  a2a_partner, store) -> None:
    api = Api(live_server)
    session = api.create(body(a2a_partner.url, platform[0] + "/v1"))
    did, ids = session["id"], people(session)
    for _ in range(2):
        waiting = api.wait_status(did, "waiting_for_human", "completed", timeout=60)
        assert waiting["waiting_for"] == ids["John"], waiting
        resp = api.post(did, "messages", {"participant_id": ids["John"],
                                          "content": "Passkeys first, then OAuth."})
        assert resp.status_code in (200, 201), resp.text
    done = api.finished(did, timeout=60)
    assert done["status"] == "completed" and done["stop_reason"] == "max_rounds", done
    messages = api.messages(did)
    assert [m["participant_name"] for m in messages] == [
        "Partner Agent", "Security Expert", "Product Manager", "John"] * 2
    assert [m["turn"] for m in messages] == list(range(8))
    providers = [m["metadata"].get("provider") for m in messages[:3]]
    assert providers == ["a2a", "autogen", "simulated"]
    # The A2A agent got one message per turn, in one context, and saw the person's words.
    received = a2a_partner.behaviour.received
    assert len(received) == 2 and len({r.context_id for r in received}) == 1
    assert "Passkeys first" in received[1].texts[1]
    assert "I read 4 transcript lines" in messages[4]["content"]
    usage = done["usage"]["participants"]
    assert usage[ids["Security Expert"]]["prompt_tokens"] > 0
    assert usage[ids["Partner Agent"]]["messages"] == 2
    deltas = [e for e in store.events_after(did, "0") if e.type == "message_delta"]
    assert {e.data["participant_id"] for e in deltas} == {ids["Partner Agent"]}


@pytest.fixture
def slow_models(platform) -> Iterator[str]:
    """The reference platform's model answers after 2.5 s (the harness's turn deadline is 3 s),
    so a kill right after the call arrives lands mid-call."""
    base = platform[0]
    assert requests.put(f"{base}/faults", json={"latency_ms": 2500}, timeout=5).ok
    yield base
    requests.put(f"{base}/faults", json={}, timeout=5)


def test_sigkill_during_the_autogen_turn_leaves_exactly_one_message(slow_models, tmp_path,
                                                                    a2a_partner) -> None:
    key = f"sigkill-{time.monotonic_ns()}"
    with Cluster() as cluster:
        cluster.start_redis()
        cluster.start_api()
        cluster.start_beat()  # the reconciler brings the killed worker's discussion back
        first = cluster.start_worker()
        resp = requests.post(f"{cluster.api_url}/v1/discussions", timeout=30, json=body(
            a2a_partner.url, slow_models + "/v1", key=key, humans=False))
        assert resp.status_code == 201, resp.text
        did = resp.json()["id"]
        autogen_pid = people(resp.json())["Security Expert"]

        def model_calls() -> int:
            return requests.get(f"{slow_models}/calls", params={"key": key},
                                timeout=5).json()["count"]

        wait_for(lambda: model_calls() >= 1, timeout=60)  # its first model call is in flight
        cluster.kill_worker(first)
        # The kill landed before the AutoGen turn (turn 1) committed: only turn 0 is there.
        assert cluster.r.llen(f"discussion:{did}:messages") <= 1
        cluster.start_worker()
        assert cluster.wait_terminal([did], timeout=90) < 90, cluster.log_tail("w2")
        raw = cluster.r.lrange(f"discussion:{did}:messages", 0, -1)
        messages = [json.loads(m) for m in raw]
        assert cluster.statuses([did])[did] == "completed"
        assert [m["turn"] for m in messages] == list(range(6))
        ours = [m for m in messages if m["participant_id"] == autogen_pid]
        assert len(ours) == 2 and ours[0]["turn"] == 1
        assert model_calls() == 3  # turn 1 was called twice (killed once), turn 4 once
        state = json.loads(cluster.r.hget(f"discussion:{did}:agent_state", autogen_pid))
        replies = [m for m in state["after"]["llm_context"]["messages"]
                   if m["type"] == "AssistantMessage"]
        assert len(replies) == 2  # the killed attempt left nothing in the agent's memory
