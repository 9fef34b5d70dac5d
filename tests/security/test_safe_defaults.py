"""Finding 11 (must do 10): safe defaults.

Every role binds loopback unless configured; Flower refuses a network address without basic auth
and asks for it when it has one; `/metrics` needs METRICS_TOKEN when authentication is on;
gunicorn's own 414 and 431 answers are the JSON error contract; a discussion that fails on a bug
shows clients an error code, while the log and the audit keep the detail.
"""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from pydantic import SecretStr

from core.ground.settings import Settings
from core.storage import audit
from scripts import embedded_redis
from tests.agent_helpers import create, run_to_end, runtime
from tests.helpers import agent_body, wait_for

ROOT = Path(__file__).resolve().parents[2]


def _procfile() -> dict[str, str]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip() and ": " in line)


def _expanded(role: str) -> list[str]:
    """A Procfile role's command as a shell would run it with nothing configured."""
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")}
    out = subprocess.run(["bash", "-c", 'printf "%s\\n" ' + _procfile()[role]], env=env,
                         capture_output=True, text=True, check=True).stdout
    return out.splitlines()


def _is_loopback(host: str) -> bool:
    return host in ("127.0.0.1", "localhost", "::1", "[::1]")


def test_every_role_binds_loopback_unless_configured() -> None:
    web = _expanded("web")
    bind = web[web.index("-b") + 1]
    assert _is_loopback(bind.rsplit(":", 1)[0]), bind
    assert _is_loopback(Settings(_env_file=None).service_host)  # type: ignore[call-arg]
    assert _is_loopback(Settings(_env_file=None).worker_metrics_host)  # type: ignore[call-arg]
    flower = _expanded("flower")
    assert any(a.startswith("--conf=") for a in flower), flower  # flowerconfig.py decides


def test_worker_metrics_server_binds_its_configured_host(monkeypatch) -> None:
    from workers import hooks as worker_ops

    seen: dict = {}
    monkeypatch.setattr("prometheus_client.start_http_server",
                        lambda port, addr="0.0.0.0", **kw: seen.update(port=port, addr=addr))

    class _App:
        conf = type("C", (), {"orchestrator_settings": None})()

    settings = Settings(_env_file=None, worker_metrics_port=9999)  # type: ignore[call-arg]
    monkeypatch.setattr(worker_ops, "settings_of", lambda app: settings)
    worker_ops._worker_ready(sender=type("S", (), {"app": _App()})())
    assert seen == {"port": 9999, "addr": "127.0.0.1"}


@pytest.fixture
def flower_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    port = embedded_redis.free_port()
    server = embedded_redis.start(port, tmp_path / "redis")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CELERY_", "FLOWER_", "PROMETHEUS_"))}
    env.update(REDIS_URL=f"redis://127.0.0.1:{port}/0", PYTHONPATH=str(ROOT),
               LOG_LEVEL="WARNING", FLOWER_PORT=str(embedded_redis.free_port()))
    yield env
    server.terminate()
    server.wait(timeout=10)


def _flower(env: dict[str, str], log: Path) -> subprocess.Popen:
    """The Procfile's flower line, expanded by a shell with `env`, run with this Python."""
    args = shlex.split(subprocess.run(["bash", "-c", 'printf "%s\\n" ' + _procfile()["flower"]],
                                      env=env, capture_output=True, text=True,
                                      check=True).stdout.replace("\n", " "))
    assert args[0] == "celery"
    return subprocess.Popen([sys.executable, "-m", *args], cwd=ROOT, env=env,
                            stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _status(url: str, **kw) -> int | None:
    try:
        return requests.get(url, timeout=2, **kw).status_code
    except requests.RequestException:
        return None


def test_flower_on_a_network_address_needs_basic_auth(flower_env, tmp_path: Path) -> None:
    for blank in (None, ""):  # unset, or left empty as in a copied .env.example
        env = {**flower_env, "FLOWER_HOST": "0.0.0.0"}
        if blank is not None:
            env["FLOWER_BASIC_AUTH"] = blank
        proc = _flower(env, tmp_path / "open.log")
        try:
            assert proc.wait(60) != 0, "Flower served a network address without authentication"
        finally:
            _stop(proc)
        assert "FLOWER_BASIC_AUTH" in (tmp_path / "open.log").read_text()

    env["FLOWER_BASIC_AUTH"] = "ops:correct-horse"
    proc = _flower(env, tmp_path / "auth.log")
    base = f"http://127.0.0.1:{env['FLOWER_PORT']}/"
    try:
        wait_for(lambda: _status(base) is not None, timeout=60, interval=0.3)
        assert _status(base) == 401
        assert _status(base, auth=("ops", "correct-horse")) == 200
    finally:
        _stop(proc)


def test_flower_binds_loopback_by_default(flower_env, tmp_path: Path) -> None:
    proc = _flower(flower_env, tmp_path / "flower.log")
    base = f"http://127.0.0.1:{flower_env['FLOWER_PORT']}/"
    try:
        wait_for(lambda: _status(base) is not None, timeout=60, interval=0.3)
        out = subprocess.run(["ss", "-ltnH", f"sport = :{flower_env['FLOWER_PORT']}"],
                             capture_output=True, text=True).stdout
        local = {line.split()[3].rsplit(":", 1)[0] for line in out.splitlines() if line.strip()}
        assert local and all(_is_loopback(h) for h in local), local
    finally:
        _stop(proc)


def test_metrics_needs_a_token_when_authentication_is_on(make_app, sec_settings, users) -> None:
    client = make_app(sec_settings).test_client()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=users.headers("alice")).status_code == 401
    token = "metrics-token-for-tests-0123456789"
    client = make_app(sec_settings.model_copy(
        update={"metrics_token": SecretStr(token)})).test_client()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401
    resp = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 200 and b"orchestrator_" in resp.data
    assert resp.headers["Content-Type"].startswith("text/plain")
    bad = client.get("/metrics")
    assert bad.is_json and bad.json["error"] == "unauthenticated"


@pytest.fixture
def gunicorn_server(redis_url: str, tmp_path: Path) -> Iterator[str]:
    port = embedded_redis.free_port()
    env = {**os.environ, "REDIS_URL": redis_url, "AUTH_ENABLED": "false",
           "SERVICE_HOST": "127.0.0.1", "RATE_LIMIT_ENABLED": "false", "LOG_LEVEL": "WARNING",
           "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")}
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "-c", "python:api.gunicorn_conf",
         "-k", "gevent", "-w", "1", "-b", f"127.0.0.1:{port}", "api:create_app()"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _status(base + "/health/live") == 200, timeout=30, interval=0.2)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _raw(base: str, request: bytes) -> tuple[int, dict[str, str], bytes]:
    host, port = base.rsplit("/", 1)[-1].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


@pytest.mark.parametrize("request_bytes,status", [
    (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n", 431),
    (b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(150))
     + b"\r\n", 431),
    (b"BROKEN\r\n\r\n", 400),
])
def test_gunicorn_own_errors_are_json(gunicorn_server, request_bytes, status) -> None:
    import json

    code, headers, body = _raw(gunicorn_server, request_bytes)
    assert code == status
    assert headers["content-type"].startswith("application/json"), headers
    payload = json.loads(body)
    assert set(payload) == {"error", "message", "details"}
    assert b"b" * 100 not in body and b"a" * 100 not in body  # the input is not echoed


def test_a_failed_discussion_shows_a_code_and_keeps_the_detail(settings, store, r,
                                                              monkeypatch) -> None:
    from workers import engine

    secret = "boom at /srv/app/secret_path.py with token sk-live-123"

    def broken(*_a, **_k):
        raise RuntimeError(secret)

    monkeypatch.setattr(engine, "_run_slice", broken)
    rt = runtime(settings, store)
    did = create(rt, agent_body(1, 1))
    run_to_end(rt, did)
    session = store.session(did)
    assert session.status.value == "failed" and session.stop_reason == "internal_error"
    assert session.error == "internal_error"
    events = r.xrange(f"discussion:{did}:events")
    assert not any(secret in str(fields) for _, fields in events)
    entries = audit.entries(r, did)
    assert any(secret in str(e["details"]) for e in entries), entries
