"""Discussions that the workers start (a batch's pumps, a schedule's tick) get the same
service context as the API's: their Execution Platform agents are registered and speak.
(A schedule or batch once built its own context without agent registration: every turn
failed, and the discussion still ended `completed` with no messages.)"""

from __future__ import annotations

import time

import requests

from core.ground import task_names
from tests.e2e import Api
from tests.helpers import wait_for

EP = {"provider": "execution_platform", "model": "ref-model"}
PANEL = ["Security Expert", "Backend Developer"]


def template(topic: str = "Design the auth API") -> dict:
    return {"topic": topic, "max_rounds": 1,
            "agents": [{"persona": name, **EP} for name in PANEL]}


def assert_every_agent_spoke(api: Api, did: str) -> None:
    done = api.finished(did, timeout=60)
    assert done["status"] == "completed" and done["stop_reason"] == "max_rounds", done
    assert all(p["instance_id"] for p in done["participants"] if p["participant_type"] == "agent")
    assert [m["participant_name"] for m in api.messages(did)] == PANEL


def test_batch_items_started_by_the_workers_register_their_agents(live_server, platform) -> None:
    api = Api(live_server)
    # Concurrency 1: the first item starts in the API request, the other three in worker pumps.
    resp = requests.post(f"{live_server}/v1/batches", timeout=10, json={
        "template": template(), "topics": [f"Topic {i}" for i in range(4)], "concurrency": 1})
    assert resp.status_code == 201, resp.text
    bid = resp.json()["id"]
    final = wait_for(
        lambda: (b := requests.get(f"{live_server}/v1/batches/{bid}", timeout=5).json())
        and b["status"] == "completed" and b, timeout=120, interval=0.3)
    assert final["counts"] == {"completed": 4}
    for item in final["items"]:
        assert_every_agent_spoke(api, item["discussion_id"])


def test_a_schedule_fired_by_a_worker_registers_its_agents(live_server, celery_app,
                                                           platform) -> None:
    api = Api(live_server)
    resp = requests.post(f"{live_server}/v1/schedules", timeout=10, json={
        "name": "nightly design review", "interval_s": 1, "template": template()})
    assert resp.status_code == 201, resp.text
    sid = resp.json()["id"]

    def fired() -> str | None:
        # Beat's tick, run by the real worker (no beat process in the tests).
        celery_app.send_task(task_names.OPS_TICK)
        time.sleep(0.3)
        runs = requests.get(f"{live_server}/v1/schedules/{sid}/runs", timeout=5).json()["runs"]
        return next((r["discussion_id"] for r in runs if r.get("discussion_id")), None)

    did = wait_for(fired, timeout=30, interval=0.5)
    requests.post(f"{live_server}/v1/schedules/{sid}/pause", timeout=5)
    assert_every_agent_spoke(api, did)


def test_a_discussion_whose_every_turn_failed_does_not_end_completed(live_server) -> None:
    api = Api(live_server)
    # Two failing agents and one round: the rounds run out before three consecutive failures.
    created = api.create({"topic": "Caching", "max_rounds": 1, "agents": [
        {"persona": "Broken A", "provider": "simulated", "params": {"fail": True}},
        {"persona": "Broken B", "provider": "simulated", "params": {"fail": True}}]})
    done = api.finished(created["id"])
    assert done["status"] == "failed" and done["stop_reason"] == "agent_failures", done
    assert done["message_count"] == 0 and "every agent turn failed" in done["error"]
