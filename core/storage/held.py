"""Moderation state in Redis beside the state hash: held posts (`discussion:{id}:held`,
awaiting approval) and muted participants (`discussion:{id}:muted`). Mixed into Store,
which supplies `r` and `events_maxlen`."""

from __future__ import annotations

import json
from typing import Any

import redis

from core.ground.errors import Conflict, DiscussionNotFound
from core.storage import keys, lua_rows


class HeldAndMuted:
    """Held posts and mutes of a discussion."""

    r: redis.Redis
    events_maxlen: int

    def set_muted(self, did: str, participant_id: str, muted: bool,
                  event: dict[str, Any]) -> None:
        """Mute or unmute, with its `moderation` event, atomically."""
        pipe = self.r.pipeline(transaction=True)
        (pipe.sadd if muted else pipe.srem)(keys.muted(did), participant_id)
        pipe.xadd(keys.events(did), {"type": "moderation", "data": json.dumps(event)},
                  maxlen=self.events_maxlen, approximate=True)
        pipe.execute()

    def hold(self, did: str, held_id: str, record_json: str, message_json: str,
             event: dict[str, Any], idempotency_key: str | None, ttl_s: int) -> str | None:
        """Keep a post aside (its `held` event written with it); the record a retried
        idempotency key already held (a replay), or None when this call held it."""
        # The poster's own key (see keys.idempotency), apart from their direct posts' keys.
        idem = keys.idempotency(did, str(event.get("participant_id", "")),
                                "held:" + (idempotency_key or "-"))
        res = self.r.eval(
            lua_rows.HOLD, 5, keys.state(did), keys.held(did), keys.events(did), idem,
            keys.idempotency_index(did), held_id, message_json, json.dumps(event),
            ttl_s if idempotency_key else 0, self.events_maxlen, record_json,
        )
        code = int(res[0])
        if code == 0:
            if res[1] == "gone":
                raise DiscussionNotFound(f"discussion {did} not found")
            raise Conflict(f"discussion {did} is {res[2]}")
        return res[1] if code == 2 else None

    def held(self, did: str) -> dict[str, str]:
        """Held id -> the held message's JSON."""
        return self.r.hgetall(keys.held(did))

    def take_held(self, did: str, held_id: str) -> str | None:
        """Remove a held message for review, exactly once; its JSON, or None."""
        return self.r.eval(lua_rows.TAKE_HELD, 1, keys.held(did), held_id) or None

    def put_back_held(self, did: str, held_id: str, message_json: str) -> None:
        """A review that failed: the message is held again."""
        self.r.hset(keys.held(did), held_id, message_json)
