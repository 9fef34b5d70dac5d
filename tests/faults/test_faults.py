"""The fault scenarios under pytest (`pytest -m faults`); they also run in CI's default run.

Each starts its own private Redis, workers, beat and API processes, so they need no fixture.
The figures each one found are printed in pytest's terminal summary ("fault figures").
"""

from __future__ import annotations

import pytest

from tests.faults import scenarios

pytestmark = [pytest.mark.faults, pytest.mark.timeout(420)]


def test_kill9_workers_again_and_again_50_discussions() -> None:
    rep = scenarios.kill9()
    assert rep.ok, rep.line()
    assert rep.completed == 50 and rep.messages == 50 * 12
    assert rep.extra["kills"] >= 3, "the run ended before the workers were killed enough"


def test_visibility_timeout_shorter_than_an_agent_call() -> None:
    rep = scenarios.short_visibility()
    assert rep.ok, rep.line()
    assert rep.step_redeliveries >= 1, "Celery never ran a step twice: the fault did not happen"
    assert rep.turns == rep.messages == 6
    assert rep.turns_called_twice == 0, "the agent was called twice for one turn"


def test_redis_stop_and_restart_with_appendonly() -> None:
    rep = scenarios.redis_restart()
    assert rep.ok, rep.line()
    assert 0 < rep.extra["messages_before_stop"] < rep.messages, "Redis did not stop mid-run"
    assert rep.viewers == 20 and rep.viewer_problems == 0


def test_redis_killed_with_appendonly_everysec_loses_at_most_a_second_never_a_duplicate(
) -> None:
    rep = scenarios.redis_kill9()
    assert rep.ok, rep.line()
    assert rep.completed == 20 and rep.messages == 20 * 9
    assert 0 < rep.extra["messages_before_kill"] < rep.messages, "Redis did not die mid-run"


def test_rolling_sigterm_of_workers() -> None:
    rep = scenarios.rolling_sigterm()
    assert rep.ok, rep.line()
    assert rep.extra["sigterms"] == 4
