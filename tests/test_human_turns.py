"""Durable human turns end to end: a real worker, real Redis, each timeout policy."""

from __future__ import annotations

import time

from core.storage.store import Store
from tests.e2e import Api, people, two_agents_and_john
from tests.helpers import wait_for


def test_person_answers_in_turn_and_out_of_turn_is_409(live_server: str) -> None:
    api = Api(live_server)
    s = api.create(two_agents_and_john(human_turn_timeout_s=60, agent_params=[
        {"latency_ms": 600}, {}]))
    did, john = s["id"], people(s)["John"]
    early = api.post(did, "messages", {"participant_id": john, "content": "me first"})
    assert early.status_code == 409  # round-robin: not John's turn yet
    waiting = api.wait_status(did, "waiting_for_human")
    assert waiting["waiting_for"] == john and waiting["wait_deadline"]
    assert waiting["human_turn_policy"] == "skip" and waiting["message_count"] == 2
    started = time.monotonic()
    resp = api.post(did, "messages", {"participant_id": john, "content": "Use passkeys."})
    assert resp.status_code == 201 and resp.json()["turn"] == 2 and resp.json()["round"] == 1
    again = api.wait_status(did, "waiting_for_human")  # round 2 comes back to John
    assert again["message_count"] == 5 and time.monotonic() - started < 10
    api.post(did, "messages", {"participant_id": john, "content": "Done."})
    done = api.finished(did)
    assert done["status"] == "completed" and done["stop_reason"] == "max_rounds"
    names = [m["participant_name"] for m in api.messages(did)]
    assert names == ["Security Expert", "Backend Developer", "John"] * 2


def test_timeout_skip(live_server: str, store: Store) -> None:
    api = Api(live_server)
    s = api.create(two_agents_and_john(rounds=2, human_turn_timeout_s=0.6))
    done = api.finished(s["id"], timeout=30)
    assert done["status"] == "completed" and done["stop_reason"] == "max_rounds"
    msgs = api.messages(s["id"])
    assert [m["participant_name"] for m in msgs] == ["Security Expert", "Backend Developer"] * 2
    timeouts = [e.data for e in store.events_after(s["id"], "0")
                if e.type == "status" and e.data.get("reason") == "human_turn_timeout"]
    assert len(timeouts) == 2 and all(t["skipped"] and t["policy"] == "skip" for t in timeouts)
    waits = [e for e in store.events_after(s["id"], "0") if e.type == "waiting_for_human"]
    assert len(waits) == 2 and waits[0].data["deadline"]


def test_timeout_pause_then_resume_gives_a_fresh_deadline(live_server: str) -> None:
    api = Api(live_server)
    s = api.create(two_agents_and_john(rounds=1, human_turn_timeout_s=0.6,
                                       human_turn_policy="pause"))
    did, john = s["id"], people(s)["John"]
    paused = api.wait_status(did, "paused")
    assert paused["waiting_for"] is None and paused["message_count"] == 2
    late = api.post(did, "messages", {"participant_id": john, "content": "sorry, late"})
    assert late.status_code == 409
    assert api.post(did, "resume").status_code == 200
    waiting = api.wait_status(did, "waiting_for_human")
    assert waiting["waiting_for"] == john
    assert api.post(did, "messages", {"participant_id": john, "content": "Here now."}
                    ).status_code == 201
    done = api.finished(did)
    assert done["stop_reason"] == "max_rounds" and done["message_count"] == 3


def test_timeout_proxy_agent_answers_marked(live_server: str) -> None:
    api = Api(live_server)
    s = api.create(two_agents_and_john(rounds=1, human_turn_timeout_s=0.6,
                                       human_turn_policy="proxy",
                                       proxy_agent="Backend Developer"))
    ids = people(s)
    assert s["proxy_agent"] == ids["Backend Developer"]
    done = api.finished(s["id"])
    assert done["status"] == "completed"
    msgs = api.messages(s["id"])
    assert len(msgs) == 3
    stand_in = msgs[2]
    assert stand_in["participant_id"] == ids["Backend Developer"]
    assert stand_in["metadata"]["proxy_for"] == ids["John"]
    assert stand_in["metadata"]["proxy_for_name"] == "John" and stand_in["turn"] == 2


def test_bad_human_turn_settings_are_422(client) -> None:
    base = two_agents_and_john()
    for extra in ({"human_turn_policy": "proxy"},
                  {"human_turn_policy": "proxy", "proxy_agent": "Nobody"},
                  {"human_turn_policy": "ignore"},
                  {"human_turn_timeout_s": 0},
                  {"human_turn_timeout_s": "soon"},
                  {"stop_phrases": [""]},
                  {"deadline_s": -1},
                  {"token_budget": 0},
                  {"parallel_rounds": True, "protocol": "free_form"},
                  {"require_approval": True},
                  {"consensus": {"decision_rule": "majority"}}):
        resp = client.post("/v1/discussions", json={**base, **extra})
        assert resp.status_code == 422, (extra, resp.json)
        assert resp.json["error"] == "validation_error"


def test_waiting_survives_without_the_check_task(live_server: str, store: Store,
                                                 settings) -> None:
    """The reconciler path: with the scheduled check lost, expire_if_due applies the policy."""
    from core.agents import Backends
    from workers.engine import Runtime
    from workers.human_turns import expire_if_due

    api = Api(live_server)
    s = api.create(two_agents_and_john(rounds=1, human_turn_timeout_s=3600))
    did = s["id"]
    waiting = api.wait_status(did, "waiting_for_human")
    enqueued: list[str] = []
    rt = Runtime(settings=settings, store=store, backends=Backends(settings),
                 enqueue=enqueued.append)
    assert not expire_if_due(rt, did)  # not due yet
    later = time.time() + 3601
    assert expire_if_due(rt, did, now=later)
    assert not expire_if_due(rt, did, now=later)  # once only
    assert enqueued == [did]
    st = store.state(did)
    assert st.status == "active" and st.turn == waiting["message_count"] + 1
    wait_for(lambda: store.state(did).status == "active")
