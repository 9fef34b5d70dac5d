"""Recovery at the default settings (issue 14's targets), under pytest; figures in the summary.

Each scenario runs the Procfile's roles as real processes with the service's default time
budget, breaks something several times, and checks the worst time from a fault to the first
new commit against its target. p50 and max of that and of the time to all complete are printed
in pytest's "fault figures" section.
"""

from __future__ import annotations

import pytest

from tests.faults import recovery

pytestmark = [pytest.mark.faults, pytest.mark.timeout(420)]

KILL_TARGET_S = 10.0  # a worker SIGKILL: first new commit within 10 s, with or without beat
REDIS_TARGET_S = 5.0  # a Redis restart: within 5 s of Redis answering again
FAILOVER_EXTRA_S = 10.0  # a primary failover: within the Sentinels' own time plus 10 s


def _whole(rep: recovery.Report, faults: int) -> None:
    assert rep.ok, rep.line()
    assert rep.completed == faults * recovery.ROUND["n"]
    assert rep.messages == faults * recovery.TURNS, rep.line()
    assert rep.extra["faults"] == faults


def test_worker_sigkill_with_beat_recovers_within_10_s() -> None:
    rep = recovery.worker_kill(beat=True)
    _whole(rep, 3)
    assert rep.extra["first_commit_max_s"] <= KILL_TARGET_S, rep.line()


def test_worker_sigkill_without_beat_recovers_within_10_s() -> None:
    rep = recovery.worker_kill_no_beat()
    _whole(rep, 3)
    assert rep.extra["first_commit_max_s"] <= KILL_TARGET_S, rep.line()


def test_redis_restart_recovers_within_5_s_of_redis_answering() -> None:
    rep = recovery.redis_restart_recovery()
    _whole(rep, 3)
    assert rep.extra["first_commit_max_s"] <= REDIS_TARGET_S, rep.line()


def test_sentinel_failover_of_the_primary_loses_nothing() -> None:
    rep = recovery.sentinel_failover()
    _whole(rep, 2)
    assert rep.viewers == 2 * recovery.ROUND["n"] and rep.viewer_problems == 0, rep.line()
    assert rep.extra["beyond_failover_max_s"] <= FAILOVER_EXTRA_S, rep.line()
