"""Celery's settings: one source, consistent with the time budget the settings validate."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

import celeryconfig
from core.ground.settings import Settings


def _settings(**kw: object) -> Settings:
    return Settings(_env_file=None, **kw)  # type: ignore[call-arg]


def test_redelivery_settings_and_time_chain() -> None:
    s = _settings()
    conf = celeryconfig.build(s)
    assert conf["task_acks_late"] is True
    assert conf["task_reject_on_worker_lost"] is True
    assert conf["worker_prefetch_multiplier"] == 1
    vt = conf["broker_transport_options"]["visibility_timeout"]
    assert s.turn_deadline_s + s.step_slice_s < conf["task_soft_time_limit"] \
        < conf["task_time_limit"] < vt
    assert s.lease_ttl_ms / 1000 < vt
    assert conf["broker_connection_max_retries"] is None
    entry = conf["beat_schedule"]["reconcile-discussions"]
    assert entry["task"] == "discussion.reconcile"
    assert entry["schedule"] == s.reconcile_interval_s


def test_every_process_gets_the_same_conf_and_the_step_task_agrees(settings: Settings) -> None:
    from workers.celery_app import create_celery

    app = create_celery(settings)
    expected = celeryconfig.build(settings)
    for key in ("task_acks_late", "task_reject_on_worker_lost", "worker_prefetch_multiplier",
                "task_soft_time_limit", "task_time_limit", "broker_transport_options"):
        assert app.conf[key] == expected[key], key
    step = app.tasks["discussion.step"]
    assert step.acks_late is True and step.reject_on_worker_lost is True
    assert "discussion.reconcile" in app.tasks


@pytest.mark.parametrize("bad", [
    {"step_soft_time_limit_s": 50, "turn_deadline_s": 60},
    {"step_time_limit_s": 100, "step_soft_time_limit_s": 120},
    {"broker_visibility_timeout_s": 140, "step_time_limit_s": 150},
    {"step_max_attempts": 0},
    {"reconcile_interval_s": 0},
    {"ws_viewer_queue": 1},
    {"events_retention_s": -1},
])
def test_inconsistent_settings_are_refused(bad: dict) -> None:
    with pytest.raises(ValidationError):
        _settings(**bad)
