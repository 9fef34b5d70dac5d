"""Any A2A agent (Agent2Agent protocol, spec 1.0) through the official a2a-sdk client.

`params`: `url` (the agent's base URL; its card is at `{url}/.well-known/agent-card.json`),
`auth` (the name of a credential defined in the A2A_CREDENTIALS setting; never the secret
itself) and `stream` (text arrives as `message_delta` events when the card says it streams).

Each turn is one A2A message in a context that is one per discussion and participant. Its id
is derived from the discussion, turn and participant, so a retried turn is the same message to
the agent. The message carries the turn's instructions and the transcript as text (the
transcript marked as data), plus a data part with the same context in structured form and, for
a ballot or a speaker choice, the decision asked for.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from a2a.types import Message, Role, SendMessageConfiguration, SendMessageRequest

from core.agents.a2a_call import (
    TEXT_MODES,
    CardCache,
    accepts_text,
    card_error,
    decision_request,
    run_turn,
)
from core.agents.aio import run_sync
from core.agents.base import AgentReply, TurnRequest
from core.agents.common import (
    check_agent_url,
    check_named_credential,
    named_token,
    reply_from_usage,
)
from core.agents.http import CallStats
from core.ground.errors import AgentError, ServiceUnavailable, Unprocessable
from core.ground.models import Participant
from core.ground.settings import Settings
from protocols.decisions import render

_NAMESPACE = uuid.UUID("5f1b7c1e-3c1a-4f6e-9d2a-0a2a0a2a0a2a")
_KNOWN = {"url", "auth", "stream"}


def message_id(discussion_id: str, turn: int, participant_id: str) -> str:
    """The same for every attempt and re-run of this participant's turn."""
    return str(uuid.uuid5(_NAMESPACE, f"msg:{discussion_id}:{turn}:{participant_id}"))


def context_id(discussion_id: str, participant_id: str) -> str:
    """One A2A context per discussion and participant."""
    return str(uuid.uuid5(_NAMESPACE, f"ctx:{discussion_id}:{participant_id}"))


class A2ABackend:
    """Sends each turn to a remote A2A agent and commits its reply's text."""

    name = "a2a"
    costly = True

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.cards = CardCache()

    def _headers(self, agent: Participant) -> dict[str, str]:
        token = named_token(self.settings, agent)
        return {"Authorization": f"Bearer {token}"} if token else {}

    def validate(self, agent: Participant) -> None:
        params = agent.params
        url = params.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")) or len(
                url) > 2000:
            raise Unprocessable("provider 'a2a' needs params.url, the agent's http(s) base URL")
        check_agent_url(self.settings, url, "params.url")
        check_named_credential(self.settings, agent, url)
        unknown = sorted(set(params) - _KNOWN)
        if unknown:
            raise Unprocessable(f"provider 'a2a' does not know params.{unknown[0]}; "
                                f"it takes {', '.join(sorted(_KNOWN))}")
        if "stream" in params and not isinstance(params["stream"], bool):
            raise Unprocessable("params.stream must be true or false")

    def register(self, discussion_id: str, agent: Participant) -> str | None:
        """Resolve the agent card: 422 if it is not a valid card for a text agent, 503 if the
        agent does not answer. Nothing is kept on the participant."""
        url = str(agent.params["url"])
        deadline = self.settings.agent_register_deadline_s
        try:
            card = run_sync(self.cards.fetch(url, self._headers(agent), deadline, fresh=True),
                            deadline + 1, f"A2A agent card at {url}")
        except AgentError as exc:
            raise ServiceUnavailable(f"the A2A agent at {url} did not answer: {exc.message}",
                                     retry_after=5) from None
        except Exception as exc:  # noqa: BLE001 - the SDK's errors say what was wrong
            unavailable, message = card_error(url, exc)
            if unavailable:
                raise ServiceUnavailable(message, retry_after=5) from None
            raise Unprocessable(message) from None
        if not accepts_text(card):
            raise Unprocessable(
                f"the A2A agent at {url} accepts no text (its card's input modes are "
                f"{list(card.default_input_modes)}; one of {', '.join(TEXT_MODES)} is needed)")
        return None

    def _message(self, request: TurnRequest) -> Message:
        agent = request.agent
        system, user = (m["content"] for m in request.messages[:2])
        context = {
            "discussion_id": request.discussion_id, "turn": request.turn,
            "round": request.round, "topic": request.topic, "persona": agent.persona,
            "transcript": [{"seq": m.seq, "participant": m.participant_name,
                            "type": str(m.participant_type), "content": m.content}
                           for m in request.transcript],
        }
        parts: list[dict[str, Any]] = [
            {"text": system, "metadata": {"role": "instructions"}},
            {"text": user, "metadata": {"role": "transcript", "data_only": True}},
            {"data": {"discussion": context, **decision_request(request.task)},
             "mediaType": "application/json"},
        ]
        msg = Message(message_id=message_id(request.discussion_id, request.turn,
                                            agent.participant_id),
                      context_id=context_id(request.discussion_id, agent.participant_id),
                      role=Role.ROLE_USER)
        for part in parts:
            added = msg.parts.add()
            if "text" in part:
                added.text = part["text"]
                added.metadata.update(part["metadata"])
            else:
                added.data.struct_value.update(part["data"])
                added.media_type = part["mediaType"]
        msg.metadata.update({"discussion_id": request.discussion_id, "turn": request.turn})
        return msg

    def generate(self, request: TurnRequest) -> AgentReply:
        agent = request.agent
        url = str(agent.params.get("url", ""))
        stream = bool(agent.params.get("stream")) and request.on_delta is not None
        send = SendMessageRequest(
            message=self._message(request),
            configuration=SendMessageConfiguration(
                accepted_output_modes=["text/plain", "application/json"]))
        what = f"A2A agent at {url}"
        stats = CallStats()
        ends = time.monotonic() + request.deadline_s
        outcome = run_sync(
            run_turn(self.settings, self.cards, url, self._headers(agent), send, what=what,
                     ends=ends, stream=stream, on_delta=request.on_delta, stats=stats),
            request.deadline_s + 1, what)
        text = outcome.text
        if not text.strip() and outcome.decision is not None:  # it answered in data only
            text = render(request.task, outcome.decision) or ""
        reply = reply_from_usage(text, outcome.usage, agent.model, request, stats)
        reply.metadata["a2a"] = {"task_id": outcome.task_id, "state": outcome.state}
        if outcome.decision is not None:
            reply.metadata["decision_data"] = outcome.decision
        return reply
