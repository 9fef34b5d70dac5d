"""Fixtures for the security tests: the app with authentication on, users with API keys, JWTs."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
import redis
from pydantic import SecretStr
from werkzeug.serving import make_server

from core.ground.settings import Settings
from core.services.auth import create_api_key
from tests.helpers import agent_body

JWT_SECRET = "s3cret-for-tests-only-0123456789abcdef"
ISSUER = "https://issuer.test"
AUDIENCE = "discussion-orchestrator"
ORIGIN = "http://localhost:3000"  # the tests' CORS_ORIGINS


@pytest.fixture
def sec_settings(settings: Settings) -> Settings:
    """Authentication on (API keys and HS256 JWTs); rate limits off unless a test turns them on."""
    return settings.model_copy(update={
        "auth_enabled": True,
        "service_host": "0.0.0.0",
        "jwt_algorithms": "HS256",
        "jwt_secret": SecretStr(JWT_SECRET),
        "jwt_issuer": ISSUER,
        "jwt_audience": AUDIENCE,
        "rate_limit_enabled": False,
    })


@pytest.fixture
def make_app(r: redis.Redis, dispatched):
    from api import create_app

    def build(settings: Settings):
        return create_app({"TESTING": True}, settings=settings, redis_client=r,
                          dispatch=dispatched)

    return build


@pytest.fixture
def sec_app(make_app, sec_settings: Settings):
    return make_app(sec_settings)


@pytest.fixture
def sec_client(sec_app):
    return sec_app.test_client()


class Users:
    """API keys for named users, made on demand, and headers carrying them."""

    def __init__(self, r: redis.Redis, settings: Settings) -> None:
        self.r, self.settings, self.keys = r, settings, {}

    def key(self, user: str) -> str:
        if user not in self.keys:
            self.keys[user] = create_api_key(self.r, self.settings, user, "tests")
        return self.keys[user]

    def headers(self, user: str | None) -> dict[str, str]:
        return {} if user is None else {"Authorization": f"Bearer {self.key(user)}"}


@pytest.fixture
def users(r: redis.Redis, sec_settings: Settings) -> Users:
    return Users(r, sec_settings)


def make_jwt(sub: str = "alice", *, key: Any = JWT_SECRET, alg: str = "HS256",
             exp_in: float = 300, **claims: Any) -> str:
    payload = {"sub": sub, "iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time() + exp_in),
               "iat": int(time.time())}
    payload.update(claims)
    payload = {k: v for k, v in payload.items() if v is not None}
    return jwt.encode(payload, key, algorithm=alg)


def serve(app) -> tuple[str, Any, threading.Thread]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return f"http://127.0.0.1:{server.server_port}", server, thread


@pytest.fixture
def sec_server(sec_app) -> Iterator[str]:
    """The secured app on a real threaded server (steps recorded, not run)."""
    base, server, thread = serve(sec_app)
    yield base
    server.shutdown()
    thread.join(timeout=10)


def shared_discussion(sec_client, users) -> tuple[str, str, str]:
    """A free-form discussion of alice's with bob writing: (id, alice's pid, bob's pid)."""
    body = {**agent_body(1, 1), "protocol": "free_form",
            "humans": [{"user_id": "alice", "name": "Alice"},
                       {"user_id": "bob", "name": "Bob"}]}
    session = sec_client.post("/v1/discussions", json=body, headers=users.headers("alice")).json
    pids = {p["user_id"]: p["participant_id"] for p in session["participants"] if p["user_id"]}
    return session["id"], pids["alice"], pids["bob"]
