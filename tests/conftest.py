"""Test fixtures: a private redis-server, the app, a real Celery worker, a live HTTP server."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from werkzeug.serving import make_server

from core.ground.settings import Settings
from core.storage.redis_client import make_redis
from core.storage.store import Store
from scripts import embedded_redis


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A redis-server of our own on a free port, for the whole session."""
    port = embedded_redis.free_port()
    proc = embedded_redis.start(port, Path(tmp_path_factory.mktemp("redis")))
    yield f"redis://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="session")
def refplatform_server() -> Iterator[tuple[str, object]]:
    """The reference Execution Platform on a real HTTP server: (base URL, its state)."""
    from refplatform import create_app as create_platform

    platform = create_platform(seed=1)
    server = make_server("127.0.0.1", 0, platform, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", platform.extensions["refplatform"]
    server.shutdown()
    thread.join(timeout=10)


@pytest.fixture
def platform(refplatform_server: tuple[str, object]) -> tuple[str, object]:
    """The reference platform with its counters and global faults reset for this test."""
    refplatform_server[1].reset()  # type: ignore[attr-defined]
    return refplatform_server


@pytest.fixture(scope="session")
def settings(redis_url: str, refplatform_server: tuple[str, object]) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        redis_url=redis_url,
        redis_db=0,
        # Agents name their provider; the HTTP ones reach the reference platform.
        default_provider="simulated",
        execution_platform_url=refplatform_server[0],
        openai_base_url=refplatform_server[0] + "/v1",
        openai_api_key="sk-test",
        agent_backoff_base_s=0.05,
        agent_backoff_max_s=0.5,
        step_slice_s=0.5,
        turn_deadline_s=10,
        step_soft_time_limit_s=30,
        step_time_limit_s=40,
        broker_visibility_timeout_s=60,
        cors_origins="http://localhost:3000",
        # Existing tests run in the loopback demo mode; tests/test_security*.py turn these on.
        auth_enabled=False,
        service_host="127.0.0.1",
        rate_limit_enabled=False,
    )


@pytest.fixture
def r(settings: Settings) -> Iterator[redis.Redis]:
    """A client on the private Redis, flushed before each test."""
    client = make_redis(settings)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture
def store(r: redis.Redis) -> Store:
    return Store(r)


class Dispatched(list[str]):
    """A dispatcher that only records, for API tests that must not run steps."""

    def __call__(self, discussion_id: str) -> None:
        self.append(discussion_id)


@pytest.fixture
def dispatched() -> Dispatched:
    return Dispatched()


@pytest.fixture
def app(settings: Settings, r: redis.Redis, dispatched: Dispatched):
    from api import create_app

    app = create_app({"TESTING": True}, settings=settings, redis_client=r, dispatch=dispatched)
    yield app
    app.extensions["orchestrator"].hub.stop()  # its reader thread must not outlive the test


@pytest.fixture
def client(app):
    return app.test_client()


# ---------------------------------------------------------------- a real Celery worker


@pytest.fixture(scope="session")
def celery_app(settings: Settings):
    from workers.celery_app import create_celery

    return create_celery(settings)


@pytest.fixture(scope="session")
def celery_worker(celery_app) -> Iterator[object]:
    """A real Celery worker (threads pool) consuming from the private Redis."""
    from celery.contrib.testing.worker import start_worker

    with start_worker(celery_app, pool="threads", concurrency=4, perform_ping_check=False,
                      shutdown_timeout=30, loglevel="WARNING") as worker:
        yield worker
    # The test worker stops cold, and a cold stop of the threads pool leaves the tasks it is
    # running going in their threads: wait for them here, while the session's Redis still
    # runs, so no step outlives it (and logs its failure to a stream pytest has closed).
    executor = getattr(worker.pool, "executor", None)
    if executor is not None:
        executor.shutdown(wait=True, cancel_futures=True)


@pytest.fixture
def live_app(settings: Settings, r: redis.Redis, celery_app, celery_worker):
    """The app dispatching to the real worker."""
    from api import create_app

    app = create_app({"TESTING": True}, settings=settings, redis_client=r,
                     dispatch=lambda did: celery_app.send_task("discussion.step", args=[did]))
    yield app
    app.extensions["orchestrator"].hub.stop()  # its reader thread must not outlive the test


@pytest.fixture
def live_server(live_app) -> Iterator[str]:
    """The app on a real threaded HTTP server on a free port; yields its base URL."""
    server = make_server("127.0.0.1", 0, live_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)


@pytest.fixture
def action_calls() -> list[dict]:
    return []


@pytest.fixture
def actions_server(live_app, action_calls: list[dict]) -> Iterator[str]:
    """Like `live_server`, plus the test-only `fake_*` action endpoints (tests/fake_actions.py)."""
    from tests.fake_actions import add_fake_actions

    add_fake_actions(live_app, action_calls)
    server = make_server("127.0.0.1", 0, live_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)
