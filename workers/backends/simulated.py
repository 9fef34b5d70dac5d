"""The built-in simulated provider: deterministic replies for demos, tests and benchmarks."""

from __future__ import annotations

import hashlib
import time

from core.errors import Unprocessable
from core.models import Participant
from workers.backends.base import AgentReply, TurnRequest

_OPENERS = (
    "Building on that",
    "I see it differently",
    "To add a concrete point",
    "One risk worth naming",
    "From my side",
)


def _snippet(text: str, words: int = 12) -> str:
    parts = text.split()
    cut = " ".join(parts[:words])
    return cut + ("…" if len(parts) > words else "")


class SimulatedBackend:
    """Replies in the agent's persona, citing the topic and the previous message.

    `params.latency_ms` adds a delay (sleep: cooperative under gevent), so benchmarks can model
    slow agents without a real model.
    """

    name = "simulated"
    costly = False

    def __init__(self, sleep: callable = time.sleep) -> None:  # type: ignore[valid-type]
        self._sleep = sleep

    def validate(self, agent: Participant) -> None:
        latency = agent.params.get("latency_ms", 0)
        if not isinstance(latency, int | float) or isinstance(latency, bool) or not (
            0 <= latency <= 600_000
        ):
            raise Unprocessable("params.latency_ms must be a number from 0 to 600000")
        if "stream" in agent.params and not isinstance(agent.params["stream"], bool):
            raise Unprocessable("params.stream must be true or false")

    def register(self, discussion_id: str, agent: Participant) -> str | None:
        return None

    def generate(self, request: TurnRequest) -> AgentReply:
        latency_ms = float(request.agent.params.get("latency_ms", 0) or 0)
        if latency_ms:
            self._sleep(min(latency_ms / 1000.0, request.deadline_s))
        persona = request.agent.persona or request.agent.name
        previous = request.transcript[-1] if request.transcript else None
        digest = hashlib.blake2s(
            f"{request.discussion_id}:{request.turn}:{persona}".encode(), digest_size=2
        ).digest()
        opener = _OPENERS[digest[0] % len(_OPENERS)]
        if previous is None:
            body = f"As {persona}, let me open on \"{_snippet(request.topic)}\": my first point " \
                   f"concerns what matters most to a {persona.lower()}."
        else:
            body = (
                f"{opener}, {previous.participant_name}: you said "
                f"\"{_snippet(previous.content, 8)}\". "
                f"As {persona}, on \"{_snippet(request.topic, 8)}\" I would add point "
                f"{request.turn + 1} (round {request.round})."
            )
        if request.agent.params.get("stream") and request.on_delta is not None:
            words = body.split(" ")
            for i, word in enumerate(words):
                request.on_delta(word if i == 0 else " " + word)
        prompt_tokens = sum(len(m["content"]) for m in request.messages) // 4
        return AgentReply(
            content=body,
            prompt_tokens=prompt_tokens,
            completion_tokens=len(body) // 4,
            latency_ms=latency_ms,
            metadata={"provider": self.name},
        )
