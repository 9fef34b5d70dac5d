"""Pydantic models: the seed's Session, Message, agent and human participant, and API bodies."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# The rule fields and their enums live in core.ground.rules; re-exported here for one import point.
from core.ground.rules import (  # noqa: F401
    ConsensusRules,
    Decision,
    DecisionRule,
    DiscussionRules,
    HumanTurnPolicy,
    Vote,
)


class Protocol(StrEnum):
    ROUND_ROBIN = "round_robin"
    FREE_FORM = "free_form"
    MODERATED = "moderated"
    CONSENSUS = "consensus"


class Status(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    WAITING_FOR_HUMAN = "waiting_for_human"
    PAUSED = "paused"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    FAILED = "failed"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({Status.COMPLETED, Status.CANCELLED, Status.FAILED})
# Every status a discussion can still change from, in lifecycle order: the one list of them.
UNFINISHED: tuple[Status, ...] = tuple(s for s in Status if s not in TERMINAL_STATUSES)


class ParticipantType(StrEnum):
    AGENT = "agent"
    HUMAN = "human"


class Permission(StrEnum):
    READ = "read"
    WRITE = "write"
    MODERATE = "moderate"


class MessageType(StrEnum):
    TEXT = "text"
    SYSTEM = "system"
    PROPOSAL = "proposal"
    VOTE = "vote"


class StopReason(StrEnum):
    MAX_ROUNDS = "max_rounds"
    MAX_MESSAGES = "max_messages"
    STOP_PHRASE = "stop_phrase"
    DEADLINE = "deadline"
    TOKEN_BUDGET = "token_budget"
    MODERATOR = "moderator"
    CONSENSUS = "consensus"
    CANCELLED = "cancelled"
    AGENT_FAILURES = "agent_failures"
    NO_PARTICIPANTS = "no_participants"
    SPEND_QUOTA = "spend_quota"  # the owner's daily agent budget is used up
    STEP_ATTEMPTS = "step_attempts"  # a turn kept crashing or timing out its workers
    INTERNAL_ERROR = "internal_error"  # a step raised an unexpected exception


# ---------------------------------------------------------------- input bodies


class _Input(BaseModel):
    # Unknown fields are refused: a client cannot set what the server owns (ids, status, seq).
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class AgentInput(_Input):
    """An agent as a client describes it when creating a discussion."""

    persona: str = Field(min_length=1, max_length=200, examples=["Security Expert"])
    provider: str | None = Field(
        default=None, max_length=50, description="Backend; the service default when omitted."
    )
    model: str | None = Field(default=None, max_length=200, examples=["gpt-4"])
    system_prompt: str | None = Field(default=None, max_length=20_000)
    # Strict numbers: JSON `false` or `"0.7"` is refused, not coerced.
    temperature: float = Field(default=0.7, ge=0.0, le=2.0, strict=True)
    role: str | None = Field(default=None, max_length=100)
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="Provider options, e.g. `latency_ms` for the simulated provider.",
    )
    moderator: bool = Field(strict=True,
        default=False,
        description="`moderated` only: this agent moderates (chooses each next speaker) "
        "instead of taking speaking turns.",
    )


class HumanInput(_Input):
    """A person taking part, with the seed's permissions."""

    user_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.@:-]+$")
    name: str = Field(min_length=1, max_length=200)
    role: str | None = Field(default=None, max_length=100)
    permissions: list[Permission] = Field(
        default_factory=lambda: [Permission.READ, Permission.WRITE], max_length=3
    )


# Message metadata the server writes on agent turns (accounting): never taken from a client.
SERVER_METADATA_KEYS = frozenset({
    "provider", "model", "prompt_tokens", "completion_tokens", "total_tokens", "latency_ms",
    "cost_usd", "cached_reply", "proxy_for", "stand_in",
})


# The same rule, stated in the OpenAPI document (JSON Schema `propertyNames`).
_NO_UNDERSCORE = r"^([^_][\s\S]*)?$"
CREATE_METADATA_SCHEMA = {"propertyNames": {"pattern": _NO_UNDERSCORE},
                          "description": "Free-form; keys starting with `_` are the server's."}
POST_METADATA_SCHEMA = {
    "propertyNames": {"pattern": _NO_UNDERSCORE,
                      "not": {"enum": sorted(SERVER_METADATA_KEYS)}},
    "description": "Free-form; `_`-prefixed and accounting keys are the server's."}


def _client_metadata(metadata: dict[str, Any], reserved: frozenset[str] = frozenset()
                     ) -> dict[str, Any]:
    """Refuse metadata keys the server owns: `_`-prefixed ones and the given reserved names."""
    owned = sorted(k for k in metadata if k.startswith("_") or k in reserved)
    if owned:
        raise ValueError(f"keys set by the server may not be given: {', '.join(owned)}")
    return metadata


class CreateDiscussion(_Input, DiscussionRules):
    """Body of `POST /v1/discussions`."""

    topic: str = Field(min_length=1, max_length=2_000)
    agents: list[AgentInput] = Field(default_factory=list, max_length=64)
    humans: list[HumanInput] = Field(default_factory=list, max_length=64)
    protocol: Protocol = Protocol.ROUND_ROBIN
    max_rounds: int = Field(default=10, ge=1, strict=True)
    max_messages: int | None = Field(default=None, ge=1, strict=True)
    metadata: dict[str, Any] = Field(default_factory=dict,
                                     json_schema_extra=CREATE_METADATA_SCHEMA)

    @field_validator("humans")
    @classmethod
    def _unique_users(cls, humans: list[HumanInput]) -> list[HumanInput]:
        ids = [h.user_id for h in humans]
        if len(ids) != len(set(ids)):
            raise ValueError("each user_id may appear once")
        return humans

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, metadata: dict[str, Any]) -> dict[str, Any]:
        return _client_metadata(metadata)


class PostMessage(_Input):
    """Body of `POST /v1/discussions/{id}/messages`."""

    participant_id: str = Field(min_length=1, max_length=64)
    content: str = Field(min_length=1)
    # `system` messages come only from the service.
    message_type: Literal[MessageType.TEXT, MessageType.PROPOSAL, MessageType.VOTE] = \
        MessageType.TEXT
    metadata: dict[str, Any] = Field(default_factory=dict,
                                     json_schema_extra=POST_METADATA_SCHEMA)

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, metadata: dict[str, Any]) -> dict[str, Any]:
        return _client_metadata(metadata, SERVER_METADATA_KEYS)


class MessagesQuery(_Input):
    limit: int = Field(default=50, ge=1, le=500)
    offset: int = Field(default=0, ge=0)


class DiscussionPath(BaseModel):
    discussion_id: str = Field(max_length=64)


# ---------------------------------------------------------------- stored / output models


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
    protocol: Protocol
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
    updated_at: str | None = None


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
    protocol: Protocol
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
