"""Prometheus /metrics: counted right across two gunicorn workers; workers export theirs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from core.ground import metrics
from scripts import embedded_redis
from tests.helpers import agent_body, wait_for

ROOT = Path(__file__).resolve().parent.parent


def _sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in Prometheus text, matched by name and a subset of labels."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


@pytest.fixture
def gunicorn_two_workers(redis_url: str, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    port = embedded_redis.free_port()
    mdir = tmp_path / "metrics"
    env = {**os.environ, "REDIS_URL": redis_url, "PROMETHEUS_MULTIPROC_DIR": str(mdir),
           # The loopback demo mode, without rate limits: this test counts requests.
           "AUTH_ENABLED": "false", "SERVICE_HOST": "127.0.0.1", "RATE_LIMIT_ENABLED": "false",
           "LOG_LEVEL": "WARNING"}
    bindir = Path(sys.executable).parent
    proc = subprocess.Popen(
        [str(bindir / "gunicorn"), "-c", "python:api.gunicorn_conf", "-k", "gevent", "-w", "2",
         "-b", f"127.0.0.1:{port}", "api:create_app()"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _answers(base), timeout=30, interval=0.2)
        yield base, mdir
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _pids(mdir: Path) -> set[str]:
    return {re.search(r"_(\d+)\.db$", f.name).group(1) for f in mdir.glob("counter_*.db")}


def _answers(base: str) -> bool:
    try:
        return requests.get(base + "/health/live", timeout=1).status_code == 200
    except requests.RequestException:
        return False


def test_http_metrics_are_summed_across_two_gunicorn_workers(gunicorn_two_workers, r) -> None:
    base, mdir = gunicorn_two_workers
    before = _sample(requests.get(base + "/metrics", timeout=5).text,
                     "orchestrator_http_requests_total", route="/health/live", status="200") or 0
    # New connections, several at once, until both workers have served some (gevent workers
    # race on accept, so one may win many in a row).
    n = 0

    def hit(_: int) -> int:
        return requests.get(base + "/health/live", timeout=5,
                            headers={"Connection": "close"}).status_code

    with ThreadPoolExecutor(8) as pool:
        for _ in range(100):
            codes = list(pool.map(hit, range(16)))
            assert codes == [200] * 16
            n += 16
            if len(_pids(mdir)) >= 2 and n >= 64:
                break
    for _ in range(3):
        assert requests.get(base + "/v1/discussions/disc_nope", timeout=5,
                            headers={"Connection": "close"}).status_code == 404
    assert len(_pids(mdir)) >= 2, f"both workers should have served requests: {_pids(mdir)}"
    # Whichever worker answers the scrape, the totals cover every worker's requests.
    for _ in range(6):
        text = requests.get(base + "/metrics", timeout=5, headers={"Connection": "close"}).text
        got = _sample(text, "orchestrator_http_requests_total", route="/health/live",
                      status="200")
        assert got == before + n
        assert _sample(text, "orchestrator_http_requests_total",
                       route="/v1/discussions/<discussion_id>", status="404") == 3
        assert _sample(text, "orchestrator_http_request_duration_seconds_count",
                       route="/health/live") == before + n
        assert _sample(text, "orchestrator_queue_depth", queue="steps") is not None
        assert _sample(text, "orchestrator_workers_live") is not None


def test_worker_metrics_cover_steps_agent_calls_and_discussions(live_server, r) -> None:
    body = agent_body(2, rounds=2)
    body["agents"][0]["model"] = "sim-1"
    did = requests.post(live_server + "/v1/discussions", json=body, timeout=5).json()["id"]
    wait_for(lambda: requests.get(f"{live_server}/v1/discussions/{did}",
                                  timeout=5).json()["status"] == "completed")
    # The in-process worker records into this process's registry (no multiprocess dir here).
    text = metrics.render().decode()
    assert (_sample(text, "orchestrator_steps_total", protocol="round_robin", outcome="idle")
            or 0) >= 1
    assert (_sample(text, "orchestrator_agent_calls_total", provider="simulated", model="sim-1",
                    result="ok") or 0) >= 2
    assert _sample(text, "orchestrator_agent_call_duration_seconds_count",
                   provider="simulated", model="sim-1") is not None
    scraped = requests.get(live_server + "/metrics", timeout=5).text
    assert (_sample(scraped, "orchestrator_discussions", status="completed") or 0) >= 1
    assert "orchestrator_http_requests_total" in scraped


def test_metrics_scrape_time_gauges_need_no_worker(client, r) -> None:
    resp = client.get("/metrics")
    assert resp.status_code == 200
    assert resp.mimetype == "text/plain"
    assert _sample(resp.text, "orchestrator_queue_depth", queue="steps") == 0


def test_step_result_names_discussion_and_turn_for_flower(client, celery_app, r) -> None:
    did = client.post("/v1/discussions", json=agent_body(2, rounds=1)).json["id"]
    result = celery_app.tasks["discussion.step"].apply(args=[did]).get()
    outcome, shown_did, turn = result.split(" ")
    assert outcome in ("idle", "more") and shown_did == did
    assert turn.startswith("turn=") and int(turn[5:]) >= 0
    text = metrics.render().decode()
    assert _sample(text, "orchestrator_steps_total", protocol="round_robin",
                   outcome=outcome) is not None
