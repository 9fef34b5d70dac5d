"""Time helpers: every timestamp we store is UTC ISO 8601."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


def iso(dt: datetime | None = None) -> str:
    """UTC ISO 8601 with a `Z`, millisecond precision."""
    # The common call (now) is already UTC: skip the conversion (this runs on every turn).
    dt = utcnow() if dt is None else dt.astimezone(UTC)
    return dt.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def epoch(ts: str) -> float:
    """Seconds since the epoch of an ISO 8601 timestamp (a trailing `Z` means UTC); the one
    parser of stored timestamps. ValueError for text that is not one."""
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
