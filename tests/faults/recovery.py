"""Recovery at the DEFAULT settings: the Procfile's roles, the service's own time budget.

Each scenario runs several faults in one cluster. For every fault it measures the seconds
from the fault (for Redis: from the moment it answers again) to the first commit after it and
to the moment every discussion of that round is finished, and reports p50 and max of both
(tests/faults/timing.py). The discussions are the ones of issue 14's measurement: 10
round-robin discussions, 3 agents of 300 ms, 5 rounds (15 turns each).
"""

from __future__ import annotations

import time

from tests.faults.audit import Report as Report
from tests.faults.harness import Cluster
from tests.faults.scenarios import finish
from tests.faults.sentinel import SentinelTopology
from tests.faults.timing import Recovery
from tests.faults.viewers import Viewer

ROUND = {"n": 10, "agents": 3, "rounds": 5, "latency_ms": 300}
TURNS = ROUND["n"] * ROUND["agents"] * ROUND["rounds"]


def _round(c: Cluster) -> tuple[list[str], int]:
    """Create one round of discussions and wait until a quarter of their turns are in."""
    ids = c.create(ROUND["n"], agents=ROUND["agents"], rounds=ROUND["rounds"],
                   latency_ms=ROUND["latency_ms"])
    return ids, c.wait_messages(ids, TURNS // 4)


def worker_kill(*, beat: bool = True, faults: int = 3, timeout_s: float = 120) -> Report:
    """SIGKILL the only worker mid-run and start a new one at once, `faults` times."""
    name = "worker_kill" if beat else "worker_kill_no_beat"
    rec = Recovery()
    every: list[str] = []
    with Cluster() as c:
        c.start_redis()
        c.start_api()
        if beat:
            c.start_beat()
        c.start_worker()
        started = time.monotonic()
        for _ in range(faults):
            ids, before = _round(c)
            every += ids
            fault = time.monotonic()
            c.kill_worker(next(iter(c.workers)))
            c.start_worker()
            first = c.wait_progress(ids, before, fault, timeout_s)
            c.wait_terminal(ids, max(0.0, timeout_s - (time.monotonic() - fault)))
            rec.add(first, time.monotonic() - fault)
        return finish(c, name, every, started, **rec.figures())


def worker_kill_no_beat(faults: int = 3, timeout_s: float = 120) -> Report:
    """The same without beat: recovery must not depend on it."""
    return worker_kill(beat=False, faults=faults, timeout_s=timeout_s)


def redis_restart_recovery(faults: int = 3, down_s: float = 3.5,
                           timeout_s: float = 120) -> Report:
    """Stop Redis (append-only) mid-run for `down_s` and start it again, `faults` times.

    Times count from the moment Redis answers again.
    """
    rec = Recovery()
    every: list[str] = []
    with Cluster(appendonly=True) as c:
        c.start_redis()
        c.start_api()
        c.start_beat()
        c.start_worker()
        started = time.monotonic()
        for _ in range(faults):
            ids, _before = _round(c)
            every += ids
            c.stop_redis()
            time.sleep(down_s)
            c.start_redis()  # returns once it answers PING
            back = time.monotonic()
            before = c.messages(ids)
            first = c.wait_progress(ids, before, back, timeout_s)
            c.wait_terminal(ids, max(0.0, timeout_s - (time.monotonic() - back)))
            rec.add(first, time.monotonic() - back)
        return finish(c, "redis_restart_recovery", every, started, redis_down_s=down_s,
                      **rec.figures())


def sentinel_failover(faults: int = 2, timeout_s: float = 120) -> Report:
    """SIGKILL the Redis primary mid-run; the Sentinels promote the replica, `faults` times.

    State, broker and API reach Redis through the Sentinels. Viewers watch every discussion.
    After each failover the killed server comes back as a replica of the new primary (as an
    operator would bring it back), so the next fault has a replica to promote. Also reports
    `failover_max_s` (the Sentinels' own time from the kill to naming the new primary) and
    `beyond_failover_max_s` (first new commit minus that, the service's share).
    """
    rec = Recovery()
    beyond: list[float] = []
    failovers: list[float] = []
    every: list[str] = []
    viewers: list[Viewer] = []
    topology = SentinelTopology()
    with Cluster(sentinel=topology) as c:
        c.start_redis()
        c.start_api()
        c.start_beat()
        c.start_worker()
        started = time.monotonic()
        for _ in range(faults):
            ids = c.create(ROUND["n"], agents=ROUND["agents"], rounds=ROUND["rounds"],
                           latency_ms=ROUND["latency_ms"])
            round_viewers = [Viewer(c.api_url, did, deadline_s=timeout_s + 30) for did in ids]
            for v in round_viewers:
                v.start()
            viewers += round_viewers
            every += ids
            before = c.wait_messages(ids, TURNS // 4)
            primary = topology.primary_port()
            assert primary is not None
            fault = time.monotonic()
            topology.kill(primary)
            failover = topology.wait_failover(primary)
            first = c.wait_progress(ids, before, fault, timeout_s)
            c.wait_terminal(ids, max(0.0, timeout_s - (time.monotonic() - fault)))
            rec.add(first, time.monotonic() - fault)
            failovers.append(round(failover, 2))
            beyond.append(round(first - failover, 2))
            new_primary = topology.primary_port()
            assert new_primary is not None
            topology.start_server(primary, replica_of=new_primary)
            topology.wait_agreed(new_primary, replicas=1)
        return finish(c, "sentinel_failover", every, started, viewers,
                      failover_max_s=max(failovers), beyond_failover_max_s=max(beyond),
                      **rec.figures())


ALL = {
    "worker_kill": worker_kill,
    "worker_kill_no_beat": worker_kill_no_beat,
    "redis_restart_recovery": redis_restart_recovery,
    "sentinel_failover": sentinel_failover,
}
