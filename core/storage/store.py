"""The Redis store: every read and atomic write of discussion state goes through here."""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Iterable, Sequence

import redis

from core.ground.clock import epoch, iso
from core.ground.errors import DiscussionNotFound
from core.ground.models import (
    DiscussionConfig,
    DiscussionState,
    Message,
    Participant,
    Session,
    Status,
    Usage,
)
from core.ground.usage import parse_usage
from core.storage import indexes, keys
from core.storage.batch_rows import BatchRows
from core.storage.commits import TurnWrites
from core.storage.events import EventStream, decode_event, stream_id_key
from core.storage.finished import FinishedIndex
from core.storage.held import HeldAndMuted
from core.storage.records import (
    PARSED_CACHE,
    Commit,
    CommitResult,
    Snapshot,
    parse_message,
    parse_state,
)
from core.storage.schedule_rows import ScheduleRows

# The shapes and helpers callers know the store by.
__all__ = ["Commit", "CommitResult", "Snapshot", "Store", "decode_event", "parse_state",
           "stream_id_key"]


class Store(TurnWrites, EventStream, HeldAndMuted, FinishedIndex):
    """Discussion state in Redis, in the seed's key layout (see core.storage.keys)."""

    def __init__(self, client: redis.Redis, *, events_maxlen: int = 10_000,
                 wait_replicas: int = 0, wait_timeout_ms: int = 1000) -> None:
        self.r = client
        self.events_maxlen = events_maxlen
        self.wait_replicas = wait_replicas
        self.wait_timeout_ms = wait_timeout_ms
        # Parsed config and participants by discussion, with the raw JSON they came from.
        # Every snapshot still reads both keys; the parse is reused only when the raw text is
        # the same, so a changed or recreated discussion is never served stale.
        self._parsed: OrderedDict[str, tuple[str, dict[str, str], DiscussionConfig,
                                             list[Participant]]] = OrderedDict()
        self.schedules = ScheduleRows(client)
        self.batches = BatchRows(client)
        self._register_turn_scripts()
        self._register_event_scripts()

    # ------------------------------------------------------------ create / read / delete

    def create(
        self,
        config: DiscussionConfig,
        participants: Sequence[Participant],
        *,
        status: Status = Status.ACTIVE,
        users: Iterable[str] = (),
        pipeline: redis.client.Pipeline | None = None,
    ) -> None:
        """Store a new discussion and its first event in one transaction (or queue the writes
        on the caller's `pipeline`, which then decides when and how they run)."""
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
        config_json = config.model_dump_json()
        parts_json = {p.participant_id: p.model_dump_json() for p in participants}
        # Storage counted for quotas: the records here, then every message's (COMMIT).
        size = len(config_json) + sum(len(v) for v in parts_json.values())
        state["bytes"] = str(size)
        if config.owner:
            state["storage_key"] = keys.user_storage(config.owner)
        event = {"status": status.value, "previous": None, "reason": "created"}
        pipe = self.r.pipeline(transaction=True) if pipeline is None else pipeline
        pipe.set(keys.session(did), config_json)
        pipe.hset(keys.participants(did), mapping=parts_json)
        if config.owner:
            pipe.incrby(keys.user_storage(config.owner), size)
        pipe.hset(keys.state(did), mapping=state)
        pipe.xadd(
            keys.events(did),
            {"type": "status", "data": json.dumps(event)},
            maxlen=self.events_maxlen,
            approximate=True,
        )
        pipe.sadd(keys.ACTIVE, did)
        created = epoch(config.created_at)
        pipe.zadd(keys.ALL, {did: created})
        indexes.count_created(pipe, status.value)
        for user in set(users):
            pipe.sadd(keys.user_discussions(user), did)
            pipe.zadd(keys.user_listing(user), {did: created})
        if pipeline is None:
            pipe.execute()

    def exists(self, discussion_id: str) -> bool:
        return bool(self.r.exists(keys.state(discussion_id)))

    def config(self, discussion_id: str) -> DiscussionConfig:
        raw = self.r.get(keys.session(discussion_id))
        if raw is None:
            raise DiscussionNotFound(f"discussion {discussion_id} not found")
        return DiscussionConfig.model_validate_json(raw)

    def snapshot(self, discussion_id: str, window: int) -> Snapshot:
        """Config, participants in speaking order, state and the last `window` messages
        (none for a window of 0: a post's checks never look at them)."""
        pipe = self.r.pipeline(transaction=False)
        pipe.get(keys.session(discussion_id))
        pipe.hgetall(keys.participants(discussion_id))
        pipe.hgetall(keys.state(discussion_id))
        pipe.smembers(keys.muted(discussion_id))
        pipe.hlen(keys.held(discussion_id))
        if window > 0:
            pipe.lrange(keys.messages(discussion_id), -window, -1)
        raw_cfg, raw_parts, raw_state, muted, held, *rest = pipe.execute()
        raw_msgs = rest[0] if rest else []
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
            recent=[parse_message(m) for m in raw_msgs],
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
        return [parse_message(m) for m in raw], int(total)


    def claim(self, key: str, interval_s: float) -> bool:
        """True for the one caller per `interval_s` that sets the claim `key` first."""
        return bool(self.r.set(key, "1", nx=True, px=int(interval_s * 1000)))

    def trim_finished(self, after_s: float, tail: int, limit: int = 500) -> list[str]:
        """Trim the events of discussions finished `after_s` ago to `tail` entries (at most
        `limit` of them); the ids trimmed (core.storage.indexes.trim_finished)."""
        return indexes.trim_finished(self.r, after_s=after_s, tail=tail, limit=limit)

    def active_ids(self) -> list[str]:
        return list(self.r.smembers(keys.ACTIVE))

    def delete(self, discussion_id: str) -> None:
        """Remove every key of the discussion and its id from every index, in one script:
        its own keys are listed (fixed keys, its idempotency index), never searched for."""
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
        indexes.delete_discussion(self.r, discussion_id, users)
