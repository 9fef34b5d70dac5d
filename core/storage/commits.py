"""The fenced writes of a step: the lease, turn announcements, cached replies and the one
atomic commit (Lua in core.storage.lua). Mixed into Store, which supplies `r`, the registered
scripts and `events_maxlen`."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

import redis

from core.ground.clock import iso
from core.ground.errors import (
    AttemptsExhausted,
    Conflict,
    DiscussionNotFound,
    StaleLease,
    StorageFull,
    StorageQuotaExceeded,
)
from core.ground.models import Message, Status
from core.storage import keys, lua
from core.storage.records import (
    Commit,
    CommitResult,
    dump_message,
    parse_message,
    state_value,
)


class ReplicaTimeout(redis.TimeoutError):
    """A commit was not acknowledged by REDIS_WAIT_REPLICAS replicas in time."""


class TurnWrites:
    """Lease, turn and commit operations of the store."""

    r: redis.Redis
    events_maxlen: int
    wait_replicas: int = 0  # REDIS_WAIT_REPLICAS: replicas that must acknowledge a commit
    wait_timeout_ms: int = 1000

    def _register_turn_scripts(self) -> None:
        self._acquire = self.r.register_script(lua.ACQUIRE)
        self._release = self.r.register_script(lua.RELEASE)
        self._begin = self.r.register_script(lua.BEGIN_TURN)
        self._commit = self.r.register_script(lua.COMMIT)
        self._cache_reply = self.r.register_script(lua.CACHE_REPLY)

    def acquire(self, discussion_id: str, ttl_ms: int, *, owner: str = "") -> int | None:
        """Take the step lease; its fencing token, or None when another step holds it.

        `owner` (a worker's name and boot) lets the recovery sweep free the lease at once
        when that worker is known dead."""
        token = int(self._acquire(keys=[keys.state(discussion_id), keys.lock(discussion_id)],
                                  args=[ttl_ms, owner]))
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

    def remembered(self, discussion_id: str, participant_id: str,
                   idempotency_key: str) -> Message | None:
        """The message this participant's post with this Idempotency-Key created, while
        remembered (another participant's use of the same key is theirs alone)."""
        raw = self.r.get(keys.idempotency(discussion_id, participant_id, idempotency_key))
        if raw and self.wait_replicas:
            # A retry of an unacknowledged post is acknowledged only once replicas are back
            # (a replica that is online again has resynced everything the primary has).
            acked = int(self.r.execute_command("WAIT", self.wait_replicas,
                                               self.wait_timeout_ms))
            if acked < self.wait_replicas:
                raise ReplicaTimeout(f"post on {discussion_id} acknowledged by {acked} of "
                                     f"{self.wait_replicas} replicas")
        return parse_message(raw) if raw else None

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
        participant_id: str | None = None,
        max_bytes: int = 0,
        storage_quota: int = 0,
    ) -> CommitResult:
        """Apply `change` atomically. With a token and turn it is fenced: a stale step fails.

        `begin_next` (the next turn's `turn_started` data) makes a fenced commit also do what
        `begin_turn` does for the next turn, in the same round trip, provided the discussion
        is still active and its seq is then `expect_seq` (nobody posted in between, so the
        caller's prediction of the next speaker holds); `next_begun` says whether it did.

        An idempotency key is the poster's (`participant_id`, by default the message's author):
        a remembered message is replayed to them only. `max_bytes` and `storage_quota` (0: no
        check) refuse a message that would take the discussion, or its owner's discussions,
        past that many bytes (StorageFull, StorageQuotaExceeded: 413).
        """
        body = dump_message(change.message) if change.message else ""
        updates = {k: state_value(v) for k, v in change.updates.items()}
        events = [[t, json.dumps(d, separators=(",", ":"))] for t, d in change.events]
        poster = participant_id or (change.message.participant_id if change.message else "")
        idem_key = keys.idempotency(discussion_id, poster, idempotency_key or "-")
        res = self._commit_maybe_waiting(
            discussion_id,
            keys=[
                keys.state(discussion_id),
                keys.messages(discussion_id),
                keys.events(discussion_id),
                keys.lock(discussion_id),
                keys.replies(discussion_id),
                keys.ACTIVE,
                idem_key,
                keys.usage(discussion_id),
                keys.FINISHED,
                keys.STATUS_COUNTS,
                keys.UNTRIMMED,
                keys.idempotency_index(discussion_id),
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
                poster if idempotency_key else "",
                max_bytes or "",
                storage_quota or "",
                repr(time.time()),
                "" if change.max_seq is None else change.max_seq,
            ],
        )
        code = int(res[0])
        if code == 2:
            msg = parse_message(res[1])
            return CommitResult(seq=msg.seq, turn=msg.turn or 0, event_id="", message=msg,
                                replayed=True)
        if code == 0:
            reason, detail = res[1], res[2]
            if reason == "gone":
                raise DiscussionNotFound(f"discussion {discussion_id} not found")
            if reason == "status":
                raise Conflict(f"discussion {discussion_id} is {detail}", status=detail)
            if reason == "storage_full":
                raise StorageFull(f"discussion {discussion_id} holds the {detail} bytes "
                                  "MAX_DISCUSSION_BYTES allows", limit=int(detail))
            if reason == "storage_quota":
                raise StorageQuotaExceeded(
                    f"your discussions hold the {detail} bytes USER_STORAGE_BYTES allows; "
                    "delete some (finished ones also expire after RETENTION_FINISHED_S)",
                    limit=int(detail))
            if reason == "idempotency":
                raise Conflict("this Idempotency-Key was used by another participant")
            if reason == "max_messages":
                raise Conflict(f"discussion {discussion_id} already holds its max_messages "
                               f"({detail})", reason="max_messages")
            raise StaleLease(f"commit refused: {reason}", reason=reason, detail=detail)
        seq = int(res[1])
        message = change.message.model_copy(update={"seq": seq}) if change.message else None
        begun = len(res) > 4 and int(res[4]) == 1
        return CommitResult(seq=seq, turn=int(res[2]), event_id=res[3] or "", message=message,
                            next_begun=begun,
                            next_cached=json.loads(res[5]) if begun and res[5] else None,
                            stored_bytes=int(res[6]) if len(res) > 6 else 0)

    def _commit_maybe_waiting(self, discussion_id: str, keys: list[str],
                              args: list[Any]) -> Any:
        """Run the commit script; with `wait_replicas`, also WAIT for that many replicas to
        acknowledge it, on the same connection and in the same round trip (a pipeline).

        A commit the replicas did not acknowledge in time has happened on the primary but
        could be lost by a failover: ReplicaTimeout (a redis.TimeoutError) says so, so a step
        stops as on any Redis error and an API post answers 503 (retried with its
        Idempotency-Key it is not posted twice, and answers 201 once a replica has it)."""
        if not self.wait_replicas:
            return self._commit(keys=keys, args=args)
        # EVALSHA by hand: redis-py checks SCRIPT EXISTS before every pipeline that carries a
        # Script object, a second round trip per commit.
        for attempt in range(2):
            pipe = self.r.pipeline(transaction=False)
            pipe.evalsha(self._commit.sha, len(keys), *keys, *args)
            pipe.execute_command("WAIT", self.wait_replicas, self.wait_timeout_ms)
            try:
                res, acked = pipe.execute()
                break
            except redis.exceptions.NoScriptError:
                if attempt:
                    raise
                self.r.script_load(lua.COMMIT)  # a restarted or failed-over server
        if int(res[0]) in (1, 2) and int(acked) < self.wait_replicas:
            raise ReplicaTimeout(f"commit on {discussion_id} acknowledged by {acked} of "
                                 f"{self.wait_replicas} replicas within "
                                 f"{self.wait_timeout_ms} ms")
        return res
