"""The one interface every agent execution backend implements."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from core.ground.models import Message, Participant


@dataclass(frozen=True)
class TurnRequest:
    """Everything an agent needs for one turn; `messages` is the chat-format context."""

    discussion_id: str
    turn: int
    round: int
    agent: Participant
    topic: str
    instructions: str
    messages: list[dict[str, str]]
    transcript: list[Message]
    deadline_s: float
    # What the orchestration asks for beyond a free reply, so a backend may answer in form:
    # {"kind": "vote", "proposal": ...} or {"kind": "choose_speaker", "candidates": [names]}.
    task: dict[str, Any] = field(default_factory=dict)
    # Set when viewers may see the reply as it is produced: a streaming backend calls it with
    # each piece of text; the final reply is still returned whole and committed once.
    on_delta: Callable[[str], None] | None = None

    @property
    def idempotency_key(self) -> str:
        """The same for every attempt and re-run of this turn, so a server may de-duplicate."""
        return f"{self.discussion_id}:{self.turn}"


@dataclass
class AgentReply:
    """What a backend returns; token counts and cost feed the accounting."""

    content: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: float = 0.0
    cost_usd: float = 0.0
    # HTTP attempts this reply took (1 = first try); 0 for in-process backends.
    attempts: int = 0
    model: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "content": self.content,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "latency_ms": self.latency_ms,
            "cost_usd": self.cost_usd,
            "attempts": self.attempts,
            "model": self.model,
            "metadata": self.metadata,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AgentReply:
        return cls(
            content=str(data.get("content", "")),
            prompt_tokens=int(data.get("prompt_tokens", 0)),
            completion_tokens=int(data.get("completion_tokens", 0)),
            latency_ms=float(data.get("latency_ms", 0.0)),
            cost_usd=float(data.get("cost_usd", 0.0)),
            attempts=int(data.get("attempts", 0)),
            model=data.get("model"),
            metadata=dict(data.get("metadata", {})),
        )


class AgentBackend(Protocol):
    """An agent execution backend, chosen per agent by its `provider`."""

    name: str
    # True when a call costs money or time worth not paying twice: the engine then caches the
    # reply in Redis before committing, so a re-run of the turn reuses it.
    costly: bool

    def validate(self, agent: Participant) -> None:
        """Raise Unprocessable if this backend cannot run the agent as configured."""

    def register(self, discussion_id: str, agent: Participant) -> str | None:
        """Create the agent on the backend if it keeps instances; the instance id or None."""

    def generate(self, request: TurnRequest) -> AgentReply:
        """Run one turn; raise AgentError (transient or not) on failure."""
