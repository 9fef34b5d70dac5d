"""REDIS_WAIT_REPLICAS against a real primary and replica: a commit waits for the replica's
acknowledgement; without one in time it is reported (a Redis timeout), and an API post then
answers 503 and, retried with its Idempotency-Key, is not posted twice."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from api import create_app
from core.ground.ids import new_id
from core.ground.models import Permission, Protocol, Status
from core.ground.settings import Settings
from core.storage import keys
from core.storage.commits import ReplicaTimeout
from core.storage.redis_client import make_redis
from core.storage.store import Commit, Store
from scripts import embedded_redis
from tests.helpers import agent, config, human, message, wait_for


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """A primary and its replica, both ours: (primary port, replica process)."""
    primary_port, replica_port = embedded_redis.free_port(), embedded_redis.free_port()
    primary = embedded_redis.start(primary_port, tmp_path / "primary")
    replica = embedded_redis.start(replica_port, tmp_path / "replica",
                                   extra_args=["--replicaof", "127.0.0.1", str(primary_port)])
    probe = redis.Redis(port=primary_port)
    wait_for(lambda: probe.info("replication").get("slave0", {}).get("state") == "online",
             timeout=10)
    try:
        yield primary_port, replica
    finally:
        for proc in (replica, primary):
            proc.kill()
            proc.wait(timeout=10)


def _store(settings: Settings, port: int, replicas: int) -> tuple[Settings, Store]:
    s = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{port}",
                                    "redis_wait_replicas": replicas,
                                    "redis_wait_timeout_ms": 300})
    return s, Store(make_redis(s), wait_replicas=replicas, wait_timeout_ms=300)


def test_a_commit_waits_for_the_replica_and_reports_when_none_acknowledges(
        settings: Settings, pair: tuple[int, subprocess.Popen[bytes]]) -> None:
    port, replica = pair
    _, store = _store(settings, port, 1)
    did = "disc_wait"
    store.create(config().model_copy(update={"id": did}), [agent("a1"), human("h1", "ann")],
                 status=Status.ACTIVE)
    res = store.commit(did, Commit(message=message("h1", "acknowledged")))
    assert res.seq == 1
    # Acknowledged means the replica has it now.
    replica_client = redis.Redis(port=int(redis.Redis(port=port).info("replication")
                                          ["slave0"]["port"]), decode_responses=True)
    assert replica_client.llen(keys.messages(did)) == 1
    replica.kill()
    replica.wait(timeout=10)
    wait_for(lambda: int(redis.Redis(port=port).info("replication")["connected_slaves"]) == 0)
    with pytest.raises(ReplicaTimeout, match="acknowledged by 0 of 1"):
        store.commit(did, Commit(message=message("h1", "not acknowledged")))
    assert isinstance(ReplicaTimeout("x"), redis.TimeoutError)


def test_an_unacknowledged_post_is_a_503_and_its_retry_is_not_a_second_message(
        settings: Settings, pair: tuple[int, subprocess.Popen[bytes]], tmp_path: Path) -> None:
    port, replica = pair
    s, store = _store(settings, port, 1)
    app = create_app({"TESTING": True}, settings=s, dispatch=lambda did: None)
    client = app.test_client()
    did = new_id("disc")  # the API accepts only well-formed ids
    store.create(config(Protocol.FREE_FORM).model_copy(update={"id": did}),
                 [agent("a1"), human("h1", "ann", (Permission.READ, Permission.WRITE))],
                 status=Status.ACTIVE)
    replica.kill()
    replica.wait(timeout=10)
    wait_for(lambda: int(store.r.info("replication")["connected_slaves"]) == 0)
    body = {"participant_id": "h1", "content": "hello"}
    headers = {"Idempotency-Key": "post-1"}
    first = client.post(f"/v1/discussions/{did}/messages", json=body, headers=headers)
    assert first.status_code == 503, first.get_json()
    again = client.post(f"/v1/discussions/{did}/messages", json=body, headers=headers)
    assert again.status_code == 503  # still not on a replica
    # A replica again: the retry is acknowledged, and it is still one message.
    replica_port = embedded_redis.free_port()
    back = embedded_redis.start(replica_port, tmp_path / "replica2",
                                extra_args=["--replicaof", "127.0.0.1", str(port)])
    try:
        wait_for(lambda: store.r.info("replication").get("slave0", {}).get("state")
                 == "online", timeout=10)
        last = client.post(f"/v1/discussions/{did}/messages", json=body, headers=headers)
        assert last.status_code in (200, 201), last.get_json()
        assert store.r.llen(keys.messages(did)) == 1
    finally:
        back.kill()
        back.wait(timeout=10)
