"""Metadata keys the server owns: one list, checked on every way in, written only by us.

A client's message `metadata` may carry none of SERVER_MESSAGE_METADATA_KEYS (REST posts,
WebSocket `post` frames and votes all validate through `PostMessage`), nor any `_`-prefixed
key; a discussion's `metadata` may carry none of SERVER_DISCUSSION_METADATA_KEYS. A test runs
real agent turns and checks that every key the engine writes is listed here.
"""

from __future__ import annotations

from typing import Any

SERVER_MESSAGE_METADATA_KEYS = frozenset({
    # Accounting of the agent call (workers/accounting.py).
    "provider", "model", "prompt_tokens", "completion_tokens", "total_tokens", "latency_ms",
    "cost_usd", "attempts", "retries", "usage_estimated", "cached_reply", "replying_to",
    # Stand-in agents answering for a person (workers/turns.py, workers/human_turns.py).
    "proxy_for", "proxy_for_name", "stand_in",
    # What the protocols read from an agent's reply (`message_metadata` in protocols/): a
    # ballot (consensus; also set by the votes endpoint), a side or verdict (debate), the
    # moderator agent's choice (moderated).
    "vote", "vote_source", "vote_unparsed", "side", "verdict", "verdict_unparsed",
    "chosen_by", "choice_source",
    # Moderation (core/services/moderation.py) and records a read could not parse.
    "approved_by", "unreadable",
})

SERVER_DISCUSSION_METADATA_KEYS = frozenset({
    "batch_id", "batch_item", "schedule_id", "schedule_slot",
})

# JSON Schema `propertyNames` for the OpenAPI document: no `_` prefix.
NO_UNDERSCORE = r"^([^_][\s\S]*)?$"


def refuse_owned(metadata: dict[str, Any], reserved: frozenset[str]) -> dict[str, Any]:
    """`metadata`, unless it sets a key the server owns (`_`-prefixed or in `reserved`)."""
    owned = sorted(k for k in metadata if k.startswith("_") or k in reserved)
    if owned:
        raise ValueError(f"keys set by the server may not be given: {', '.join(owned)}")
    return metadata
