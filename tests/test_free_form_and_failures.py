"""Free-form with a person, the idempotent retry end to end, and what each protocol does when an
agent fails."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import requests

from core.storage import keys
from core.storage.store import Store
from tests.e2e import Api, people, two_agents_and_john
from tests.helpers import wait_for


def test_free_form_person_addresses_an_agent(live_server: str, store: Store, r) -> None:
    api = Api(live_server)
    s = api.create(two_agents_and_john("free_form", rounds=3, agent_params=[
        {"latency_ms": 200}, {"latency_ms": 200}]))
    did, john = s["id"], people(s)["John"]
    api.wait_status(did, "active")
    resp = api.post(did, "messages", {"participant_id": john,
                                      "content": "@Backend Developer how do we store tokens?"})
    assert resp.status_code == 201 and resp.json()["turn"] is None  # a free post, not a turn
    # The agents answer (three turns per post, the default), then wait, active, holding no step.
    expected = resp.json()["seq"] + 3

    def idle() -> bool:
        s = api.get(did)
        return (s["status"] == "active" and s["message_count"] == expected
                and not r.exists(keys.lock(did)))

    wait_for(idle)
    time.sleep(1.0)
    assert idle()  # nothing more came
    msgs = api.messages(did)
    after = [m for m in msgs if m["seq"] > resp.json()["seq"]]
    # The turn in flight when John posted may land first; the next one is the addressee's.
    assert "Backend Developer" in [m["participant_name"] for m in after[:2]]
    assert len(after) == 3
    again = api.post(did, "messages", {"participant_id": john, "content": "Go on."})
    assert again.status_code == 201
    done = api.finished(did)
    msgs = api.messages(did)
    agent_msgs = [m for m in msgs if m["participant_type"] == "agent"]
    assert len(agent_msgs) == 6 and done["stop_reason"] == "max_rounds"
    # Never two agent turns at once: turns are contiguous and each started once.
    assert [m["turn"] for m in agent_msgs] == list(range(6))
    started = [e.data["turn"] for e in store.events_after(did, "0") if e.type == "turn_started"]
    assert sorted(set(started)) == list(range(6))


def test_idempotent_post_under_concurrent_retries(live_server: str) -> None:
    api = Api(live_server)
    s = api.create(two_agents_and_john("free_form", rounds=1, agent_params=[
        {"latency_ms": 100}, {"latency_ms": 100}]))
    did, john = s["id"], people(s)["John"]
    url = f"{live_server}/v1/discussions/{did}/messages"

    def post(_: int) -> requests.Response:
        return requests.post(url, json={"participant_id": john, "content": "exactly once"},
                             headers={"Idempotency-Key": "retry-42"}, timeout=5)

    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(post, range(8)))
    assert {r.status_code for r in responses} == {201}
    bodies = {r.json()["message_id"] for r in responses}
    assert len(bodies) == 1
    assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in responses) == 7
    api.finished(did)
    mine = [m for m in api.messages(did) if m["content"] == "exactly once"]
    assert len(mine) == 1


def test_round_robin_agent_failure_skips_then_fails(live_server: str, store: Store) -> None:
    api = Api(live_server)
    s = api.create(two_agents_and_john(rounds=2, human_turn_timeout_s=0.3, agent_params=[
        {"fail": True}, {}]))
    done = api.finished(s["id"])
    # A failed turn is skipped (turn_failed); the others go on; the run completes.
    assert done["status"] == "completed" and done["message_count"] == 2
    failed = [e.data for e in store.events_after(s["id"], "0") if e.type == "turn_failed"]
    assert len(failed) == 2 and failed[0]["participant_id"] == people(s)["Security Expert"]
    only_failing = api.create({"topic": "x", "max_rounds": 5,
                               "agents": [{"persona": "Broken", "params": {"fail": True}}]})
    broken = api.finished(only_failing["id"])
    assert broken["status"] == "failed" and broken["stop_reason"] == "agent_failures"
    assert "3 consecutive" in broken["error"]


def test_consensus_failed_agent_has_no_ballot(live_server: str) -> None:
    api = Api(live_server)
    s = api.create({"topic": "x", "protocol": "consensus", "max_rounds": 2,
                    "agents": [{"persona": "A", "params": {"fail": True}},
                               {"persona": "B"}, {"persona": "C"}]})
    done = api.finished(s["id"])
    out = done["outcome"]
    assert done["stop_reason"] == "consensus" and out["decision"] == "accepted"
    assert out["tally"][0]["missing"] == 1 and out["tally"][0]["yes"] == 2


def test_moderator_agent_failure_falls_back(live_server: str, store: Store) -> None:
    api = Api(live_server)
    s = api.create({"topic": "x", "protocol": "moderated", "max_rounds": 1,
                    "agents": [{"persona": "Chair", "moderator": True,
                                "params": {"fail": True}},
                               {"persona": "A"}, {"persona": "B"}]})
    done = api.finished(s["id"])
    assert done["status"] == "completed" and done["message_count"] == 2
    picks = [e.data for e in store.events_after(s["id"], "0") if e.type == "moderation"]
    assert picks and all(p["fallback"] and "simulated failure" in p["error"] for p in picks)


def test_a_broken_agent_does_not_sink_free_form_or_moderated(live_server: str) -> None:
    api = Api(live_server)
    ids = [api.create({"topic": "x", "protocol": protocol, "max_rounds": 2,
                       "agents": [{"persona": "Broken", "params": {"fail": True}},
                                  {"persona": "A"}, {"persona": "B"}]})["id"]
           for protocol in ("free_form", "moderated")]
    for did in ids:
        done = api.finished(did)
        assert done["status"] == "completed", done
        names = {m["participant_name"] for m in api.messages(did)}
        assert names == {"A", "B"} and done["message_count"] == 4
