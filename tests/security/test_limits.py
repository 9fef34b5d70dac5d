"""Rate limits (per address, per user, on creation; shared across processes) and quotas."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
import requests

from core.agents import Backends
from core.services.auth import create_api_key
from core.storage import keys, quotas
from core.storage.store import Store
from scripts import embedded_redis
from tests.helpers import agent_body, wait_for
from workers.engine import Runtime, run_step

ROOT = Path(__file__).resolve().parents[2]


def _limited(sec_settings, **update):
    return sec_settings.model_copy(update={"rate_limit_enabled": True, **update})


def test_per_address_limit_counts_failed_logins_too(make_app, sec_settings) -> None:
    client = make_app(_limited(sec_settings, rate_limit_per_address="3/minute")).test_client()
    answers = [client.get("/v1/discussions").status_code for _ in range(5)]
    assert answers == [401, 401, 401, 429, 429]
    limited = client.get("/v1/discussions")
    assert limited.json["error"] == "rate_limited"
    assert 1 <= int(limited.headers["Retry-After"]) <= 61
    assert client.get("/health").status_code == 200  # probes are never limited


def test_per_address_limit_sees_clients_behind_a_trusted_proxy(make_app, sec_settings) -> None:
    client = make_app(_limited(sec_settings, rate_limit_per_address="2/minute",
                               trusted_proxy_hops=1)).test_client()
    one = [client.get("/v1/discussions", headers={"X-Forwarded-For": "198.51.100.1"}).status_code
           for _ in range(3)]
    other = client.get("/v1/discussions", headers={"X-Forwarded-For": "198.51.100.2"})
    assert one == [401, 401, 429] and other.status_code == 401


def test_per_user_limit_is_per_user(make_app, sec_settings, users) -> None:
    client = make_app(_limited(sec_settings, rate_limit_per_user="3/minute")).test_client()
    alice = [client.get("/v1/discussions", headers=users.headers("alice")).status_code
             for _ in range(4)]
    assert alice == [200, 200, 200, 429]
    assert client.get("/v1/discussions", headers=users.headers("bob")).status_code == 200


def test_create_has_its_own_tighter_limit(make_app, sec_settings, users) -> None:
    client = make_app(_limited(sec_settings, rate_limit_create="2/minute")).test_client()
    h = users.headers("alice")
    made = [client.post("/v1/discussions", json=agent_body(1, 1), headers=h).status_code
            for _ in range(3)]
    assert made == [201, 201, 429]
    assert client.get("/v1/discussions", headers=h).status_code == 200


def _gunicorn(port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "python:api.gunicorn_conf", "-w", "1",
         "-b", f"127.0.0.1:{port}", "api:create_app()"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)


def test_limits_hold_across_two_api_processes(sec_settings, r: redis.Redis) -> None:
    key = create_api_key(r, sec_settings, "alice")
    env = {**os.environ, "REDIS_URL": sec_settings.redis_url, "REDIS_DB": "0",
           "AUTH_ENABLED": "true", "SERVICE_HOST": "127.0.0.1",
           "RATE_LIMIT_STRATEGY": "moving-window", "RATE_LIMIT_PER_USER": "6/minute",
           "RATE_LIMIT_PER_ADDRESS": "1000/minute", "LOG_LEVEL": "WARNING"}
    ports = [embedded_redis.free_port(), embedded_redis.free_port()]
    procs = [_gunicorn(p, env) for p in ports]
    try:
        bases = [f"http://127.0.0.1:{p}" for p in ports]
        for base in bases:
            wait_for(lambda b=base: _healthy(b), timeout=60)
        h = {"Authorization": f"Bearer {key}"}
        answers = [requests.get(f"{bases[i % 2]}/v1/discussions", headers=h, timeout=5)
                   for i in range(10)]
        codes = [a.status_code for a in answers]
        print("two processes, 6/minute per user, 10 requests alternating:", codes)
        assert codes.count(200) == 6 and codes.count(429) == 4
        assert codes[:6] == [200] * 6  # both processes counted into one window
        assert all(int(a.headers["Retry-After"]) >= 1 for a in answers if a.status_code == 429)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)


def _healthy(base: str) -> bool:
    try:
        return requests.get(f"{base}/health", timeout=2).status_code == 200
    except requests.RequestException:
        return False


# ---------------------------------------------------------------- quotas


def test_unfinished_discussions_per_user(make_app, sec_settings, users, r) -> None:
    client = make_app(sec_settings.model_copy(
        update={"max_active_discussions_per_user": 2})).test_client()
    h = users.headers("alice")
    first, second = (client.post("/v1/discussions", json=agent_body(1, 1), headers=h).json["id"]
                     for _ in range(2))
    refused = client.post("/v1/discussions", json=agent_body(1, 1), headers=h)
    assert refused.status_code == 429 and refused.json["error"] == "quota_exceeded"
    assert int(refused.headers["Retry-After"]) > 0
    assert client.post("/v1/discussions", json=agent_body(1, 1),
                       headers=users.headers("bob")).status_code == 201  # per user
    assert client.delete(f"/v1/discussions/{first}", headers=h).status_code == 200
    third = client.post("/v1/discussions", json=agent_body(1, 1), headers=h)
    assert third.status_code == 201
    r.srem(keys.ACTIVE, second)  # as when a discussion finishes
    assert client.post("/v1/discussions", json=agent_body(1, 1), headers=h).status_code == 201


@pytest.mark.parametrize("update,body,fragment", [
    ({"max_rounds_limit": 5}, {**agent_body(1, 1), "max_rounds": 6}, "max_rounds"),
    ({"max_participants": 2}, agent_body(3, 1), "participants"),
    ({"max_messages_limit": 10}, {**agent_body(1, 1), "max_messages": 11}, "max_messages"),
])
def test_size_quotas_on_create(make_app, sec_settings, users, update, body, fragment) -> None:
    client = make_app(sec_settings.model_copy(update=update)).test_client()
    resp = client.post("/v1/discussions", json=body, headers=users.headers("alice"))
    assert resp.status_code == 422 and fragment in resp.json["message"]


def test_message_length_quota(make_app, sec_settings, users) -> None:
    client = make_app(sec_settings.model_copy(update={"max_message_chars": 10})).test_client()
    body = {**agent_body(1, 1), "protocol": "free_form",
            "humans": [{"user_id": "alice", "name": "Alice"}]}
    session = client.post("/v1/discussions", json=body, headers=users.headers("alice")).json
    pid = next(p["participant_id"] for p in session["participants"] if p["user_id"])
    url = f"/v1/discussions/{session['id']}/messages"
    h = users.headers("alice")
    assert client.post(url, json={"participant_id": pid, "content": "x" * 11},
                       headers=h).status_code == 422
    assert client.post(url, json={"participant_id": pid, "content": "x" * 10},
                       headers=h).status_code == 201


def test_agent_spend_per_user(make_app, sec_settings, users, r, store: Store) -> None:
    settings = sec_settings.model_copy(update={"user_daily_tokens": 1000})
    client = make_app(settings).test_client()
    h = users.headers("alice")
    did = client.post("/v1/discussions", json=agent_body(2, 50), headers=h).json["id"]
    # The engine charges each fresh reply and stops the discussion once the budget is spent.
    rt = Runtime(settings=settings, store=store, backends=Backends(settings),
                 enqueue=lambda _did: None)
    for _ in range(50):
        run_step(rt, did)
        if store.state(did).status.terminal:
            break
    state = store.state(did)
    usd, tokens = quotas.spend_today(r, "alice")
    print(f"spend quota: stopped after {state.seq} messages at {tokens} tokens")
    assert state.status.value == "completed" and state.stop_reason == "spend_quota"
    assert tokens >= 1000 and state.seq < 100
    refused = client.post("/v1/discussions", json=agent_body(1, 1), headers=h)
    assert refused.status_code == 429 and refused.json["details"]["quota"] == "agent_spend"
    midnight = int(refused.headers["Retry-After"])
    assert 0 < midnight <= 24 * 3600
    assert client.post("/v1/discussions", json=agent_body(1, 1),
                       headers=users.headers("bob")).status_code == 201
    _ = time
