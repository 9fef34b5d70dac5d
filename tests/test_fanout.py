"""Fan-out at scale: 200 viewers of one discussion on the production server (gunicorn gevent).

Real processes (private Redis, a Celery worker, the API under gunicorn's gevent worker as in the
Procfile); each viewer must receive every event after its `init` exactly once, in order.
"""

from __future__ import annotations

import pytest

from tests.faults.harness import Cluster
from tests.faults.viewers import Viewer

pytestmark = pytest.mark.timeout(300)

VIEWERS = 200


def test_200_concurrent_viewers_each_get_every_event_once_in_order() -> None:
    with Cluster() as c:
        c.start_redis()
        c.start_api()
        c.start_worker(concurrency=10)
        [did] = c.create(1, agents=3, rounds=10, latency_ms=200)
        viewers = [Viewer(c.api_url, did, deadline_s=120) for _ in range(VIEWERS)]
        for v in viewers:
            v.start()
        for v in viewers:
            v.join(timeout=150)
        total = c.r.llen(f"discussion:{did}:messages")
        stream = [eid for eid, _ in c.r.xrange(f"discussion:{did}:events")]
        assert c.statuses([did])[did] == "completed" and total == 30
        live_counts = []
        for v in viewers:
            assert v.problems(total) == [], (v.problems(total), c.log_tail("api"))
            assert v.connects == 1, ("a viewer was disconnected", v.close_codes, c.log_tail("api"))
            # Exactly the stream after the init's cursor: nothing missed, nothing twice.
            assert v.init_cursor in stream
            assert v.event_ids == stream[stream.index(v.init_cursor) + 1:]
            live_counts.append(len(v.event_ids))
        # Most viewers saw most of the discussion live (they connected while it ran).
        assert sorted(live_counts)[VIEWERS // 2] > 10, live_counts[:20]
