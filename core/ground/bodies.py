"""API input bodies: what a client may send to create a discussion or post a message.
Unknown fields are refused, and metadata keys the server owns cannot be given."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from core.ground.enums import MessageType, Permission, Protocol, ProtocolName
from core.ground.errors import Unprocessable
from core.ground.jsonlimits import FREE_JSON_MAX_BYTES, FREE_JSON_MAX_DEPTH, check_free
from core.ground.owned import (
    NO_UNDERSCORE,
    SERVER_DISCUSSION_METADATA_KEYS,
    SERVER_MESSAGE_METADATA_KEYS,
    refuse_owned,
)
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
        description="Provider options, e.g. `latency_ms` for the simulated provider "
        f"(at most {FREE_JSON_MAX_DEPTH} levels deep and {FREE_JSON_MAX_BYTES} bytes as JSON).",
    )
    moderator: bool = Field(strict=True,
        default=False,
        description="`moderated` only: this agent moderates (chooses each next speaker) "
        "instead of taking speaking turns.",
    )


    @field_validator("params")
    @classmethod
    def _params(cls, params: dict[str, Any]) -> dict[str, Any]:
        return check_free(params, "params")


class HumanInput(_Input):
    """A person taking part, with the seed's permissions."""

    user_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.@:-]+$")
    name: str = Field(min_length=1, max_length=200)
    role: str | None = Field(default=None, max_length=100)
    permissions: list[Permission] = Field(
        default_factory=lambda: [Permission.READ, Permission.WRITE], max_length=3
    )


# Message metadata keys are the server's own list (core.ground.owned); the name stays for
# the models' re-export.
SERVER_METADATA_KEYS = SERVER_MESSAGE_METADATA_KEYS

# The same rules, stated in the OpenAPI document (JSON Schema `propertyNames`).
CREATE_METADATA_SCHEMA = {
    "propertyNames": {"pattern": NO_UNDERSCORE,
                      "not": {"enum": sorted(SERVER_DISCUSSION_METADATA_KEYS)}},
    "description": f"Free-form, at most {FREE_JSON_MAX_DEPTH} levels deep and "
                   f"{FREE_JSON_MAX_BYTES} bytes as JSON; keys starting with `_` and "
                   "batch/schedule provenance keys are the server's."}
POST_METADATA_SCHEMA = {
    "propertyNames": {"pattern": NO_UNDERSCORE,
                      "not": {"enum": sorted(SERVER_MESSAGE_METADATA_KEYS)}},
    "description": f"Free-form, at most {FREE_JSON_MAX_DEPTH} levels deep and "
                   f"{FREE_JSON_MAX_BYTES} bytes as JSON; `_`-prefixed keys and the keys the "
                   "server writes (accounting, retries, votes, stand-ins) are the server's."}


def _client_metadata(metadata: dict[str, Any], reserved: frozenset[str]) -> dict[str, Any]:
    """Refuse metadata keys the server owns, and values too deep or too large to keep."""
    return check_free(refuse_owned(metadata, reserved), "metadata")


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
        return _client_metadata(metadata, SERVER_DISCUSSION_METADATA_KEYS)


def with_topic(body: CreateDiscussion, topic: str) -> CreateDiscussion:
    """`body` with another topic, validated exactly as a direct create would be (a batch's or
    a schedule's filled-in topic); 422 when it would not be accepted."""
    try:
        return CreateDiscussion.model_validate(
            {**body.model_dump(mode="json", exclude_unset=True), "topic": topic})
    except ValidationError as exc:
        err = exc.errors(include_url=False, include_input=False, include_context=False)[0]
        raise Unprocessable(f"{'.'.join(map(str, err['loc']))}: {err['msg']}") from None


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
        return _client_metadata(metadata, SERVER_MESSAGE_METADATA_KEYS)


class MessagesQuery(_Input):
    limit: int = Field(default=50, ge=1, le=500)
    offset: int = Field(default=0, ge=0)


class DiscussionPath(BaseModel):
    discussion_id: str = Field(max_length=64)


# ---------------------------------------------------------------- stored / output models
