"""Operations settings and keys: bad values are refused at start, the key layout is pinned."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from core.ground.settings import Settings
from core.storage import keys


@pytest.mark.parametrize("field, value", [
    ("log_format", "xml"),
    ("worker_heartbeat_ttl_s", 0),
    ("worker_heartbeat_interval_s", -1),
    ("health_min_workers", -1),
    ("health_max_queue_age_s", 0),
    ("health_probe_timeout_s", 0),
    ("worker_metrics_port", 70000),
    ("schedule_tick_s", 0),
    ("schedule_missed_grace_s", 0),
    ("batch_pump_interval_s", 0),
    ("max_batch_items", 0),
    ("retention_finished_s", -5),
    ("retention_sweep_interval_s", 0),
])
def test_bad_operations_settings_are_refused(field: str, value: object) -> None:
    with pytest.raises(ValidationError):
        Settings(_env_file=None, **{field: value})  # type: ignore[call-arg]


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOG_FORMAT", "json")
    monkeypatch.setenv("RETENTION_FINISHED_S", "86400")
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert s.log_format == "json" and s.retention_finished_s == 86400


def test_operations_key_layout() -> None:
    assert keys.audit("disc_a") == "discussion:disc_a:audit"
    assert keys.audit("disc_a") in keys.discussion_keys("disc_a")
    assert keys.WORKER_HEARTBEATS == "workers:heartbeats"
    assert keys.SCHEDULES == "schedules:all" and keys.SCHEDULES_NEXT == "schedules:next"
    assert keys.schedule_runs("sched_a") == "schedule:sched_a:runs"
    assert keys.batch_keys("batch_a") == ["batch:batch_a", "batch:batch_a:pending",
                                          "batch:batch_a:running", "batch:batch_a:items",
                                          "batch:batch_a:pump"]
    assert keys.broker_queue_keys("steps")[0] == "steps"
