"""An orchestration call: an agent decides something for the protocol (a `Choose`, e.g. a
moderator agent naming the next speaker). The protocol wrote the prompt and the task; the
answer goes back to the protocol (`after_choice`), accounted to the orchestration, and its
result is committed before the turn it decided."""

from __future__ import annotations

from core.ground.errors import AgentError, StaleLease
from core.ground.models import Status
from core.ground.usage import ORCHESTRATION
from core.storage.store import Commit
from protocols import Choose
from workers import accounting
from workers.runtime import StepContext
from workers.turns import call_agent, view_of


def choose(step: StepContext, action: Choose) -> None:
    """Ask the deciding agent, let the protocol read its answer, commit the result."""
    rt, snap = step.rt, step.snap
    agent = snap.participant(action.moderator_id)
    if agent is None or not any(snap.participant(pid) for pid in action.candidates):
        raise StaleLease("protocol chose an unknown moderator or candidate")
    content: str | None = None
    decision: dict | None = None
    error: str | None = None
    try:
        reply = call_agent(step, agent, action.round, action.instructions,
                           task=action.task, stream=False)
        content = reply.content
        decision = reply.metadata.get("decision_data")
        tokens = reply.prompt_tokens + reply.completion_tokens
        usage = accounting.increments(ORCHESTRATION, reply=reply)
    except AgentError as exc:
        tokens, error = 0, exc.message
        attempts = exc.details.get("attempts")
        usage = accounting.increments(ORCHESTRATION, failed=True,
                                      attempts=attempts if isinstance(attempts, int) else 1)
    pstate, event = step.protocol.after_choice(view_of(rt, snap), action, content,
                                                 decision)
    if error is not None:
        event = {**event, "error": error}
    updates = {"pstate": pstate, "tokens_used": snap.state.tokens_used + tokens}
    rt.store.commit(step.did, Commit(updates=updates, events=[("moderation", event)],
                                     allowed_statuses=(Status.ACTIVE,), increments=usage),
                    token=step.token, turn=snap.state.turn,
                    lease_ttl_ms=rt.settings.lease_ttl_ms)
    snap.state.pstate = pstate
    snap.state.tokens_used = updates["tokens_used"]
