"""Consensus end to end: ballots from agents and a person, decisions the settings predict."""

from __future__ import annotations

from core.storage.store import Store
from tests.e2e import Api, people, two_agents_and_john
from tests.helpers import wait_for


def test_two_agents_and_a_person_reach_the_predicted_decision(live_server: str) -> None:
    api = Api(live_server)
    body = two_agents_and_john(
        "consensus", rounds=4, human_turn_timeout_s=60,
        agent_params=[{"agree_from_round": 2, "latency_ms": 600}, {"vote": "yes"}],
        consensus={"proposal": "Adopt passkeys", "decision_rule": "unanimous", "quorum": 1.0})
    s = api.create(body)
    did, john = s["id"], people(s)["John"]
    # Voting out of turn, or in a protocol without ballots, is refused.
    assert api.post(did, "votes", {"participant_id": john, "vote": "yes"}).status_code == 409
    api.wait_status(did, "waiting_for_human")
    resp = api.post(did, "votes", {"participant_id": john, "vote": "yes",
                                   "reason": "Passkeys remove passwords."},
                    headers={"Idempotency-Key": "ballot-1"})
    assert resp.status_code == 201 and resp.json()["message_type"] == "vote"
    again = api.post(did, "votes", {"participant_id": john, "vote": "yes",
                                    "reason": "Passkeys remove passwords."},
                     headers={"Idempotency-Key": "ballot-1"})
    assert again.json() == resp.json() and again.headers["Idempotent-Replayed"] == "true"
    wait_for(lambda: api.get(did)["status"] == "waiting_for_human"
             and api.get(did)["current_round"] == 2)
    assert api.post(did, "votes", {"participant_id": john, "vote": "yes"}).status_code == 201
    done = api.finished(did)
    assert done["status"] == "completed" and done["stop_reason"] == "consensus"
    out = done["outcome"]
    assert out["decision"] == "accepted" and out["rounds"] == 2
    assert out["proposal"] == "Adopt passkeys" and out["decision_rule"] == "unanimous"
    assert [(t["yes"], t["no"], t["abstain"]) for t in out["tally"]] == [(2, 1, 0), (3, 0, 0)]
    assert out["dissenting"] == []
    msgs = api.messages(did)
    assert [m["metadata"].get("vote") for m in msgs] == ["no", "yes", "yes", "yes", "yes", "yes"]
    assert "VOTE: no" in msgs[0]["content"]


def test_unparsable_votes_abstain_and_no_consensus(live_server: str, store: Store) -> None:
    api = Api(live_server)
    s = api.create({"topic": "Rewrite in Rust", "protocol": "consensus", "max_rounds": 2,
                    "agents": [{"persona": "A", "params": {"vote": "none"}},
                               {"persona": "B", "params": {"vote": "yes"}},
                               {"persona": "C", "params": {"vote": "no"}}],
                    "consensus": {"decision_rule": "supermajority"}})
    done = api.finished(s["id"])
    assert done["stop_reason"] == "max_rounds"
    out = done["outcome"]
    assert out["decision"] == "no_consensus" and out["rounds"] == 2
    assert [(t["yes"], t["no"], t["abstain"]) for t in out["tally"]] == [(1, 1, 1)] * 2
    assert out["dissenting"] == [people(s)["C"]]
    first = api.messages(s["id"])[0]
    assert first["metadata"]["vote"] == "abstain" and first["metadata"]["vote_unparsed"]


def test_person_skipped_counts_as_missing(live_server: str) -> None:
    api = Api(live_server)
    s = api.create(two_agents_and_john(
        "consensus", rounds=3, human_turn_timeout_s=0.5,
        agent_params=[{"vote": "yes"}, {"vote": "yes"}],
        consensus={"decision_rule": "majority", "quorum": 0.6}))
    done = api.finished(s["id"])
    out = done["outcome"]
    assert done["stop_reason"] == "consensus" and out["decision"] == "accepted"
    assert out["tally"][0]["missing"] == 1 and out["rounds"] == 1


def test_parallel_rounds_answer_from_the_same_context(live_server: str, store: Store) -> None:
    api = Api(live_server)
    s = api.create({"topic": "Pick a database", "protocol": "round_robin", "max_rounds": 2,
                    "parallel_rounds": True,
                    "agents": [{"persona": p, "params": {"latency_ms": 1000}}
                               for p in ("Security Expert", "Backend Developer", "SRE")]})
    done = api.finished(s["id"])
    assert done["message_count"] == 6
    msgs = api.messages(s["id"])
    assert [m["participant_name"] for m in msgs] == ["Security Expert", "Backend Developer",
                                                     "SRE"] * 2
    assert [m["turn"] for m in msgs] == list(range(6))
    # Round 1: nobody saw another's answer (all open); round 2: all saw the same last message.
    ids = {m["participant_name"]: m["participant_id"] for m in msgs[:3]}
    assert all("replying_to" not in m["metadata"] for m in msgs[:3])
    # Each answers the newest message by someone else: SRE's, and SRE answers the one before.
    assert [m["metadata"]["replying_to"] for m in msgs[3:]] == [
        ids["SRE"], ids["SRE"], ids["Backend Developer"]]
    assert "SRE" in msgs[3]["content"] and "Backend Developer" in msgs[5]["content"]
    # Three 1 s agents at once: a round takes about one agent's time, not three.
    from datetime import datetime

    def ts(m: dict) -> float:
        return datetime.fromisoformat(m["timestamp"].replace("Z", "+00:00")).timestamp()

    assert ts(msgs[2]) - ts(msgs[0]) < 0.5  # joined together (one after another: 2 s)
    started = [e.data for e in store.events_after(s["id"], "0") if e.type == "turn_started"]
    assert sorted(d["turn"] for d in started) == list(range(6))  # each agent called once
    assert all(d["parallel"] for d in started)


def test_parallel_consensus_with_a_person(live_server: str) -> None:
    api = Api(live_server)
    s = api.create(two_agents_and_john(
        "consensus", rounds=2, parallel_rounds=True, human_turn_timeout_s=60,
        agent_params=[{"vote": "no"}, {"vote": "no"}]))
    did, john = s["id"], people(s)["John"]
    waiting = api.wait_status(did, "waiting_for_human")
    assert waiting["message_count"] == 2
    assert api.post(did, "votes", {"participant_id": john, "vote": "yes"}).status_code == 201
    done = api.finished(did)
    assert done["outcome"]["decision"] == "rejected"
    assert done["outcome"]["dissenting"] == [john]


def test_vote_bad_input(client) -> None:
    s = client.post("/v1/discussions", json=two_agents_and_john("consensus")).json
    did, john = s["id"], people(s)["John"]
    url = f"/v1/discussions/{did}/votes"
    assert client.post(url, json={"participant_id": john, "vote": "maybe"}).status_code == 422
    assert client.post(url, json={"participant_id": john}).status_code == 422
    assert client.post(url, json={"participant_id": "human_x", "vote": "yes"}
                       ).status_code == 404
    rr = client.post("/v1/discussions", json=two_agents_and_john()).json
    resp = client.post(f"/v1/discussions/{rr['id']}/votes",
                       json={"participant_id": people(rr)["John"], "vote": "yes"})
    assert resp.status_code == 409
    assert client.post("/v1/discussions/disc_nope/votes",
                       json={"participant_id": john, "vote": "yes"}).status_code == 404
