"""The Redis key layout is part of the contract (README "Redis keys")."""

from __future__ import annotations

from hashlib import sha256

from core.storage import keys


def test_layout_matches_the_seed() -> None:
    d = "disc_abc123"
    assert keys.session(d) == "discussion:disc_abc123:session"
    assert keys.messages(d) == "discussion:disc_abc123:messages"
    assert keys.participants(d) == "discussion:disc_abc123:participants"
    assert keys.state(d) == "discussion:disc_abc123:state"
    assert keys.lock(d) == "discussion:disc_abc123:lock"
    assert keys.events(d) == "discussion:disc_abc123:events"
    assert keys.replies(d) == "discussion:disc_abc123:replies"
    assert keys.usage(d) == "discussion:disc_abc123:usage"
    assert keys.agent_state(d) == "discussion:disc_abc123:agent_state"
    assert keys.agent_state(d) in keys.discussion_keys(d)  # deleted with the discussion
    assert keys.held(d) == "discussion:disc_abc123:held"
    assert keys.muted(d) == "discussion:disc_abc123:muted"
    assert keys.held(d) in keys.discussion_keys(d) and keys.muted(d) in keys.discussion_keys(d)
    assert keys.ACTIVE == "discussions:active"
    assert keys.user_discussions("user_123") == "user:user_123:discussions"


# Every key builder and key constant, with what it must produce: adding one to
# core/storage/keys.py without pinning it here fails `test_every_key_builder_is_pinned`.
D, U, B, S = "disc_abc123", "user_1", "batch_1", "sched_1"
IDEM_DIGEST = sha256(b"human_1\x00zz:session").hexdigest()[:32]
PINNED: dict[str, object] = {
    "ACTIVE": "discussions:active",
    "ALL": "discussions:all",
    "STATUS_COUNTS": "discussions:by_status",
    "FINISHED": "discussions:finished",
    "WORKER_HEARTBEATS": "workers:heartbeats",
    "WORKER_BOOTS": "workers:boots",
    "RECOVERY_SWEEP": "recovery:sweep",
    "SCHEDULES": "schedules:all",
    "SCHEDULES_NEXT": "schedules:next",
    "BATCHES": "batches:all",
    "BATCHES_ACTIVE": "batches:active",
    "RETENTION_SWEEP": "retention:sweep",
    "UNTRIMMED": "discussions:untrimmed",
    "RETENTION_INDEXED": "retention:indexed",
    "RATE_LIMIT_PREFIX": "ratelimit",
    "session": (D, f"discussion:{D}:session"),
    "messages": (D, f"discussion:{D}:messages"),
    "participants": (D, f"discussion:{D}:participants"),
    "state": (D, f"discussion:{D}:state"),
    "lock": (D, f"discussion:{D}:lock"),
    "events": (D, f"discussion:{D}:events"),
    "replies": (D, f"discussion:{D}:replies"),
    "agent_state": (D, f"discussion:{D}:agent_state"),
    "held": (D, f"discussion:{D}:held"),
    "muted": (D, f"discussion:{D}:muted"),
    "nudge": (D, f"discussion:{D}:nudge"),
    "usage": (D, f"discussion:{D}:usage"),
    "audit": (D, f"discussion:{D}:audit"),
    # The client's key never appears: hashed with the participant who posted (issue 13).
    "idempotency": ((D, "human_1", "zz:session"), f"discussion:{D}:idem:{IDEM_DIGEST}"),
    "user_storage": (U, f"user:{U}:storage"),
    "idempotency_index": (D, f"discussion:{D}:idem_keys"),
    "user_listing": (U, f"user:{U}:listing"),
    "user_discussions": (U, f"user:{U}:discussions"),
    "user_active_owned": (U, f"user:{U}:active_owned"),
    "user_spend": ((U, "2026-11-29"), f"user:{U}:spend:2026-11-29"),
    "user_sockets": (U, f"user:{U}:sockets"),
    "user_api_keys": (U, f"user:{U}:apikeys"),
    "api_key": ("abc", "apikey:abc"),
    "schedule_runs": (S, f"schedule:{S}:runs"),
    "batch": (B, f"batch:{B}"),
    "batch_pending": (B, f"batch:{B}:pending"),
    "batch_running": (B, f"batch:{B}:running"),
    "batch_items": (B, f"batch:{B}:items"),
    "batch_pump": (B, f"batch:{B}:pump"),
    "discussion_keys": (D, [f"discussion:{D}:{k}" for k in (
        "session", "messages", "participants", "state", "lock", "events", "replies",
        "agent_state", "held", "muted", "nudge", "audit", "usage", "idem_keys")]),
    "batch_keys": (B, [f"batch:{B}", f"batch:{B}:pending", f"batch:{B}:running",
                       f"batch:{B}:items", f"batch:{B}:pump"]),
    "broker_queue_keys": ("steps", ["steps", "steps\x06\x163", "steps\x06\x166",
                                    "steps\x06\x169"]),
}


def _builders() -> set[str]:
    return {name for name, value in vars(keys).items()
            if not name.startswith("_") and name != "annotations"
            and (callable(value) and getattr(value, "__module__", "") == keys.__name__
                 or isinstance(value, str))}


def test_every_key_builder_is_pinned() -> None:
    assert _builders() == set(PINNED)
    for name, expected in PINNED.items():
        value = getattr(keys, name)
        if isinstance(value, str):
            assert value == expected, name
            continue
        args, want = expected  # type: ignore[misc]
        got = value(*args) if isinstance(args, tuple) else value(args)
        assert got == want, name
