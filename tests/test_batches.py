"""Batches: 20 topics with a cap of 5 never run more than 5 at once and report every outcome."""

from __future__ import annotations

import threading
import time

import requests

from core.ground.models import Status
from core.storage import keys
from tests.helpers import agent_body, wait_for

TERMINAL = {s.value for s in Status if s.terminal}


def _running_now(r, ids: list[str]) -> int:
    pipe = r.pipeline(transaction=False)
    for did in ids:
        pipe.hget(keys.state(did), "status")
    return sum(1 for st in pipe.execute() if st is not None and st not in TERMINAL)


def test_batch_of_20_with_cap_5(live_server, r) -> None:
    template = agent_body(2, rounds=1, latency_ms=150)
    topics = [f"Topic {i}" for i in range(20)]
    resp = requests.post(live_server + "/v1/batches", timeout=10,
                         json={"name": "panel", "template": template, "topics": topics,
                               "concurrency": 5})
    assert resp.status_code == 201, resp.text
    batch = resp.json()
    bid = batch["id"]
    assert batch["running"] == 5 and batch["pending"] == 15

    peak = 0
    stop = threading.Event()

    def watch() -> None:
        nonlocal peak
        while not stop.is_set():
            ids = [d for d in r.zrange(keys.ALL, 0, -1)]
            peak = max(peak, _running_now(r, ids))
            time.sleep(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        final = wait_for(
            lambda: (b := requests.get(f"{live_server}/v1/batches/{bid}", timeout=5).json())
            and b["status"] == "completed" and b, timeout=120, interval=0.3)
    finally:
        stop.set()
        watcher.join(timeout=5)
    assert 1 <= peak <= 5, peak
    assert final["counts"] == {"completed": 20}
    assert final["totals"]["messages"] == 40
    assert [i["topic"] for i in final["items"]] == topics
    assert all(i["stop_reason"] == "max_rounds" for i in final["items"])
    # The intervals each discussion ran in never overlap more than 5 deep.
    spans = []
    for item in final["items"]:
        session = requests.get(f"{live_server}/v1/discussions/{item['discussion_id']}",
                               timeout=5).json()
        assert session["metadata"]["batch_id"] == bid
        spans.append((session["created_at"], session["updated_at"]))
    for start, _ in spans:
        overlapping = sum(1 for s, e in spans if s <= start < e)
        assert overlapping <= 5


def test_batch_variables_and_cancel(live_server, r) -> None:
    template = agent_body(1, rounds=50, latency_ms=100)
    template["topic"] = "Review {service} for {team}"
    variables = [{"service": f"svc{i}", "team": "core"} for i in range(6)]
    batch = requests.post(live_server + "/v1/batches", timeout=10,
                          json={"template": template, "variables": variables,
                                "concurrency": 2}).json()
    bid = batch["id"]
    assert batch["items"][0]["topic"] == "Review svc0 for core"
    cancelled = requests.post(f"{live_server}/v1/batches/{bid}/cancel", timeout=10).json()
    assert cancelled["status"] == "cancelled"
    assert cancelled["pending"] == 0
    assert cancelled["counts"].get("not_started") == 4
    assert cancelled["counts"].get("cancelled") == 2
    again = requests.post(f"{live_server}/v1/batches/{bid}/cancel", timeout=10)
    assert again.status_code == 409
    time.sleep(1.0)
    later = requests.get(f"{live_server}/v1/batches/{bid}", timeout=5).json()
    assert later["counts"].get("not_started") == 4  # nothing new started after cancel


def test_batch_bad_input(client, r) -> None:
    tpl = agent_body(1)
    cases = [
        {"template": tpl},  # neither topics nor variables
        {"template": tpl, "topics": ["a"], "variables": [{"x": "1"}]},
        {"template": tpl, "topics": []},
        {"template": tpl, "topics": ["a"], "concurrency": 0},
        {"template": tpl, "topics": [""]},
        {"template": {**tpl, "topic": "About {missing}"}, "variables": [{"x": "1"}]},
        {"template": {**tpl, "protocol": "nope"}, "topics": ["a"]},
    ]
    for body in cases:
        resp = client.post("/v1/batches", json=body)
        assert resp.status_code == 422, (body, resp.json)
    assert client.get("/v1/batches/batch_nope").status_code == 404
    assert client.post("/v1/batches/batch_nope/cancel").status_code == 404
    assert client.get("/v1/batches").json == {"batches": [], "count": 0}
