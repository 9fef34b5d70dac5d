"""People's ballots in a consensus discussion: a vote over the API takes the person's turn."""

from __future__ import annotations

from core.ground.control_models import CastVote
from core.ground.errors import Conflict, ParticipantNotFound
from core.ground.models import MessageType, Permission, Protocol
from core.services import access
from core.services.auth import SYSTEM, Principal
from core.services.context import PostResult, Services
from core.services.discussions import append


def cast_vote(svc: Services, discussion_id: str, body: CastVote,
              idempotency_key: str | None = None, principal: Principal = SYSTEM) -> PostResult:
    """Record the participant's vote as their ballot turn; 409 when it is not their turn.

    The caller needs `write` and votes only as their own participant.
    """
    snap = svc.store.snapshot(discussion_id, 1)
    found = access.access_of(principal, snap.config, snap.participants)
    access.check(found, discussion_id, Permission.WRITE)
    author = snap.participant(body.participant_id)
    if author is None:
        raise ParticipantNotFound(
            f"participant {body.participant_id} is not in discussion {discussion_id}")
    access.check_author(principal, author, discussion_id, found)  # its own, or an external agent
    if snap.config.protocol != Protocol.CONSENSUS:
        raise Conflict("votes apply to consensus discussions only")
    content = body.reason or f"VOTE: {body.vote.value}"
    return append(svc, snap, author, content=content, message_type=MessageType.VOTE,
                  metadata={"vote": body.vote.value}, idempotency_key=idempotency_key,
                  must_take_turn=True)
