"""Every Redis key this service uses is built here and nowhere else (README: "Redis keys").

The seed's layout is kept; `:events`, `:fence`-free leases and the reply cache extend it.
"""

from __future__ import annotations

ACTIVE = "discussions:active"  # set of discussion ids not yet in a terminal state
ALL = "discussions:all"  # zset id -> created-at epoch seconds, for listing


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


def usage(discussion_id: str) -> str:
    """Hash `{scope}:{metric}` -> number: calls, retries, tokens, cost, latency per participant,
    for the orchestration's own calls, and in total (see core.usage)."""
    return f"discussion:{discussion_id}:usage"


def idempotency(discussion_id: str, key: str) -> str:
    """A posted message's response, remembered under the client's Idempotency-Key."""
    return f"discussion:{discussion_id}:idem:{key}"


def user_discussions(user_id: str) -> str:
    """The seed's per-user index: set of discussion ids the user created or takes part in."""
    return f"user:{user_id}:discussions"


def user_active_owned(user_id: str) -> str:
    """Set of discussion ids a user created that were not finished at the last count (quota)."""
    return f"user:{user_id}:active_owned"


def user_spend(user_id: str, day: str) -> str:
    """Hash `usd`, `tokens`: what a user's agents cost on one UTC day (YYYYMMDD)."""
    return f"user:{user_id}:spend:{day}"


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
    """Every fixed key of one discussion (idempotency keys are found by pattern)."""
    return [
        session(discussion_id),
        messages(discussion_id),
        participants(discussion_id),
        state(discussion_id),
        lock(discussion_id),
        events(discussion_id),
        replies(discussion_id),
        usage(discussion_id),
    ]


def idempotency_pattern(discussion_id: str) -> str:
    return f"discussion:{discussion_id}:idem:*"
