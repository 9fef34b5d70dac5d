"""Identifiers in the seed's styles: disc_…, agent_…, human_…, msg_…, and their patterns."""

from __future__ import annotations

import re
import secrets

# What an id from a client (a path segment) must look like before it may reach Redis: the
# prefix and 1-40 letters or digits (ours are 12 hex digits). No `:`, `*`, `?` or `[`: an id
# can never name another key or a pattern.
_BODY = r"[A-Za-z0-9]{1,40}"
ID_PATTERNS = {prefix: re.compile(rf"{prefix}_{_BODY}")
               for prefix in ("disc", "batch", "sched", "agent", "human", "msg", "held")}
# The same as JSON Schema patterns, for the OpenAPI document.
ID_SCHEMA_PATTERNS = {prefix: rf"^{prefix}_{_BODY}$" for prefix in ID_PATTERNS}
STREAM_ID_MAX = 2**64 - 1  # both parts of a Redis Stream id are unsigned 64-bit numbers
_STREAM_ID = re.compile(r"(\d{1,20})(?:-(\d{1,20}))?")


def new_id(prefix: str) -> str:
    """A random id with the given prefix, e.g. `disc_3f9a1c2b7d4e`."""
    return f"{prefix}_{secrets.token_hex(6)}"


def valid_id(prefix: str, value: str) -> bool:
    """Whether `value` has the shape of an id with this prefix."""
    return ID_PATTERNS[prefix].fullmatch(value) is not None


def parse_stream_id(value: str) -> tuple[int, int]:
    """A Redis Stream id (`ms-seq`, or `ms`) as a pair; ValueError when malformed or out of
    Redis' 64-bit range."""
    m = _STREAM_ID.fullmatch(value.strip()) if isinstance(value, str) else None
    if m is None:
        raise ValueError("a stream id looks like 1700000000000-0")
    ms, seq = int(m.group(1)), int(m.group(2) or 0)
    if ms > STREAM_ID_MAX or seq > STREAM_ID_MAX:
        raise ValueError(f"stream id parts are at most {STREAM_ID_MAX}")
    return ms, seq


def stream_id_after(value: str) -> str | None:
    """The exclusive XRANGE start after `value` (`(ms-seq`); None when nothing can follow it
    (the largest id) or `value` is the beginning ('-', '0', '0-0': use '-')."""
    if value in ("", "-", "0", "0-0"):
        return "-"
    ms, seq = parse_stream_id(value)
    if ms == STREAM_ID_MAX and seq == STREAM_ID_MAX:
        return None
    return f"({ms}-{seq}"
