"""The time budget: settings that break it are refused, and a worker with them will not start."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from core.ground.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def _settings(**kw: object) -> Settings:
    return Settings(_env_file=None, **kw)  # type: ignore[call-arg]


def test_the_defaults_keep_the_chain_and_a_short_renewed_lease() -> None:
    s = _settings()
    assert s.lease_ttl_s <= 10, "the default lease is a few seconds"
    assert s.lease_renew_interval_s * 2 <= s.lease_ttl_s
    assert s.lease_ttl_s < s.broker_visibility_timeout_s
    assert (s.turn_deadline_s + s.step_slice_s < s.step_soft_time_limit_s
            < s.step_time_limit_s < s.broker_visibility_timeout_s)


@pytest.mark.parametrize(("bad", "named"), [
    ({"lease_ttl_s": 4, "lease_renew_interval_s": 3}, "LEASE_RENEW_INTERVAL_S (3) must be at "
                                                      "most half of LEASE_TTL_S (4)"),
    ({"lease_ttl_s": 700}, "LEASE_TTL_S (700) must stay below BROKER_VISIBILITY_TIMEOUT_S"),
    ({"turn_deadline_s": 115}, "TURN_DEADLINE_S + STEP_SLICE_S (125) must stay below "
                               "STEP_SOFT_TIME_LIMIT_S (120)"),
    ({"step_time_limit_s": 100}, "STEP_SOFT_TIME_LIMIT_S (120) must stay below "
                                 "STEP_TIME_LIMIT_S (100)"),
    ({"broker_visibility_timeout_s": 140}, "STEP_TIME_LIMIT_S (150) must stay below "
                                           "BROKER_VISIBILITY_TIMEOUT_S (140)"),
    ({"redis_sentinels": "127.0.0.1:26379,nonsense"}, "'nonsense' is not host:port"),
])
def test_a_broken_budget_is_refused_naming_the_variables(bad: dict, named: str) -> None:
    with pytest.raises(ValidationError) as err:
        _settings(**bad)
    assert named in str(err.value)


def test_a_worker_with_a_broken_budget_refuses_to_start_with_a_clear_message() -> None:
    # A real `celery worker` process, as the Procfile starts it, with a renewal interval that
    # would let a live step lose its lease. It must exit at once, saying why.
    env = {**os.environ, "LEASE_TTL_S": "2", "LEASE_RENEW_INTERVAL_S": "1.5",
           "REDIS_URL": "redis://127.0.0.1:1/0", "PYTHONPATH": str(ROOT)}
    celery = str(Path(sys.executable).parent / "celery")
    proc = subprocess.run([celery, "-A", "workers.main", "worker", "-P", "solo"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "LEASE_RENEW_INTERVAL_S (1.5) must be at most half of LEASE_TTL_S (2)" in out, out
    assert "refusing to start" in out, out
    assert "Traceback" not in out, out
