"""The service's enums: protocols, statuses, participant types, permissions, message types
and stop reasons (str enums, so they serialize as their values)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field


class Protocol(StrEnum):
    """The protocols this service ships; a discussion stores its protocol by name (a
    `ProtocolName`), and the registry in `protocols` decides which names run."""

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
    STORAGE_LIMIT = "storage_limit"  # the discussion holds MAX_DISCUSSION_BYTES
    STEP_ATTEMPTS = "step_attempts"  # a turn kept crashing or timing out its workers
    INTERNAL_ERROR = "internal_error"  # a step raised an unexpected exception


# A protocol's name as stored and sent: any registered protocol (`protocols.supported()`), not
# only the built-in ones above, so a new protocol needs no edit here.
ProtocolName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$",
                                    json_schema_extra={"title": "Protocol"})]
