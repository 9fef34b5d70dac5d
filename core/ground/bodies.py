"""API input bodies: what a client may send to create a discussion or post a message.
Unknown fields are refused, and metadata keys the server owns cannot be given."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from core.ground.enums import MessageType, Permission, Protocol, ProtocolName
from core.ground.rules import DiscussionRules


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
    "cost_usd", "cached_reply", "proxy_for", "stand_in", "replying_to",
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
    protocol: ProtocolName = Protocol.ROUND_ROBIN.value
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
