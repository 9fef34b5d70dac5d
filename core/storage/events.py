"""The per-discussion event stream: reads for viewers and resume, and fenced publishing.
Mixed into Store, which supplies `r`, the registered script and `events_maxlen`."""

from __future__ import annotations

import json
from typing import Any

import redis

from core.ground.ids import STREAM_ID_MAX, stream_id_after
from core.ground.jsonlimits import FREE_JSON_MAX_DEPTH, depth
from core.ground.models import Event
from core.storage import keys, lua


class EventStream:
    """Event stream operations of the store."""

    r: redis.Redis
    events_maxlen: int

    def _register_event_scripts(self) -> None:
        self._publish_fenced = self.r.register_script(lua.PUBLISH_FENCED)

    def publish_fenced(self, discussion_id: str, token: int, type_: str,
                       data: dict[str, Any]) -> bool:
        """Write an event only while `token` holds the lease (e.g. a streamed reply's delta)."""
        return bool(self._publish_fenced(
            keys=[keys.lock(discussion_id), keys.events(discussion_id)],
            args=[token, self.events_maxlen, type_,
                  json.dumps(data, separators=(",", ":"), ensure_ascii=False)],
        ))

    def events_after(self, discussion_id: str, after: str, count: int = 1000) -> list[Event]:
        """Events strictly after the id `after` ('0' for all retained), oldest first."""
        start = stream_id_after(after)
        if start is None:
            return []  # nothing can follow the largest id
        raw = self.r.xrange(keys.events(discussion_id), min=start, max="+", count=count)
        return [decode_event(eid, fields) for eid, fields in raw]

    def last_event_id(self, discussion_id: str) -> str:
        raw = self.r.xrevrange(keys.events(discussion_id), count=1)
        return raw[0][0] if raw else "0-0"

    def first_event_id(self, discussion_id: str) -> str | None:
        raw = self.r.xrange(keys.events(discussion_id), count=1)
        return raw[0][0] if raw else None

    def event_lost(self, discussion_id: str, event_id: str) -> bool:
        """Whether `event_id`, at or after the first retained entry, is not in the stream:
        the stream lost it (a failover to a replica that never received it)."""
        pipe = self.r.pipeline(transaction=False)
        pipe.xrange(keys.events(discussion_id), min=event_id, max=event_id, count=1)
        pipe.xrange(keys.events(discussion_id), count=1)
        found, first = pipe.execute()
        return (not found and bool(first)
                and stream_id_key(first[0][0]) <= stream_id_key(event_id))

    def events_trimmed_after(self, discussion_id: str, after: str) -> str | None:
        """The first retained event id if some event after `after` is no longer kept, else None.

        Trimming (MAXLEN on every write, MINID by the reconciler) only ever removes the oldest
        entries, so an event after `after` is gone exactly when `after` lies before the first
        retained entry and something was trimmed. Redis 7 counts every entry ever added
        (`entries-added`), which tells whether anything was; older servers fall back to
        presuming a loss unless the first retained id is the immediate successor of `after`.
        """
        try:
            info = self.r.xinfo_stream(keys.events(discussion_id))
        except redis.ResponseError:  # no stream (yet)
            return None
        first = info.get("first-entry")
        first_id = first[0] if first else None
        wanted = stream_id_key(after)
        if first_id is None or stream_id_key(first_id) <= wanted:
            return None
        added = info.get("entries-added")
        if added is not None:
            return first_id if int(added) > int(info.get("length", 0)) else None
        head = stream_id_key(first_id)
        successor = head == (wanted[0], wanted[1] + 1) or head == (wanted[0] + 1, 0)
        return None if successor or wanted == (0, 0) else first_id



def decode_event(event_id: str, fields: dict[str, str]) -> Event:
    """A stream entry as an Event; data that will not parse is marked, not raised."""
    try:
        data = json.loads(fields.get("data") or "{}")
    except (ValueError, RecursionError):
        data = {"unreadable": True}
    if not isinstance(data, dict):
        data = {"value": data}
    elif depth(data, FREE_JSON_MAX_DEPTH + 8) > FREE_JSON_MAX_DEPTH + 8:
        data = {"unreadable": True}  # written before the input caps: too deep to encode
    return Event(id=event_id, type=fields.get("type", "unknown"), data=data)


def relay_event(event_id: str, fields: dict[str, str]) -> Event:
    """A stream entry as an Event, unvalidated: for relaying entries our own scripts wrote
    (the hub decodes every event of every watched discussion; validation was a sixth of its
    work)."""
    return Event.model_construct(id=event_id, type=fields.get("type", "unknown"),
                                 data=json.loads(fields.get("data") or "{}"))


def stream_id_key(event_id: str) -> tuple[int, int]:
    """A stream id as a sortable pair, so ids compare numerically; ValueError past Redis'
    64-bit parts."""
    ms, _, seq = event_id.partition("-")
    pair = int(ms or 0), int(seq or 0)
    if not (0 <= pair[0] <= STREAM_ID_MAX and 0 <= pair[1] <= STREAM_ID_MAX):
        raise ValueError("stream id out of range")
    return pair


# ---------------------------------------------------------------- the stream hub's reads
# One process-wide reader (api.hub) follows every watched discussion with one blocking XREAD
# on a connection of its own; these take that client.


def read_live(client: redis.Redis, positions: dict[str, str], *, count: int,
              block_ms: int) -> list[tuple[str, list[Event]]]:
    """Each discussion's events after its position (discussion id -> stream id), waiting up to
    `block_ms` for the first; (discussion id, events) for those that have any."""
    by_key = {keys.events(did): did for did in positions}
    result = client.xread({k: positions[did] for k, did in by_key.items()}, count=count,
                          block=block_ms)
    return [(by_key[k], [relay_event(eid, fields) for eid, fields in entries])
            for k, entries in result or []]


def last_id(client: redis.Redis, discussion_id: str) -> str:
    """The id of the discussion's newest event ("0-0" when it has none)."""
    raw = client.xrevrange(keys.events(discussion_id), count=1)
    return raw[0][0] if raw else "0-0"


def which_exist(client: redis.Redis, discussion_ids: list[str]) -> list[bool]:
    """Whether each discussion still exists (its state hash is there)."""
    pipe = client.pipeline(transaction=False)
    for did in discussion_ids:
        pipe.exists(keys.state(did))
    return [bool(found) for found in pipe.execute()]


def stream_ends(client: redis.Redis, discussion_ids: list[str]) -> list[str | None]:
    """The id of each discussion's last event (None: no stream), in one round trip."""
    pipe = client.pipeline(transaction=False)
    for did in discussion_ids:
        pipe.xrevrange(keys.events(did), count=1)
    return [last[0][0] if last else None for last in pipe.execute()]
