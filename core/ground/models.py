"""Pydantic models: the seed's Session, Message and participant, stored state, and answers.

The enums (core.ground.enums), input bodies (core.ground.bodies) and rule fields
(core.ground.rules) are re-exported here, so callers have one import point for the models."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from core.ground.bodies import (  # noqa: F401
    CREATE_METADATA_SCHEMA,
    POST_METADATA_SCHEMA,
    SERVER_METADATA_KEYS,
    AgentInput,
    CreateDiscussion,
    DiscussionPath,
    HumanInput,
    MessagesQuery,
    PostMessage,
    with_topic,
)
from core.ground.enums import (  # noqa: F401
    TERMINAL_STATUSES,
    UNFINISHED,
    MessageType,
    ParticipantType,
    Permission,
    Protocol,
    ProtocolName,
    Status,
    StopReason,
)
from core.ground.rules import (  # noqa: F401
    ConsensusRules,
    Decision,
    DecisionRule,
    DiscussionRules,
    HumanTurnPolicy,
    Vote,
)


class Participant(BaseModel):
    """An agent or a person in a discussion; agent fields are empty for people."""

    participant_id: str
    name: str
    participant_type: ParticipantType
    role: str | None = None
    permissions: list[Permission] = Field(default_factory=list)
    # People only.
    user_id: str | None = None
    # Agents only: the seed's agent configuration.
    persona: str | None = None
    provider: str | None = None
    model: str | None = None
    system_prompt: str | None = None
    temperature: float | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    instance_id: str | None = Field(
        default=None, description="The backend's id for this agent, when it keeps one."
    )

    @property
    def is_agent(self) -> bool:
        return self.participant_type == ParticipantType.AGENT

    def can(self, permission: Permission) -> bool:
        return permission in self.permissions


class Message(BaseModel):
    """One committed message; `seq` counts 1, 2, 3… within its discussion."""

    message_id: str
    seq: int = 0
    participant_id: str
    participant_name: str
    participant_type: ParticipantType
    content: str
    timestamp: str
    message_type: MessageType = MessageType.TEXT
    round: int | None = None
    turn: int | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class DiscussionConfig(DiscussionRules):
    """What a discussion was created with; immutable once stored."""

    id: str
    topic: str
    protocol: ProtocolName
    max_rounds: int
    max_messages: int | None = None
    owner: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    created_at: str


class DiscussionState(BaseModel):
    """The mutable part, kept in the `:state` hash and changed only by atomic scripts."""

    status: Status = Status.PENDING
    turn: int = 0
    seq: int = 0
    current_round: int = 0
    stop_reason: str | None = None
    error: str | None = None
    waiting_for: str | None = None
    wait_deadline: str | None = None
    proxy_turn: int | None = None
    floor: dict[str, Any] | None = None
    tokens_used: int = 0
    outcome: dict[str, Any] | None = None
    pstate: dict[str, Any] = Field(default_factory=dict)
    # The engine's own bookkeeping, kept beside (never inside) the protocol's `pstate`:
    # consecutive failed agent turns, and the simultaneous round in flight.
    failures: int = 0
    parallel: dict[str, Any] | None = None
    updated_at: str | None = None
    # Bytes of records the discussion holds, as counted for storage caps (`bytes` field).
    stored_bytes: int = 0


class UsageTotals(BaseModel):
    """Agent calls and what they consumed; `calls` counts HTTP attempts, retries included."""

    calls: int = 0
    retries: int = 0
    failures: int = 0
    messages: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    latency_ms: float = 0.0


class Usage(BaseModel):
    """Totals for the discussion, per participant, and for the orchestration's own calls."""

    total: UsageTotals = Field(default_factory=UsageTotals)
    participants: dict[str, UsageTotals] = Field(default_factory=dict)
    orchestration: UsageTotals = Field(default_factory=UsageTotals)


class Session(DiscussionRules):
    """The seed's Discussion Session, as the API returns it."""

    id: str
    topic: str
    protocol: ProtocolName
    status: Status
    participants: list[Participant]
    messages: list[Message] = Field(default_factory=list)
    current_round: int
    max_rounds: int
    max_messages: int | None = None
    message_count: int = 0
    stop_reason: str | None = None
    error: str | None = None
    waiting_for: str | None = None
    wait_deadline: str | None = Field(
        default=None, description="When the person in `waiting_for` loses the turn (UTC)."
    )
    muted: list[str] = Field(default_factory=list)
    floor: dict[str, Any] | None = Field(
        default=None, description="`moderated`: the latest floor grant."
    )
    held_count: int = 0
    tokens_used: int = 0
    outcome: dict[str, Any] | None = None
    owner: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    usage: Usage = Field(default_factory=Usage)
    created_at: str
    updated_at: str | None = None


class MessagePage(BaseModel):
    discussion_id: str
    messages: list[Message]
    total: int
    limit: int
    offset: int


class DiscussionList(BaseModel):
    discussions: list[str]
    count: int
    next_cursor: str | None = None


class ErrorBody(BaseModel):
    error: str
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class Event(BaseModel):
    """One event of a discussion's stream, as a WebSocket frame: `{"id", "type", "data"}`."""

    id: str
    type: Literal[
        "message",
        "message_delta",
        "status",
        "turn_started",
        "turn_failed",
        "waiting_for_human",
        "vote",
        "outcome",
        "moderation",
    ] | str
    data: dict[str, Any]
