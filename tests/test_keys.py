"""The Redis key layout is part of the contract (README "Redis keys")."""

from __future__ import annotations

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
