"""What a stateful agent backend (AutoGen) keeps between turns, per discussion and participant.

One hash per discussion, a field per participant, holding a small record: the turn it was
saved at, the agent's state before and after that turn, and the last transcript seq it had
seen before and after. A re-run of the same turn (its worker died before the reply was
committed) starts again from the state *before*, so the agent never sees its own lost attempt
and the turn still yields one message.
"""

from __future__ import annotations

import json
from typing import Any

import redis

from core.storage import keys


def load(r: redis.Redis, discussion_id: str, participant_id: str) -> dict[str, Any] | None:
    """The participant's record, or None before its first turn."""
    raw = r.hget(keys.agent_state(discussion_id), participant_id)
    return json.loads(raw) if raw else None


def save(r: redis.Redis, discussion_id: str, participant_id: str,
         record: dict[str, Any]) -> None:
    r.hset(keys.agent_state(discussion_id), participant_id, json.dumps(record))


def starting_point(record: dict[str, Any] | None, turn: int) -> tuple[Any, int]:
    """(agent state, last seq seen) a turn starts from, given the stored record."""
    if not record:
        return None, 0
    if int(record.get("turn", -1)) == turn:
        return record.get("before"), int(record.get("seen_before", 0))
    return record.get("after"), int(record.get("seen", 0))
