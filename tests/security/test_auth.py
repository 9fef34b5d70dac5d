"""Authentication: API keys, JWT (and the classic attacks on it), demo mode and its guard."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import jwt
import pytest
import redis
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr

from api.auth import check_startup
from core.ground.errors import StartupRefused
from core.ground.settings import Settings
from core.services.auth import list_api_keys, revoke_api_key
from core.storage import keys
from scripts import embedded_redis
from tests.helpers import agent_body
from tests.security.conftest import JWT_SECRET, make_jwt

ROOT = Path(__file__).resolve().parents[2]


def test_no_credentials_is_401_with_challenge(sec_client) -> None:
    resp = sec_client.get("/v1/discussions")
    assert resp.status_code == 401
    assert resp.json["error"] == "unauthenticated"
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    # Public routes stay public.
    assert sec_client.get("/health").status_code == 200
    assert sec_client.get("/openapi.json").status_code == 200


def test_api_key_in_either_header_and_hashed_at_rest(sec_client, users, r: redis.Redis) -> None:
    key = users.key("alice")
    assert key.startswith("dok_")
    for headers in ({"Authorization": f"Bearer {key}"}, {"X-API-Key": key}):
        assert sec_client.get("/v1/discussions", headers=headers).status_code == 200
    key_id, secret = key.split("_", 2)[1:]
    stored = r.hgetall(keys.api_key(key_id))
    assert stored["user_id"] == "alice" and secret not in json.dumps(stored)
    assert [k.key_id for k in list_api_keys(r, "alice")] == [key_id]


@pytest.mark.parametrize("bad", [
    "dok_0123456789abcdef01_wrongsecret",  # unknown id
    "dok_zz_secret",  # malformed id
    "Basic abc",
])
def test_bad_api_keys_are_401(sec_client, users, bad: str) -> None:
    key = users.key("alice")
    tampered = key[:-2] + ("AA" if not key.endswith("AA") else "BB")
    for token in (bad, tampered):
        resp = sec_client.get("/v1/discussions", headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 401, token
        assert token not in resp.get_data(as_text=True)  # never echoed back


def test_malformed_authorization_header_is_401(sec_client) -> None:
    for value in ("Basic dXNlcjpwYXNz", "Bearer", "Bearer "):
        assert sec_client.get("/v1/discussions",
                              headers={"Authorization": value}).status_code == 401


def test_revoked_key_stops_working(sec_client, users, r: redis.Redis) -> None:
    key = users.key("alice")
    assert sec_client.get("/v1/discussions", headers=users.headers("alice")).status_code == 200
    assert revoke_api_key(r, key.split("_")[1])
    assert sec_client.get("/v1/discussions", headers=users.headers("alice")).status_code == 401


def test_admin_cli_creates_lists_and_revokes(sec_settings, r: redis.Redis, monkeypatch) -> None:
    from api.admin import main

    monkeypatch.setenv("REDIS_URL", sec_settings.redis_url)
    monkeypatch.setenv("REDIS_DB", str(sec_settings.redis_db))
    runner = CliRunner()
    made = runner.invoke(main, ["keys", "create", "--user", "carol", "--name", "laptop"])
    assert made.exit_code == 0, made.output
    key = made.output.strip()
    key_id = key.split("_")[1]
    listed = runner.invoke(main, ["keys", "list", "--user", "carol"])
    assert key_id in listed.output and "laptop" in listed.output and key not in listed.output
    assert runner.invoke(main, ["keys", "create", "--user", "bad user!"]).exit_code != 0
    assert runner.invoke(main, ["keys", "revoke", key_id]).exit_code == 0
    assert not r.exists(keys.api_key(key_id))
    assert runner.invoke(main, ["keys", "revoke", key_id]).exit_code != 0


# ---------------------------------------------------------------- JWT


def _get(client, token: str):
    return client.get("/v1/discussions", headers={"Authorization": f"Bearer {token}"})


def test_valid_jwt_is_the_user(sec_client) -> None:
    token = make_jwt("alice")
    created = sec_client.post("/v1/discussions", json=agent_body(1, 1),
                              headers={"Authorization": f"Bearer {token}"})
    assert created.status_code == 201 and created.json["owner"] == "alice"
    assert _get(sec_client, token).json["discussions"] == [created.json["id"]]
    assert _get(sec_client, make_jwt("bob")).json["discussions"] == []


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_jwt_attacks_are_refused(sec_client) -> None:
    now = int(time.time())
    claims = {"sub": "alice", "iss": "https://issuer.test", "aud": "discussion-orchestrator",
              "exp": now + 300}
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    attacks = {
        "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}.",
        "alg None, empty sig": f"{_b64({'alg': 'None'})}.{_b64(claims)}.",
        "wrong key": make_jwt(key="another-secret-of-enough-length-0123456789"),
        "wrong algorithm (RS256 not accepted)": make_jwt(key=private, alg="RS256"),
        "HS512 not accepted": make_jwt(key=JWT_SECRET + "x" * 40, alg="HS512"),
        "expired": make_jwt(exp_in=-3600),
        "wrong audience": make_jwt(aud="someone-else"),
        "wrong issuer": make_jwt(iss="https://evil.test"),
        "no exp": jwt.encode({k: v for k, v in claims.items() if k != "exp"}, JWT_SECRET,
                             algorithm="HS256"),
        "no aud": jwt.encode({k: v for k, v in claims.items() if k != "aud"}, JWT_SECRET,
                             algorithm="HS256"),
        "no iss": jwt.encode({k: v for k, v in claims.items() if k != "iss"}, JWT_SECRET,
                             algorithm="HS256"),
        "bad sub": make_jwt(sub="alice bob"),
        "tampered payload": ".".join([make_jwt().split(".")[0], _b64({**claims, "sub": "eve"}),
                                      make_jwt().split(".")[2]]),
        "garbage": "not.a.jwt",
    }
    for name, token in attacks.items():
        resp = _get(sec_client, token)
        assert resp.status_code == 401, name
        assert resp.json["error"] == "unauthenticated", name
        assert JWT_SECRET not in resp.get_data(as_text=True)


def test_rs256_with_public_key_and_no_key_confusion(make_app, sec_settings) -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    settings = sec_settings.model_copy(update={
        "jwt_algorithms": "RS256", "jwt_secret": SecretStr(""), "jwt_public_key": SecretStr(pem)})
    client = make_app(settings).test_client()
    assert _get(client, make_jwt("alice", key=private, alg="RS256")).status_code == 200
    # The classic confusion: an HS256 token "signed" with the public key as the HMAC secret.
    header = _b64({"alg": "HS256", "typ": "JWT"})
    body = _b64({"sub": "alice", "iss": "https://issuer.test", "aud": "discussion-orchestrator",
                 "exp": int(time.time()) + 300})
    sig = base64.urlsafe_b64encode(hmac.new(pem.encode(), f"{header}.{body}".encode(),
                                          hashlib.sha256).digest()).rstrip(b"=").decode()
    assert _get(client, f"{header}.{body}.{sig}").status_code == 401


def test_jwt_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="unsupported"):
        Settings(_env_file=None, jwt_algorithms="none")  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="at least 32 bytes"):
        Settings(_env_file=None, jwt_secret="short")  # type: ignore[call-arg]


# ---------------------------------------------------------------- demo mode


def test_demo_mode_refuses_a_network_bind(settings) -> None:
    from api import create_app

    demo = settings.model_copy(update={"auth_enabled": False, "service_host": "0.0.0.0"})
    with pytest.raises(StartupRefused, match="AUTH_ENABLED"):
        create_app(settings=demo)
    for host in ("127.0.0.1", "::1", "localhost", "127.0.0.2"):
        check_startup(demo, [host])
    for host in ("0.0.0.0", "::", "10.1.2.3", "example.com"):
        with pytest.raises(StartupRefused):
            check_startup(demo, [host])
    forced = demo.model_copy(update={"auth_off_allow_network": True})
    check_startup(forced, ["0.0.0.0"])
    check_startup(demo.model_copy(update={"auth_enabled": True}), ["0.0.0.0"])


def test_demo_mode_serves_loopback_clients_only(client) -> None:
    assert client.get("/v1/discussions").status_code == 200
    remote = client.get("/v1/discussions", environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert remote.status_code == 403 and "loopback" in remote.json["message"]


def test_gunicorn_refuses_to_start_demo_mode_on_all_interfaces(settings) -> None:
    env = {**os.environ, "AUTH_ENABLED": "false", "SERVICE_HOST": "127.0.0.1",
           "REDIS_URL": settings.redis_url}
    port = embedded_redis.free_port()
    proc = subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", "python:api.gunicorn_conf",
         "-b", f"0.0.0.0:{port}", "api:create_app()"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode != 0
    assert "AUTH_ENABLED" in proc.stderr + proc.stdout
