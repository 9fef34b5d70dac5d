"""The Redis store: every read and atomic write of discussion state goes through here."""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis

from core.ground.clock import iso
from core.ground.errors import AttemptsExhausted, Conflict, DiscussionNotFound, StaleLease
from core.ground.models import (
    DiscussionConfig,
    DiscussionState,
    Event,
    Message,
    Participant,
    Session,
    Status,
    Usage,
)
from core.ground.usage import parse_usage
from core.storage import keys, lua


@dataclass
class Snapshot:
    """Everything a step needs, read in one round trip."""

    config: DiscussionConfig
    participants: list[Participant]
    state: DiscussionState
    recent: list[Message]
    muted: frozenset[str] = frozenset()
    held_count: int = 0

    def participant(self, participant_id: str) -> Participant | None:
        for p in self.participants:
            if p.participant_id == participant_id:
                return p
        return None


@dataclass
class CommitResult:
    seq: int
    turn: int
    event_id: str
    message: Message | None = None
    replayed: bool = False
    # Set when the commit also began the next turn (see `begin_next`): its cached reply, if any.
    next_begun: bool = False
    next_cached: dict[str, Any] | None = None


@dataclass
class Commit:
    """One atomic change: at most one message, state updates, and events after it."""

    message: Message | None = None
    updates: dict[str, Any] = field(default_factory=dict)
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    advance_turn: bool = False
    allowed_statuses: Sequence[Status] = ()
    # Added to the usage hash (`{scope}:{metric}` -> number) in the same atomic step.
    increments: dict[str, float] = field(default_factory=dict)


# Discussions whose parsed config and participants a Store keeps (a few KB each).
PARSED_CACHE = 2048


def _dump_message(message: Message) -> str:
    # pydantic-core writes compact UTF-8 JSON itself: no dict round trip (every turn and post).
    return message.model_dump_json(exclude={"seq"})


def _state_value(value: Any) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    if value is None:
        return ""
    return str(value)


def parse_state(raw: dict[str, str]) -> DiscussionState:
    """Build a DiscussionState from the `:state` hash."""
    return DiscussionState(
        status=Status(raw.get("status") or Status.PENDING),
        turn=int(raw.get("turn") or 0),
        seq=int(raw.get("seq") or 0),
        current_round=int(raw.get("current_round") or 0),
        stop_reason=raw.get("stop_reason") or None,
        error=raw.get("error") or None,
        waiting_for=raw.get("waiting_for") or None,
        wait_deadline=raw.get("wait_deadline") or None,
        proxy_turn=int(raw["proxy_turn"]) if raw.get("proxy_turn") else None,
        floor=json.loads(raw["floor"]) if raw.get("floor") else None,
        tokens_used=int(raw.get("tokens_used") or 0),
        outcome=json.loads(raw["outcome"]) if raw.get("outcome") else None,
        pstate=json.loads(raw["pstate"]) if raw.get("pstate") else {},
        updated_at=raw.get("updated_at") or None,
    )


class Store:
    """Discussion state in Redis, in the seed's key layout (see core.storage.keys)."""

    def __init__(self, client: redis.Redis, *, events_maxlen: int = 10_000) -> None:
        self.r = client
        self.events_maxlen = events_maxlen
        # Parsed config and participants by discussion, with the raw JSON they came from.
        # Every snapshot still reads both keys; the parse is reused only when the raw text is
        # the same, so a changed or recreated discussion is never served stale.
        self._parsed: OrderedDict[str, tuple[str, dict[str, str], DiscussionConfig,
                                             list[Participant]]] = OrderedDict()
        self._acquire = client.register_script(lua.ACQUIRE)
        self._release = client.register_script(lua.RELEASE)
        self._begin = client.register_script(lua.BEGIN_TURN)
        self._commit = client.register_script(lua.COMMIT)
        self._cache_reply = client.register_script(lua.CACHE_REPLY)
        self._publish_fenced = client.register_script(lua.PUBLISH_FENCED)

    # ------------------------------------------------------------ create / read / delete

    def create(
        self,
        config: DiscussionConfig,
        participants: Sequence[Participant],
        *,
        status: Status = Status.ACTIVE,
        users: Iterable[str] = (),
    ) -> None:
        """Store a new discussion and its first event in one transaction."""
        did = config.id
        now = iso()
        state = {
            "status": status.value,
            "turn": "0",
            "seq": "0",
            "current_round": "0",
            "fence": "0",
            "updated_at": now,
        }
        event = {"status": status.value, "previous": None, "reason": "created"}
        pipe = self.r.pipeline(transaction=True)
        pipe.set(keys.session(did), config.model_dump_json())
        pipe.hset(
            keys.participants(did),
            mapping={p.participant_id: p.model_dump_json() for p in participants},
        )
        pipe.hset(keys.state(did), mapping=state)
        pipe.xadd(
            keys.events(did),
            {"type": "status", "data": json.dumps(event)},
            maxlen=self.events_maxlen,
            approximate=True,
        )
        pipe.sadd(keys.ACTIVE, did)
        pipe.zadd(keys.ALL, {did: _epoch(config.created_at)})
        for user in set(users):
            pipe.sadd(keys.user_discussions(user), did)
        pipe.execute()

    def exists(self, discussion_id: str) -> bool:
        return bool(self.r.exists(keys.state(discussion_id)))

    def config(self, discussion_id: str) -> DiscussionConfig:
        raw = self.r.get(keys.session(discussion_id))
        if raw is None:
            raise DiscussionNotFound(f"discussion {discussion_id} not found")
        return DiscussionConfig.model_validate_json(raw)

    def snapshot(self, discussion_id: str, window: int) -> Snapshot:
        """Config, participants in speaking order, state and the last `window` messages."""
        pipe = self.r.pipeline(transaction=False)
        pipe.get(keys.session(discussion_id))
        pipe.hgetall(keys.participants(discussion_id))
        pipe.hgetall(keys.state(discussion_id))
        pipe.lrange(keys.messages(discussion_id), -window, -1)
        pipe.smembers(keys.muted(discussion_id))
        pipe.hlen(keys.held(discussion_id))
        raw_cfg, raw_parts, raw_state, raw_msgs, muted, held = pipe.execute()
        snap = self._build_snapshot(discussion_id, raw_cfg, raw_parts, raw_state, raw_msgs)
        snap.muted, snap.held_count = frozenset(muted), int(held)
        return snap

    def _build_snapshot(self, discussion_id: str, raw_cfg: str | None, raw_parts: dict[str, str],
                        raw_state: dict[str, str], raw_msgs: list[str]) -> Snapshot:
        if raw_cfg is None or not raw_state:
            raise DiscussionNotFound(f"discussion {discussion_id} not found")
        config, participants = self._config_and_participants(discussion_id, raw_cfg, raw_parts)
        return Snapshot(
            config=config,
            participants=list(participants),
            state=parse_state(raw_state),
            recent=[Message.model_validate_json(m) for m in raw_msgs],
        )

    def _config_and_participants(self, discussion_id: str, raw_cfg: str, raw_parts: dict[str, str]
                                 ) -> tuple[DiscussionConfig, list[Participant]]:
        """The parsed config and participants in speaking order; parsed once per process
        while their JSON stays the same (every post and step reads them)."""
        hit = self._parsed.get(discussion_id)
        if hit is not None and hit[0] == raw_cfg and hit[1] == raw_parts:
            self._parsed.move_to_end(discussion_id)
            return hit[2], hit[3]
        config = DiscussionConfig.model_validate_json(raw_cfg)
        by_id = {pid: Participant.model_validate_json(v) for pid, v in raw_parts.items()}
        order = config.metadata.get("_participant_order") or list(by_id)
        participants = [by_id[pid] for pid in order if pid in by_id]
        self._parsed[discussion_id] = (raw_cfg, raw_parts, config, participants)
        while len(self._parsed) > PARSED_CACHE:
            self._parsed.popitem(last=False)
        return config, participants

    def members(self, discussion_id: str) -> tuple[DiscussionConfig, list[Participant]]:
        """The config and participants only (for access checks), in one round trip."""
        pipe = self.r.pipeline(transaction=False)
        pipe.get(keys.session(discussion_id))
        pipe.hgetall(keys.participants(discussion_id))
        raw_cfg, raw_parts = pipe.execute()
        if raw_cfg is None:
            raise DiscussionNotFound(f"discussion {discussion_id} not found")
        config, participants = self._config_and_participants(discussion_id, raw_cfg, raw_parts)
        return config, list(participants)

    def session(self, discussion_id: str, *, message_limit: int = 100) -> Session:
        """The seed's Session view: config, participants, state and the latest messages."""
        snap = self.snapshot(discussion_id, message_limit)
        return self._session_of(snap, self.usage(discussion_id))

    def usage(self, discussion_id: str) -> Usage:
        """Calls, tokens and cost so far: in total, per participant, for orchestration."""
        return parse_usage(self.r.hgetall(keys.usage(discussion_id)))

    @staticmethod
    def _session_of(snap: Snapshot, usage: Usage | None = None) -> Session:
        cfg, st = snap.config, snap.state
        metadata = {k: v for k, v in cfg.metadata.items() if not k.startswith("_")}
        return Session(
            **cfg.rules(),
            id=cfg.id,
            topic=cfg.topic,
            protocol=cfg.protocol,
            status=st.status,
            participants=snap.participants,
            messages=snap.recent,
            current_round=st.current_round,
            max_rounds=cfg.max_rounds,
            max_messages=cfg.max_messages,
            message_count=st.seq,
            stop_reason=st.stop_reason,
            error=st.error,
            waiting_for=st.waiting_for,
            wait_deadline=st.wait_deadline,
            muted=sorted(snap.muted),
            floor=st.floor,
            held_count=snap.held_count,
            tokens_used=st.tokens_used,
            outcome=st.outcome,
            owner=cfg.owner,
            metadata=metadata,
            usage=usage or Usage(),
            created_at=cfg.created_at,
            updated_at=st.updated_at,
        )

    def session_with_cursor(self, discussion_id: str, limit: int) -> tuple[Session, str]:
        """The session with its latest `limit` messages and the id of the last event they
        cover, read in one transaction so live events after that id never repeat them."""
        pipe = self.r.pipeline(transaction=True)
        pipe.get(keys.session(discussion_id))
        pipe.hgetall(keys.participants(discussion_id))
        pipe.hgetall(keys.state(discussion_id))
        pipe.lrange(keys.messages(discussion_id), -limit, -1)
        pipe.xrevrange(keys.events(discussion_id), count=1)
        pipe.smembers(keys.muted(discussion_id))
        pipe.hlen(keys.held(discussion_id))
        pipe.hgetall(keys.usage(discussion_id))
        raw_cfg, raw_parts, raw_state, raw_msgs, last, muted, held, raw_usage = pipe.execute()
        snap = self._build_snapshot(discussion_id, raw_cfg, raw_parts, raw_state, raw_msgs)
        snap.muted, snap.held_count = frozenset(muted), int(held)
        return self._session_of(snap, parse_usage(raw_usage)), (last[0][0] if last else "0-0")

    def state(self, discussion_id: str) -> DiscussionState:
        raw = self.r.hgetall(keys.state(discussion_id))
        if not raw:
            raise DiscussionNotFound(f"discussion {discussion_id} not found")
        return parse_state(raw)

    def messages(self, discussion_id: str, offset: int, limit: int) -> tuple[list[Message], int]:
        """A page of the transcript in `seq` order, and the total count."""
        pipe = self.r.pipeline(transaction=False)
        pipe.lrange(keys.messages(discussion_id), offset, offset + limit - 1)
        pipe.llen(keys.messages(discussion_id))
        raw, total = pipe.execute()
        return [Message.model_validate_json(m) for m in raw], int(total)

    def list_ids(self, *, user: str | None = None, active_only: bool = False) -> list[str]:
        """Discussion ids, newest first; narrowed to a user's index or the active set."""
        ids: list[str] = list(self.r.zrevrange(keys.ALL, 0, -1))
        if active_only:
            active = set(self.r.smembers(keys.ACTIVE))
            ids = [i for i in ids if i in active]
        if user is not None:
            mine = set(self.r.smembers(keys.user_discussions(user)))
            ids = [i for i in ids if i in mine]
        return ids

    def active_ids(self) -> list[str]:
        return list(self.r.smembers(keys.ACTIVE))

    def delete(self, discussion_id: str) -> None:
        """Remove every key of the discussion and its id from every index."""
        raw_parts = self.r.hgetall(keys.participants(discussion_id))
        users = set()
        cfg_raw = self.r.get(keys.session(discussion_id))
        if cfg_raw is None and not raw_parts:
            raise DiscussionNotFound(f"discussion {discussion_id} not found")
        if cfg_raw:
            owner = DiscussionConfig.model_validate_json(cfg_raw).owner
            if owner:
                users.add(owner)
        for raw in raw_parts.values():
            p = Participant.model_validate_json(raw)
            if p.user_id:
                users.add(p.user_id)
        idem = list(self.r.scan_iter(match=keys.idempotency_pattern(discussion_id), count=500))
        pipe = self.r.pipeline(transaction=True)
        pipe.delete(*keys.discussion_keys(discussion_id), *idem)
        pipe.srem(keys.ACTIVE, discussion_id)
        pipe.zrem(keys.ALL, discussion_id)
        for user in users:
            pipe.srem(keys.user_discussions(user), discussion_id)
        pipe.execute()

    # ------------------------------------------------------------ leases and commits

    def acquire(self, discussion_id: str, ttl_ms: int) -> int | None:
        """Take the step lease; its fencing token, or None when another step holds it."""
        token = int(self._acquire(keys=[keys.state(discussion_id), keys.lock(discussion_id)],
                                  args=[ttl_ms]))
        if token < 0:
            raise DiscussionNotFound(f"discussion {discussion_id} not found")
        return token or None

    def release(self, discussion_id: str, token: int, *,
                park_at_seq: int | None = None) -> tuple[int, Status | None]:
        """Drop the lease if still ours; the discussion's seq and status at that moment.

        `park_at_seq` marks an active discussion idle (the reconciler skips it) when its seq
        is still the one the step saw.
        """
        _, seq, status = self._release(
            keys=[keys.lock(discussion_id), keys.state(discussion_id)],
            args=[token, "" if park_at_seq is None else park_at_seq],
        )
        return int(seq), (Status(status) if status else None)

    def begin_turn(
        self, discussion_id: str, token: int, turn: int, started: dict[str, Any],
        max_attempts: int = 1_000_000,
    ) -> dict[str, Any] | None:
        """Announce a turn once (fenced); the cached reply if an earlier attempt got one.

        Raises AttemptsExhausted when the turn was already begun `max_attempts` times.
        """
        ok, payload = self._begin(
            keys=[
                keys.state(discussion_id),
                keys.lock(discussion_id),
                keys.events(discussion_id),
                keys.replies(discussion_id),
            ],
            args=[token, turn, json.dumps(started), self.events_maxlen, max_attempts],
        )
        if int(ok) == 2:
            raise AttemptsExhausted(f"turn {turn} of {discussion_id} was begun {payload} times "
                                    "without completing", attempts=int(payload))
        if not int(ok):
            raise StaleLease(f"turn {turn} of {discussion_id}: {payload}", reason=payload)
        return json.loads(payload) if payload else None

    def cache_reply(self, discussion_id: str, turn: int, reply: dict[str, Any]) -> None:
        """Keep an agent's reply until its turn commits, so a re-run never pays twice."""
        self._cache_reply(keys=[keys.state(discussion_id), keys.replies(discussion_id)],
                          args=[turn, json.dumps(reply)])

    def remembered(self, discussion_id: str, idempotency_key: str) -> Message | None:
        """The message a post with this Idempotency-Key created, while remembered."""
        raw = self.r.get(keys.idempotency(discussion_id, idempotency_key))
        return Message.model_validate_json(raw) if raw else None

    def cached_replies(self, discussion_id: str, turns: Sequence[int]) -> dict[int, dict]:
        """The cached replies among `turns` (turn -> reply JSON)."""
        if not turns:
            return {}
        raw = self.r.hmget(keys.replies(discussion_id), [str(t) for t in turns])
        return {t: json.loads(v) for t, v in zip(turns, raw, strict=True) if v}

    def commit(
        self,
        discussion_id: str,
        change: Commit,
        *,
        token: int | None = None,
        turn: int | None = None,
        lease_ttl_ms: int = 0,
        idempotency_key: str | None = None,
        idempotency_ttl_s: int = 0,
        begin_next: dict[str, Any] | None = None,
        expect_seq: int | None = None,
    ) -> CommitResult:
        """Apply `change` atomically. With a token and turn it is fenced: a stale step fails.

        `begin_next` (the next turn's `turn_started` data) makes a fenced commit also do what
        `begin_turn` does for the next turn, in the same round trip, provided the discussion
        is still active and its seq is then `expect_seq` (nobody posted in between, so the
        caller's prediction of the next speaker holds); `next_begun` says whether it did.
        """
        body = _dump_message(change.message) if change.message else ""
        updates = {k: _state_value(v) for k, v in change.updates.items()}
        events = [[t, json.dumps(d, separators=(",", ":"))] for t, d in change.events]
        idem_key = (
            keys.idempotency(discussion_id, idempotency_key)
            if idempotency_key
            else keys.idempotency(discussion_id, "-")
        )
        res = self._commit(
            keys=[
                keys.state(discussion_id),
                keys.messages(discussion_id),
                keys.events(discussion_id),
                keys.lock(discussion_id),
                keys.replies(discussion_id),
                keys.ACTIVE,
                idem_key,
                keys.usage(discussion_id),
            ],
            args=[
                "" if token is None else token,
                "" if turn is None else turn,
                body,
                json.dumps(updates),
                json.dumps(events),
                self.events_maxlen,
                lease_ttl_ms,
                ",".join(s.value for s in change.allowed_statuses),
                "1" if change.advance_turn else "0",
                # The turn's cached reply goes only when the turn itself is done.
                "" if turn is None or not change.advance_turn else turn,
                discussion_id,
                idempotency_ttl_s if idempotency_key else 0,
                iso(),
                json.dumps({k: repr(float(v)) for k, v in change.increments.items()})
                if change.increments else "",
                json.dumps(begin_next) if begin_next and token is not None else "",
                "" if expect_seq is None else expect_seq,
            ],
        )
        code = int(res[0])
        if code == 2:
            msg = Message.model_validate_json(res[1])
            return CommitResult(seq=msg.seq, turn=msg.turn or 0, event_id="", message=msg,
                                replayed=True)
        if code == 0:
            reason, detail = res[1], res[2]
            if reason == "gone":
                raise DiscussionNotFound(f"discussion {discussion_id} not found")
            if reason == "status":
                raise Conflict(f"discussion {discussion_id} is {detail}", status=detail)
            raise StaleLease(f"commit refused: {reason}", reason=reason, detail=detail)
        seq = int(res[1])
        message = change.message.model_copy(update={"seq": seq}) if change.message else None
        begun = len(res) > 4 and int(res[4]) == 1
        return CommitResult(seq=seq, turn=int(res[2]), event_id=res[3] or "", message=message,
                            next_begun=begun,
                            next_cached=json.loads(res[5]) if begun and res[5] else None)

    def publish_fenced(self, discussion_id: str, token: int, type_: str,
                       data: dict[str, Any]) -> bool:
        """Write an event only while `token` holds the lease (e.g. a streamed reply's delta)."""
        return bool(self._publish_fenced(
            keys=[keys.lock(discussion_id), keys.events(discussion_id)],
            args=[token, self.events_maxlen, type_,
                  json.dumps(data, separators=(",", ":"), ensure_ascii=False)],
        ))

    # ------------------------------------------------------------ events

    def events_after(self, discussion_id: str, after: str, count: int = 1000) -> list[Event]:
        """Events strictly after the id `after` ('0' for all retained), oldest first."""
        start = "(" + after if after not in ("0", "0-0", "-") else "-"
        raw = self.r.xrange(keys.events(discussion_id), min=start, max="+", count=count)
        return [decode_event(eid, fields) for eid, fields in raw]

    def last_event_id(self, discussion_id: str) -> str:
        raw = self.r.xrevrange(keys.events(discussion_id), count=1)
        return raw[0][0] if raw else "0-0"

    def first_event_id(self, discussion_id: str) -> str | None:
        raw = self.r.xrange(keys.events(discussion_id), count=1)
        return raw[0][0] if raw else None

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
    """A stream entry as an Event."""
    return Event(id=event_id, type=fields.get("type", "unknown"),
                 data=json.loads(fields.get("data") or "{}"))


def _epoch(ts: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def stream_id_key(event_id: str) -> tuple[int, int]:
    """A stream id as a sortable pair, so ids compare numerically."""
    ms, _, seq = event_id.partition("-")
    return int(ms or 0), int(seq or 0)
