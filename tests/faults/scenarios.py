"""The fault scenarios: each runs real processes, breaks something, and audits the result.

Each returns a Report (see audit.py) whose `line()` is what the fault run prints.
"""

from __future__ import annotations

import random
import re
import signal
import time

from tests.faults.audit import Report, audit
from tests.faults.harness import Cluster
from tests.faults.viewers import Viewer

PRINTED: list[str] = []  # every report line of this process, for pytest's terminal summary



def _start_all(c: Cluster, *, workers: int) -> None:
    """Redis, the API, a beat (the reconciler) and `workers` Procfile-like workers."""
    c.start_redis()
    c.start_api()
    c.start_beat()
    for _ in range(workers):
        c.start_worker()


def finish(c: Cluster, name: str, ids: list[str], started: float,
           viewers: list[Viewer] = (), **extra: object) -> Report:  # type: ignore[assignment]
    """Audit `ids`, add the viewers' findings and `extra`, and record the report line."""
    rep = audit(c.r, name, ids)
    rep.extra.update(extra)
    rep.seconds = time.monotonic() - started
    for v in viewers:
        v.join(timeout=5)
        expected = c.r.llen(f"discussion:{v.did}:messages")
        problems = v.problems(expected)
        rep.viewers += 1
        if problems:
            rep.viewer_problems += 1
            rep.extra.setdefault("viewer_detail", f"{v.did}: {problems}")
    if viewers:
        rep.extra["viewer_reconnects"] = sum(v.connects - 1 for v in viewers)
    rep.extra["reconciler_nudges"], rep.extra["sweep_orphans"] = _nudges(c)
    PRINTED.append(rep.line())
    return rep


def _nudges(c: Cluster) -> tuple[int, int]:
    """Steps the recovery sweep re-enqueued, from the workers' logs: (stale nudges, orphans
    of dead steps)."""
    nudged = orphans = 0
    for log in c.dir.glob("w*.log"):
        text = log.read_text(errors="replace")
        nudged += sum(int(n) for n in re.findall(r"'nudged': (\d+)", text))
        orphans += sum(int(n) for n in re.findall(r"'orphans': (\d+)", text))
    return nudged, orphans


def kill9(n: int = 50, workers: int = 2, kill_every_s: float = 1.5, max_kills: int = 10,
          latency_ms: int = 200, timeout_s: float = 240) -> Report:
    """a. kill -9 a worker's processes again and again while `n` discussions run."""
    rnd = random.Random(7)
    with Cluster() as c:
        _start_all(c, workers=workers)
        started = time.monotonic()
        ids = c.create(n, agents=3, rounds=4, latency_ms=latency_ms)
        kills = 0
        while kills < max_kills and time.monotonic() - started < timeout_s:
            time.sleep(kill_every_s)
            if all(s == "completed" for s in c.statuses(ids).values()):
                break
            c.kill_worker(rnd.choice(sorted(c.workers)))
            kills += 1
            c.start_worker()
        c.wait_terminal(ids, timeout_s - (time.monotonic() - started))
        return finish(c, "kill9", ids, started, kills=kills)


def short_visibility(n: int = 3, latency_ms: int = 2500) -> Report:
    """b. A visibility timeout (1 s) shorter than an agent call: Celery runs steps twice."""
    # Not the defaults, on purpose: the fault is a visibility timeout (forced below what the
    # settings allow, see worker_app) shorter than an agent call, which the deadline allows.
    env = {"FAULT_VISIBILITY_TIMEOUT_S": "1", "TURN_DEADLINE_S": "6"}
    with Cluster(env=env) as c:
        c.start_redis()
        c.start_api()
        c.start_worker(pool="threads", concurrency=8)
        started = time.monotonic()
        ids = c.create(n, agents=2, rounds=1, latency_ms=latency_ms)
        c.wait_terminal(ids, 120)
        return finish(c, "short_visibility", ids, started)


def redis_restart(n: int = 20, down_s: float = 3.0, latency_ms: int = 200) -> Report:
    """c. Stop Redis (append-only) mid-run and start it again; viewers watch throughout."""
    with Cluster(appendonly=True) as c:
        _start_all(c, workers=2)
        started = time.monotonic()
        ids = c.create(n, agents=3, rounds=3, latency_ms=latency_ms)
        viewers = [Viewer(c.api_url, did, deadline_s=150) for did in ids]
        for v in viewers:
            v.start()
        # Stop once the run is well under way (a third of the turns), not at a fixed time.
        before = c.wait_messages(ids, n * 9 // 3)
        c.stop_redis()
        time.sleep(down_s)
        c.start_redis()
        c.wait_terminal(ids, 150)
        return finish(c, "redis_restart", ids, started, viewers,
                       messages_before_stop=before, redis_down_s=down_s)


def redis_kill9(n: int = 20, down_s: float = 2.0, latency_ms: int = 200) -> Report:
    """c'. Kill -9 Redis (append-only, fsync every second) mid-run: the host dies.

    Up to a second of writes is lost; the transcripts must still be whole (no gap, no
    duplicate) and every discussion must finish. Viewers may be shown a lost turn's `seq`
    again (docs/guarantees.md), so they are not watched here.
    """
    with Cluster(appendonly=True) as c:
        _start_all(c, workers=2)
        started = time.monotonic()
        ids = c.create(n, agents=3, rounds=3, latency_ms=latency_ms)
        time.sleep(1.5)  # past the last fsync of the creations
        before = c.wait_messages(ids, n * 9 // 3)
        c.stop_redis(signal.SIGKILL)
        time.sleep(down_s)
        c.start_redis()
        after_restart = c.messages(ids)
        c.wait_terminal(ids, 150)
        return finish(c, "redis_kill9", ids, started, messages_before_kill=before,
                       messages_after_restart=after_restart,
                       messages_lost_and_rerun=max(0, before - after_restart))


def rolling_sigterm(n: int = 30, rotations: int = 4, every_s: float = 2.0,
                    latency_ms: int = 200) -> Report:
    """d. SIGTERM workers one after another, each replaced first, as a rolling deploy does."""
    with Cluster() as c:
        _start_all(c, workers=2)
        started = time.monotonic()
        ids = c.create(n, agents=3, rounds=2, latency_ms=latency_ms)
        shutdowns = []
        for _ in range(rotations):
            time.sleep(every_s)
            oldest = sorted(c.workers, key=lambda w: int(w[1:]))[0]
            c.start_worker()
            shutdowns.append(c.stop_worker(oldest))
        c.wait_terminal(ids, 150)
        return finish(c, "rolling_sigterm", ids, started, sigterms=len(shutdowns),
                       slowest_shutdown_s=round(max(shutdowns), 1))


ALL = {
    "kill9": kill9,
    "short_visibility": short_visibility,
    "redis_restart": redis_restart,
    "redis_kill9": redis_kill9,
    "rolling_sigterm": rolling_sigterm,
}
