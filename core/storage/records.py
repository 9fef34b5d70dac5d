"""The shapes the store reads and writes: a step's snapshot, a commit and its result, and
the parse of the `:state` hash."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from core.ground.models import DiscussionConfig, DiscussionState, Message, Participant, Status


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
    # Bytes of message records the discussion holds after this commit.
    stored_bytes: int = 0


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


def dump_message(message: Message) -> str:
    # pydantic-core writes compact UTF-8 JSON itself: no dict round trip (every turn and post).
    return message.model_dump_json(exclude={"seq"})


def record_bytes(config: DiscussionConfig, participants: Sequence[Participant]) -> int:
    """What a new discussion's config and participants take, as counted for storage."""
    return len(config.model_dump_json()) + sum(len(p.model_dump_json()) for p in participants)


def parse_message(raw: str) -> Message:
    """A stored message; one that will not parse (damaged, or written before the input caps)
    comes back with what can be read of it and `metadata.unreadable`, so one bad record never
    fails a whole transcript."""
    try:
        return Message.model_validate_json(raw)
    except ValueError:  # a ValidationError, including "recursion limit exceeded"
        pass
    try:
        data = json.loads(raw)  # the standard parser reads deeper than pydantic's
    except (ValueError, RecursionError):
        data = {}
    data = data if isinstance(data, dict) else {}

    def text(name: str) -> str:
        value = data.get(name)
        return value if isinstance(value, str) else ""

    def number(name: str) -> int | None:
        value = data.get(name)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    kind = text("participant_type")
    return Message(
        message_id=text("message_id") or "msg_unreadable", seq=number("seq") or 0,
        participant_id=text("participant_id"), participant_name=text("participant_name"),
        participant_type=kind if kind in ("agent", "human") else "human",
        content=text("content"), timestamp=text("timestamp"), round=number("round"),
        turn=number("turn"), metadata={"unreadable": True},
    )


def state_value(value: Any) -> str:
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
        failures=int(raw.get("failures") or 0),
        parallel=json.loads(raw["parallel"]) if raw.get("parallel") else None,
        updated_at=raw.get("updated_at") or None,
        stored_bytes=int(raw.get("bytes") or 0),
    )


def status_change(status: Status, previous: Status | None, reason: str,
                  **detail: Any) -> tuple[str, dict[str, Any]]:
    """The `status` event of a move from `previous` to `status`: every one is built here, so
    viewers always find the same fields (`status`, `previous`, `reason`, then any detail)."""
    return "status", {"status": status.value,
                      "previous": previous.value if previous is not None else None,
                      "reason": reason, **detail}
