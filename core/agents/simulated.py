"""The built-in simulated provider: deterministic replies for demos, tests and benchmarks."""

from __future__ import annotations

import time

from core.agents.base import AgentReply, TurnRequest
from core.ground.errors import AgentError, Unprocessable
from core.ground.models import Message, Participant
from refplatform import voice

_VOTES = ("yes", "no", "abstain", "none")


def _vote_line(params: dict, round_no: int) -> str:
    """The structured vote a simulated agent ends with, as its params predict."""
    vote = params.get("vote")
    if vote is None and params.get("agree_from_round") is not None:
        vote = "yes" if round_no >= int(params["agree_from_round"]) else "no"
    vote = vote or "yes"
    return "(I have no vote to give.)" if vote == "none" else f"VOTE: {vote}"


def _answering(transcript: list[Message], own_id: str) -> Message | None:
    """The latest message by someone else: an agent never answers itself."""
    for message in reversed(transcript):
        if message.participant_id != own_id and message.participant_type.value != "system":
            return message
    return None


def _choice_line(params: dict, request: TurnRequest) -> str:
    """A structured choice (`task.kind` "choice": `label` and `options`), steered by
    `params.choose` (an option, or a list cycled per call); the first option otherwise."""
    options = [str(o) for o in request.task.get("options") or []]
    choose = params.get("choose")
    names = [choose] if isinstance(choose, str) else list(choose or [])
    picked = names[request.turn % len(names)] if names else (options[0] if options else "")
    return f"{request.task.get('label', 'CHOICE')}: {picked}"


class SimulatedBackend:
    """Replies in the agent's persona about the topic, answering the latest speaker by name
    (refplatform/voice.py: deterministic per discussion, turn and persona).

    `params.latency_ms` adds a delay (sleep: cooperative under gevent), so benchmarks can model
    slow agents without a real model. Options that make orchestration answers predictable:

    - votes (consensus): `params.vote` = `yes` | `no` | `abstain` | `none` (a reply with no
      parsable vote); `params.agree_from_round` = N votes `no` before round N and `yes` from it
      on. Without either the agent votes `yes`.
    - moderator choice: `params.choose` = a name or a list of names (cycled per call) among the
      candidates; `params.end_after` = N answers `END` from the N-th choice on (0-based turn).
      Without either it names the first candidate (the least recent speaker).
    - `params.fail` = true makes every call fail (an AgentError), to exercise failure handling.
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
        vote = agent.params.get("vote")
        if vote is not None and vote not in _VOTES:
            raise Unprocessable("params.vote must be one of " + ", ".join(_VOTES))
        for name in ("agree_from_round", "end_after"):
            value = agent.params.get(name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                      or value < 0):
                raise Unprocessable(f"params.{name} must be a whole number >= 0")
        choose = agent.params.get("choose")
        if choose is not None and not (isinstance(choose, str) or (
                isinstance(choose, list) and choose and all(isinstance(c, str)
                                                            for c in choose))):
            raise Unprocessable("params.choose must be a name or a list of names")
        if "stream" in agent.params and not isinstance(agent.params["stream"], bool):
            raise Unprocessable("params.stream must be true or false")

    def register(self, discussion_id: str, agent: Participant) -> str | None:
        return None

    def generate(self, request: TurnRequest) -> AgentReply:
        params = request.agent.params
        latency_ms = float(params.get("latency_ms", 0) or 0)
        if latency_ms:
            self._sleep(min(latency_ms / 1000.0, request.deadline_s))
        if params.get("fail"):
            raise AgentError("simulated failure (params.fail)")
        kind = request.task.get("kind")
        if kind == "choose_speaker":
            return self._choose(request, latency_ms)
        persona = request.agent.persona or request.agent.name
        previous = _answering(request.transcript, request.agent.participant_id)
        body = voice.line(
            discussion_id=request.discussion_id, turn=request.turn, persona=persona,
            topic=request.topic,
            previous=voice.Previous(previous.participant_name, previous.content)
            if previous is not None else None,
            own=[m.content for m in request.transcript
                 if m.participant_id == request.agent.participant_id])
        if kind == "vote":
            body += "\n" + _vote_line(params, request.round)
        elif kind == "choice":
            body += "\n" + _choice_line(params, request)
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
            metadata={"provider": self.name,
                      **({"replying_to": previous.participant_id} if previous else {})},
        )

    def _choose(self, request: TurnRequest, latency_ms: float) -> AgentReply:
        params = request.agent.params
        candidates = list(request.task.get("candidates") or [])
        end_after = params.get("end_after")
        if end_after is not None and request.turn >= int(end_after):
            content = "END"
        else:
            choose = params.get("choose")
            names = [choose] if isinstance(choose, str) else list(choose or [])
            content = "NEXT: " + (names[request.turn % len(names)] if names
                                  else (candidates[0] if candidates else "END"))
        prompt_tokens = sum(len(m["content"]) for m in request.messages) // 4
        return AgentReply(content=content, prompt_tokens=prompt_tokens,
                          completion_tokens=max(1, len(content) // 4), latency_ms=latency_ms,
                          metadata={"provider": self.name})
