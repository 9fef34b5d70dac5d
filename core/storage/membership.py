"""Membership changes a person makes themself: leaving a discussion for good (one Lua step)."""

from __future__ import annotations

import json

from core.ground.models import Participant
from core.storage import keys, lua_rows
from core.storage.store import Store


def leave(store: Store, discussion_id: str, seat: Participant, user_id: str) -> bool:
    """Store `seat` (already emptied), drop the discussion from the user's list, mute the seat
    and tell viewers; False when the discussion no longer exists."""
    data = json.dumps({"participant_id": seat.participant_id}, separators=(",", ":"))
    done = store.r.eval(  # type: ignore[no-untyped-call]
        lua_rows.LEAVE, 6, keys.session(discussion_id), keys.participants(discussion_id),
        keys.user_discussions(user_id), keys.muted(discussion_id), keys.events(discussion_id),
        keys.user_listing(user_id), discussion_id, seat.participant_id, seat.model_dump_json(),
        store.events_maxlen, data)
    return bool(int(done))
