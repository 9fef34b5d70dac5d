"""Schedules: slot arithmetic, missed-slot policies, the API, and exactly-once firing with two
beat processes over several slots (and a beat restart)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.operations import schedules
from core.operations.schedule_models import CreateSchedule, Schedule
from core.services.context import Services, build_services
from core.storage import keys
from tests.helpers import agent_body, wait_for

ROOT = Path(__file__).resolve().parent.parent


def _svc(settings, store, dispatched) -> Services:
    return build_services(settings, store, dispatched)


def _body(**kw) -> CreateSchedule:
    data = {"name": "nightly review", "template": agent_body(2, rounds=1), **kw}
    return CreateSchedule.model_validate(data)


def test_interval_and_cron_slots() -> None:
    s = Schedule(id="sched_x", name="x", interval_s=60, template=agent_body(1),
                           anchor=1000.0, created_at="", updated_at="")
    assert schedules.next_slot(s, 1000.0) == 1060.0
    assert schedules.next_slot(s, 1059.9) == 1060.0
    assert schedules.next_slot(s, 1060.0) == 1120.0
    assert schedules.latest_slot(s, 1059.0) is None
    assert schedules.latest_slot(s, 1130.0) == 1120.0
    c = s.model_copy(update={"interval_s": None, "cron": "30 9 * * *",
                             "timezone": "Europe/Berlin"})
    jan = datetime(2026, 1, 10, 12, 0, tzinfo=UTC).timestamp()
    # 09:30 in Berlin is 08:30 UTC in winter.
    assert schedules.next_slot(c, jan) == datetime(2026, 1, 11, 8, 30, tzinfo=UTC).timestamp()
    assert schedules.latest_slot(c, jan) == datetime(2026, 1, 10, 8, 30,
                                                     tzinfo=UTC).timestamp()


@pytest.mark.parametrize("missed, fired", [("skip", 0), ("catch_up", 1)])
def test_missed_slot_policy(settings, store, dispatched, missed, fired) -> None:
    svc = _svc(settings, store, dispatched)
    s = schedules.create(svc, _body(interval_s=600, missed=missed), now=1000.0)
    # Everything was down for three hours; the latest slot passed 5 minutes ago (> grace).
    now = 1000.0 + 18 * 600 + 300
    created = schedules.fire_due(svc, now=now)
    assert len(created) == fired
    assert len(dispatched) == fired
    # The next slot is in the future either way, and a second tick fires nothing.
    assert store.r.zscore(keys.SCHEDULES_NEXT, s.id) == 1000.0 + 19 * 600
    assert schedules.fire_due(svc, now=now + 1) == []
    # A slot that is late by less than the grace fires under both policies.
    assert len(schedules.fire_due(svc, now=1000.0 + 19 * 600 + 5)) == 1


def test_due_slot_fires_once_per_slot_even_when_ticked_twice(settings, store, dispatched) -> None:
    svc = _svc(settings, store, dispatched)
    s = schedules.create(svc, _body(interval_s=10), now=1000.0)
    first = schedules.fire_due(svc, now=1010.5)
    # A second tick for the same slot (another beat) whose next score was reset by a stale
    # writer still cannot fire it again: the slot's claim decides.
    store.r.zadd(keys.SCHEDULES_NEXT, {s.id: 1010.0})
    again = schedules.fire_due(svc, now=1011.0)
    assert len(first) == 1 and again == []
    runs = schedules.runs(svc, s.id)
    assert [r["discussion_id"] for r in runs] == first
    session = store.session(first[0])
    assert session.metadata["schedule_id"] == s.id


def test_paused_schedule_does_not_fire(settings, store, dispatched) -> None:
    svc = _svc(settings, store, dispatched)
    s = schedules.create(svc, _body(interval_s=10), now=1000.0)
    schedules.set_paused(svc, s.id, True)
    assert schedules.fire_due(svc, now=1015.0) == []
    resumed = schedules.set_paused(svc, s.id, False, now=1015.0)
    assert resumed.next_run_at is not None
    assert store.r.zscore(keys.SCHEDULES_NEXT, s.id) == 1020.0


def test_schedule_api_crud(client, r) -> None:
    body = {"name": "weekly retro", "cron": "0 16 * * 5", "timezone": "Europe/Berlin",
            "template": agent_body(2, rounds=1)}
    resp = client.post("/v1/schedules", json=body)
    assert resp.status_code == 201, resp.json
    sid = resp.json["id"]
    assert resp.headers["Location"] == f"/v1/schedules/{sid}"
    assert resp.json["next_run_at"].endswith("Z")
    assert client.get("/v1/schedules").json["count"] == 1
    patched = client.patch(f"/v1/schedules/{sid}", json={"interval_s": 3600, "name": "hourly"})
    assert patched.status_code == 200
    assert patched.json["cron"] is None and patched.json["interval_s"] == 3600
    paused = client.post(f"/v1/schedules/{sid}/pause")
    assert paused.json["paused"] is True and paused.json["next_run_at"] is None
    resumed = client.post(f"/v1/schedules/{sid}/resume")
    assert resumed.json["paused"] is False and resumed.json["next_run_at"]
    assert client.get(f"/v1/schedules/{sid}/runs").json["runs"] == []
    assert client.delete(f"/v1/schedules/{sid}").json == {"id": sid, "deleted": True}
    assert client.get(f"/v1/schedules/{sid}").status_code == 404


@pytest.mark.parametrize("patch", [
    {"cron": "not a cron"},
    {"cron": "* * * * *", "interval_s": 60},
    {},  # neither
    {"interval_s": 0},
    {"interval_s": 60, "timezone": "Mars/Olympus"},
    {"interval_s": 60, "missed": "sometimes"},
    {"interval_s": 60, "unknown": 1},
])
def test_schedule_bad_input(client, r, patch) -> None:
    body = {"name": "x", "template": agent_body(1), **patch}
    resp = client.post("/v1/schedules", json=body)
    assert resp.status_code == 422
    assert resp.json["error"] == "validation_error"


def test_schedule_bad_template_and_unknowns(client, r) -> None:
    tpl = agent_body(1)
    tpl["agents"][0]["provider"] = "nope"
    resp = client.post("/v1/schedules", json={"name": "x", "interval_s": 60, "template": tpl})
    assert resp.status_code == 422
    assert client.patch("/v1/schedules/sched_nope", json={"name": "y"}).status_code == 404
    assert client.post("/v1/schedules/sched_nope/pause").status_code == 404
    assert client.delete("/v1/schedules/sched_nope").status_code == 404
    ok = client.post("/v1/schedules", json={"name": "x", "interval_s": 60,
                                            "template": agent_body(1)}).json["id"]
    bad = client.patch(f"/v1/schedules/{ok}", json={"cron": "* * *"})
    assert bad.status_code == 422


# ---------------------------------------------------------------- two beat processes


def _beat(redis_url: str, workdir: Path, name: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "REDIS_URL": redis_url, "SCHEDULE_TICK_S": "0.25",
           "LOG_LEVEL": "WARNING"}
    celery = Path(sys.executable).parent / "celery"
    return subprocess.Popen(
        [str(celery), "-A", "workers.main", "beat", "-s", str(workdir / f"{name}.db"),
         "--loglevel", "WARNING"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def _created_by(r, schedule_id: str) -> dict[str, list[str]]:
    by_slot: dict[str, list[str]] = {}
    for did in r.zrange(keys.ALL, 0, -1):
        meta = json.loads(r.get(keys.session(did)) or "{}").get("metadata", {})
        if meta.get("schedule_id") == schedule_id:
            by_slot.setdefault(meta["schedule_slot"], []).append(did)
    return by_slot


def test_two_beats_fire_each_slot_exactly_once(live_server, redis_url, r, tmp_path) -> None:
    import requests

    body = {"name": "every second", "interval_s": 1, "template": agent_body(1, rounds=1)}
    sid = requests.post(live_server + "/v1/schedules", json=body, timeout=5).json()["id"]
    beats = [_beat(redis_url, tmp_path, "a"), _beat(redis_url, tmp_path, "b")]
    try:
        wait_for(lambda: len(_created_by(r, sid)) >= 3, timeout=30, interval=0.2)
        # Restart one beat: the slots it fires after the restart are still claimed once.
        beats[0].terminate()
        beats[0].wait(timeout=10)
        beats[0] = _beat(redis_url, tmp_path, "a")
        count = len(_created_by(r, sid))
        wait_for(lambda: len(_created_by(r, sid)) >= count + 3, timeout=30, interval=0.2)
    finally:
        for b in beats:
            b.terminate()
        for b in beats:
            b.wait(timeout=10)
    time.sleep(0.5)  # ticks already queued finish
    by_slot = _created_by(r, sid)
    assert len(by_slot) >= 6
    assert all(len(ids) == 1 for ids in by_slot.values()), by_slot
    runs = requests.get(f"{live_server}/v1/schedules/{sid}/runs", timeout=5).json()["runs"]
    assert sorted(x["discussion_id"] for x in runs) == sorted(i for v in by_slot.values()
                                                              for i in v)
    # Slots are one second apart, so none was fired twice under two names.
    epochs = sorted(x["slot_epoch"] for x in runs)
    assert all(b - a >= 0.999 for a, b in zip(epochs, epochs[1:], strict=False))
