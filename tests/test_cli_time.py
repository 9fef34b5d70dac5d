"""Deadlines and times in the terminal: local time with a countdown (cli/render.py), pure."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from cli import render


@pytest.fixture
def berlin(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TZ", "Europe/Berlin")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_a_deadline_shows_in_local_time_with_what_is_left(berlin) -> None:
    now = datetime(2026, 1, 15, 10, 0, 0, tzinfo=UTC).timestamp()
    assert render.deadline("2026-01-15T10:04:32Z", now) == "until 11:04:32 (4:32 left)"
    assert render.deadline("2026-01-15T11:02:05+00:00", now) == "until 12:02:05 (1:02:05 left)"
    assert render.countdown("2026-01-15T09:59:59Z", now) == "passed"
    assert render.local_time("not a time") == "not a time"


def test_the_status_line_counts_down_to_a_persons_deadline(berlin) -> None:
    now = datetime(2026, 1, 15, 10, 0, 0, tzinfo=UTC).timestamp()
    session = {"status": "waiting_for_human", "current_round": 1, "max_rounds": 3,
               "message_count": 2, "waiting_for": "h1", "wait_deadline": "2026-01-15T10:05:00Z"}
    line = render.status_line(session, {"h1": {"name": "John"}}, conn="", now=now)
    assert "waiting for John until 11:05:00 (5:00 left)" in line
    assert "T10:05" not in line  # never the raw UTC text
