"""Helpers for agent-backend tests: settings variants, an in-test engine runtime, discussions."""

from __future__ import annotations

from typing import Any

import requests

from core.agents import Backends, TurnRequest
from core.ground.models import CreateDiscussion, Participant, ParticipantType
from core.ground.settings import Settings
from core.services.context import Services, build_services
from core.services.discussions import create_discussion
from core.storage.store import Store
from workers.engine import Outcome, Runtime, run_step


def tuned(settings: Settings, **changes: Any) -> Settings:
    """The test settings with some fields changed, validated like any settings."""
    return Settings(_env_file=None, **{**settings.model_dump(), **changes})  # type: ignore[call-arg]


def runtime(settings: Settings, store: Store) -> Runtime:
    """An engine runtime that runs in the test thread (the enqueue is recorded, not sent)."""
    queued: list[str] = []
    return Runtime(settings=settings, store=store, backends=Backends(settings),
                   enqueue=queued.append)


def services(rt: Runtime) -> Services:
    """The service context of `rt`, dispatching nothing: these tests run the steps themselves."""
    return build_services(rt.settings, rt.store, lambda did: None, backends=rt.backends)


def create(rt: Runtime, body: dict[str, Any]) -> str:
    """Create a discussion through the service layer (agents registered on their backend)."""
    return create_discussion(services(rt), CreateDiscussion.model_validate(body)).id


def run_to_end(rt: Runtime, did: str, max_steps: int = 200) -> None:
    """Run steps in this thread until the discussion has nothing left to do."""
    for _ in range(max_steps):
        if run_step(rt, did) != Outcome.MORE:
            return
    raise AssertionError("the discussion did not settle")


def calls(base: str, agent_id: str, turn: int) -> int:
    """How many calls the reference platform received for this agent and turn."""
    return requests.get(f"{base}/calls", params={"agent_id": agent_id, "turn": turn},
                        timeout=5).json()["count"]


def ep_agent(persona: str, **params: Any) -> dict[str, Any]:
    return {"persona": persona, "provider": "execution_platform", "model": "ref-model",
            "params": params}


def openai_agent(persona: str, model: str = "gpt-4o-mini", **params: Any) -> dict[str, Any]:
    return {"persona": persona, "provider": "openai", "model": model, "params": params}


def participant(provider: str, *, model: str | None = "ref-model", instance_id: str | None = None,
                **params: Any) -> Participant:
    return Participant(participant_id="agent_t", name="Tester", persona="Tester",
                       participant_type=ParticipantType.AGENT, provider=provider, model=model,
                       temperature=0.2, params=params, instance_id=instance_id)


def turn_request(agent: Participant, *, turn: int = 0, deadline_s: float = 5.0,
                 on_delta: Any = None, did: str = "disc_t") -> TurnRequest:
    messages = [{"role": "system", "content": "You are Tester."},
                {"role": "user", "content": "<transcript>\n[1] Ann (agent): hello\n</transcript>"}]
    return TurnRequest(discussion_id=did, turn=turn, round=1, agent=agent, topic="t",
                       instructions="", messages=messages, transcript=[], deadline_s=deadline_s,
                       on_delta=on_delta)
