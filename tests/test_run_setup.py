"""The run command's checks (scripts/run_setup.py): each fails at once and names its cause,
before anything starts. Real sockets and a real (absent) Redis; no processes are started."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts import run_setup as setup
from scripts.embedded_redis import free_port


@pytest.fixture
def held_port() -> Iterator[int]:
    """A port some other process (here: this test) listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def test_a_busy_service_port_fails_naming_the_setting(held_port: int) -> None:
    with pytest.raises(setup.SetupError, match=f"port {held_port} \\(SERVICE_PORT"):
        setup.choose_ports({"SERVICE_PORT": str(held_port)}, ["web"])


def test_a_busy_default_auxiliary_port_moves_and_an_explicit_one_fails(held_port: int,
                                                                        monkeypatch) -> None:
    monkeypatch.setattr(setup, "PORTS", (setup.Port("FLOWER_PORT", held_port, "flower"),))
    env: dict[str, str] = {}
    notes = setup.choose_ports(env, ["flower"])
    assert env["FLOWER_PORT"] != str(held_port) and "FLOWER_PORT" in notes[0]
    with pytest.raises(setup.SetupError, match="FLOWER_PORT"):
        setup.choose_ports({"FLOWER_PORT": str(held_port)}, ["flower"])


def test_ports_of_roles_not_run_are_not_checked(held_port: int) -> None:
    env = {"SERVICE_PORT": str(held_port)}
    assert setup.choose_ports(env, ["worker"]) == []  # no web role: its port does not matter


def test_a_redis_url_that_does_not_answer_fails_within_seconds() -> None:
    started = time.monotonic()
    with pytest.raises(setup.SetupError, match="REDIS_URL=redis://127.0.0.1"):
        setup.check_redis(f"redis://127.0.0.1:{free_port()}")
    assert time.monotonic() - started < 5


def test_nothing_but_redis_url_names_a_redis_to_write_into(tmp_path: Path,
                                                           monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # no .env here
    monkeypatch.delenv("REDIS_URL", raising=False)
    assert setup.configured_redis({}) is None  # even if something answers on :6379
    assert setup.configured_redis({"REDIS_URL": "redis://h:1"}) == "redis://h:1"
    (tmp_path / ".env").write_text("REDIS_URL=redis://from-dotenv:6390\n")
    assert setup.configured_redis({}) == "redis://from-dotenv:6390"


def test_demo_mode_puts_every_role_on_loopback(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AUTH_ENABLED", raising=False)
    env = {"REDIS_URL": "redis://127.0.0.1:1"}
    assert setup.demo_mode(env)
    assert env["AUTH_ENABLED"] == "false"
    for host in ("SERVICE_HOST", "FLOWER_HOST", "WORKER_METRICS_HOST",
                 "EXECUTION_PLATFORM_HOST"):
        assert env[host] == "127.0.0.1"
    assert not setup.demo_mode({"REDIS_URL": "redis://127.0.0.1:1", "AUTH_ENABLED": "true"})


def test_one_run_per_checkout_and_per_checkout_paths(tmp_path: Path) -> None:
    held = setup.lock_checkout(tmp_path)
    with pytest.raises(setup.SetupError, match="another run"):
        setup.lock_checkout(tmp_path)
    held.close()  # type: ignore[attr-defined]
    setup.lock_checkout(tmp_path).close()  # type: ignore[attr-defined]
    env: dict[str, str] = {}
    setup.checkout_paths(env, tmp_path)
    assert all(env[k].startswith(str(tmp_path)) for k in
               ("WEB_METRICS_DIR", "WORKER_METRICS_DIR", "BEAT_SCHEDULE_FILE"))
