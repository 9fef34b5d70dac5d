"""Every Redis key this service uses is built here and nowhere else (README: "Redis keys").

The seed's layout is kept; `:events`, `:fence`-free leases and the reply cache extend it.
"""

from __future__ import annotations

import hashlib

ACTIVE = "discussions:active"  # set of discussion ids not yet in a terminal state
ALL = "discussions:all"  # zset id -> created-at epoch seconds, for listing
STATUS_COUNTS = "discussions:by_status"  # hash status -> stored discussions in it (/metrics)
# zset id -> epoch seconds it finished: retention deletes finished discussions by this.
FINISHED = "discussions:finished"
# zset id -> epoch seconds it finished (Redis clock), until its events stream is trimmed.
UNTRIMMED = "discussions:untrimmed"


def session(discussion_id: str) -> str:
    """JSON of the immutable DiscussionConfig."""
    return f"discussion:{discussion_id}:session"


def messages(discussion_id: str) -> str:
    """List of message JSON, in `seq` order (index = seq - 1)."""
    return f"discussion:{discussion_id}:messages"


def participants(discussion_id: str) -> str:
    """Hash participant_id -> Participant JSON."""
    return f"discussion:{discussion_id}:participants"


def state(discussion_id: str) -> str:
    """Hash of DiscussionState fields plus the lease's fencing counter."""
    return f"discussion:{discussion_id}:state"


def lock(discussion_id: str) -> str:
    """The step lease: holds the fencing token of the step that may commit turns."""
    return f"discussion:{discussion_id}:lock"


def events(discussion_id: str) -> str:
    """Redis Stream of every event of the discussion; entry ids are the event ids."""
    return f"discussion:{discussion_id}:events"


def replies(discussion_id: str) -> str:
    """Hash turn -> agent reply JSON obtained but not yet committed (the per-turn result cache)."""
    return f"discussion:{discussion_id}:replies"


def agent_state(discussion_id: str) -> str:
    """Hash participant_id -> a stateful agent's saved state (core.storage.agent_state)."""
    return f"discussion:{discussion_id}:agent_state"


def held(discussion_id: str) -> str:
    """Hash held_id -> Message JSON: posts waiting for a moderator (`require_approval`)."""
    return f"discussion:{discussion_id}:held"


def muted(discussion_id: str) -> str:
    """Set of participant ids a moderator muted."""
    return f"discussion:{discussion_id}:muted"


def nudge(discussion_id: str) -> str:
    """Set (with a TTL) when the reconciler re-enqueued a step, so it nudges once per window."""
    return f"discussion:{discussion_id}:nudge"


def usage(discussion_id: str) -> str:
    """Hash `{scope}:{metric}` -> number: calls, retries, tokens, cost, latency per participant,
    for the orchestration's own calls, and in total (see core.ground.usage)."""
    return f"discussion:{discussion_id}:usage"


def idempotency(discussion_id: str, participant_id: str, key: str) -> str:
    """A posted message's response, remembered under the poster's Idempotency-Key.

    The client's key is hashed with the participant who posted, so it never becomes part of a
    key name (`zz:session` cannot make a key that parses as a discussion's) and two people
    using the same key never share one."""
    digest = hashlib.sha256(f"{participant_id}\0{key}".encode()).hexdigest()[:32]
    return f"discussion:{discussion_id}:idem:{digest}"


def idempotency_index(discussion_id: str) -> str:
    """Zset of the discussion's live idempotency keys -> their expiry (epoch s): what a
    delete removes without scanning the keyspace."""
    return f"discussion:{discussion_id}:idem_keys"


def user_discussions(user_id: str) -> str:
    """The seed's per-user index: set of discussion ids the user created or takes part in."""
    return f"user:{user_id}:discussions"


def user_listing(user_id: str) -> str:
    """Zset discussion id -> created-at epoch seconds of the user's index (the same ids as
    `user_discussions`, ordered for cursor paging: a listing costs the page, not the total)."""
    return f"user:{user_id}:listing"


def user_active_owned(user_id: str) -> str:
    """Set of discussion ids a user created that were not finished at the last count (quota)."""
    return f"user:{user_id}:active_owned"


def user_spend(user_id: str, day: str) -> str:
    """Hash `usd`, `tokens`: what a user's agents cost on one UTC day (YYYYMMDD)."""
    return f"user:{user_id}:spend:{day}"


def user_storage(user_id: str) -> str:
    """Bytes of message records in the discussions a user owns (the storage quota's count)."""
    return f"user:{user_id}:storage"


def user_sockets(user_id: str) -> str:
    """Zset connection id -> expiry (epoch s): the user's open WebSockets, across processes."""
    return f"user:{user_id}:sockets"


def user_api_keys(user_id: str) -> str:
    """Set of the ids of a user's API keys."""
    return f"user:{user_id}:apikeys"


def api_key(key_id: str) -> str:
    """Hash of one API key: `user_id`, `name`, `hash` (SHA-256 of the secret), `created_at`."""
    return f"apikey:{key_id}"


# flask-limiter's counters live under this prefix (the library builds the rest of each key).
RATE_LIMIT_PREFIX = "ratelimit"


def discussion_keys(discussion_id: str) -> list[str]:
    """Every fixed key of one discussion (its idempotency keys are listed in its index)."""
    return [
        session(discussion_id),
        messages(discussion_id),
        participants(discussion_id),
        state(discussion_id),
        lock(discussion_id),
        events(discussion_id),
        replies(discussion_id),
        agent_state(discussion_id),
        held(discussion_id),
        muted(discussion_id),
        nudge(discussion_id),
        audit(discussion_id),
        usage(discussion_id),
        idempotency_index(discussion_id),
    ]


def audit(discussion_id: str) -> str:
    """Redis Stream of the discussion's audit log (who did what, when)."""
    return f"discussion:{discussion_id}:audit"


# ---------------------------------------------------------------- operations


WORKER_HEARTBEATS = "workers:heartbeats"  # zset worker hostname -> last heartbeat epoch seconds
WORKER_BOOTS = "workers:boots"  # hash worker hostname -> id of its current boot (lease owners)
RECOVERY_SWEEP = "recovery:sweep"  # short-lived claim so one worker per interval sweeps
SCHEDULES = "schedules:all"  # hash schedule id -> Schedule JSON
SCHEDULES_NEXT = "schedules:next"  # zset schedule id -> next slot epoch (absent when paused)
BATCHES = "batches:all"  # zset batch id -> created-at epoch seconds
BATCHES_ACTIVE = "batches:active"  # set of batch ids still starting or running discussions
RETENTION_SWEEP = "retention:sweep"  # short-lived claim so one tick per interval sweeps
# Set once every discussion that finished before the index existed has been added to it.
RETENTION_INDEXED = "retention:indexed"


def schedule_runs(schedule_id: str) -> str:
    """Hash slot epoch -> discussion id; HSETNX on a slot is its exactly-once claim."""
    return f"schedule:{schedule_id}:runs"


def batch(batch_id: str) -> str:
    """JSON of the Batch (template, items, cap, status)."""
    return f"batch:{batch_id}"


def batch_pending(batch_id: str) -> str:
    """List of item indexes not yet started, in order."""
    return f"batch:{batch_id}:pending"


def batch_running(batch_id: str) -> str:
    """Set of running members: discussion ids, or `slot:{index}` while one is being created."""
    return f"batch:{batch_id}:running"


def batch_items(batch_id: str) -> str:
    """Hash item index -> discussion id once started (or `error: ...` if it could not be)."""
    return f"batch:{batch_id}:items"


def batch_pump(batch_id: str) -> str:
    """Short-lived claim: at most one scheduled pump task per batch at a time."""
    return f"batch:{batch_id}:pump"


def batch_keys(batch_id: str) -> list[str]:
    return [batch(batch_id), batch_pending(batch_id), batch_running(batch_id),
            batch_items(batch_id), batch_pump(batch_id)]


def broker_queue_keys(queue: str) -> list[str]:
    """The broker lists kombu's Redis transport keeps for one queue (one per priority band)."""
    return [queue] + [f"{queue}\x06\x16{p}" for p in (3, 6, 9)]
