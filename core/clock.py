"""Time helpers: every timestamp we store is UTC ISO 8601."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


def iso(dt: datetime | None = None) -> str:
    """UTC ISO 8601 with a `Z`, millisecond precision."""
    dt = dt or utcnow()
    return dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
