"""A moderator agent's turn: it names the next speaker (or ends the discussion); one more agent
call, accounted to the orchestration, and its choice committed before the chosen agent speaks."""

from __future__ import annotations

from core.ground.errors import AgentError, StaleLease
from core.ground.models import Status
from core.ground.usage import ORCHESTRATION
from core.storage.store import Commit, Snapshot
from protocols import BaseProtocol, Choose
from protocols.moderated import END, parse_choice
from workers import accounting
from workers.runtime import Runtime
from workers.turns import call_agent


def choose(rt: Runtime, did: str, token: int, snap: Snapshot, protocol: BaseProtocol,
           action: Choose) -> None:
    """Ask the moderator agent who speaks next; record its choice (or its END) in pstate."""
    moderator = snap.participant(action.moderator_id)
    candidates = [p for pid in action.candidates if (p := snap.participant(pid))]
    if moderator is None or not candidates:
        raise StaleLease("protocol chose an unknown moderator or candidate")
    names = ", ".join(p.name for p in candidates)
    instructions = (f"You moderate this discussion. Choose who speaks next among: {names}. "
                    "Reply with one line `NEXT: <name>`, or `END` when the discussion has "
                    "reached its goal.")
    event: dict = {"action": "floor", "by": moderator.participant_id, "auto": True}
    try:
        reply = call_agent(rt, did, token, snap, moderator, action.round, instructions,
                           task={"kind": "choose_speaker",
                                 "candidates": [p.name for p in candidates]}, stream=False)
        picked = parse_choice(reply.content, candidates)
        tokens = reply.prompt_tokens + reply.completion_tokens
        usage = accounting.increments(ORCHESTRATION, reply=reply)
    except AgentError as exc:
        picked, tokens = None, 0
        event["error"] = exc.message
        attempts = exc.details.get("attempts")
        usage = accounting.increments(ORCHESTRATION, failed=True,
                                      attempts=attempts if isinstance(attempts, int) else 1)
    if picked is None:
        # An unusable answer or a failed call: the least recent speaker keeps things moving.
        picked = candidates[0].participant_id
        event["fallback"] = True
    choice = {"turn": snap.state.turn, **({"end": True} if picked == END else
                                          {"participant_id": picked})}
    if picked != END:
        event["participant_id"] = picked
    else:
        event = {**event, "action": "end"}
    pstate = {**snap.state.pstate, "choice": choice}
    updates = {"pstate": pstate, "tokens_used": snap.state.tokens_used + tokens}
    rt.store.commit(did, Commit(updates=updates, events=[("moderation", event)],
                                allowed_statuses=(Status.ACTIVE,), increments=usage),
                    token=token, turn=snap.state.turn, lease_ttl_ms=rt.settings.lease_ttl_ms)
    snap.state.pstate = pstate
    snap.state.tokens_used = updates["tokens_used"]
