"""Membership is never forced: a person named in someone else's discussion may leave it.

The model (docs/security.md, "Membership"): people named in `humans` are members at once (a
product back end adds its own users to the discussions it creates), and each of them can leave
at any time. Leaving is final: the seat keeps its name in the transcript but loses its user and
every permission, so the discussion leaves their list and answers them 404 like any stranger;
the seat is muted and no protocol gives it a turn (a wait for them is skipped); the audit log
records it. The creator cannot leave their own discussion (they delete it instead).
"""

from __future__ import annotations

from core.ground.errors import Conflict, DiscussionNotFound, StaleLease
from core.ground.models import Participant, Status
from core.services import access
from core.services.auth import Principal
from core.services.context import Services
from core.storage import audit, membership
from core.storage.records import status_change
from core.storage.store import Commit
from protocols import View, get_protocol


def leave(svc: Services, discussion_id: str, principal: Principal) -> Participant:
    """The caller leaves `discussion_id` for good; their emptied seat."""
    config, participants = svc.store.members(discussion_id)
    found = access.access_of(principal, config, participants)
    access.check(found, discussion_id)  # 404 for anyone with no access
    seat = None if principal.unrestricted else access.own_participant(principal, participants)
    if found.creator or seat is None:
        raise Conflict("the creator cannot leave their own discussion; delete it instead")
    emptied = seat.model_copy(update={"user_id": None, "permissions": []})
    if not membership.leave(svc.store, discussion_id, emptied, principal.user_id):
        raise DiscussionNotFound(f"discussion {discussion_id} not found")
    audit.record(svc.store.r, discussion_id, actor=principal.user_id, action="participant.left",
                 target=seat.participant_id)
    _skip_their_wait(svc, discussion_id, seat.participant_id)
    return emptied


def _skip_their_wait(svc: Services, discussion_id: str, participant_id: str) -> None:
    """If the discussion waits for the person who left, their turn passes now."""
    snap = svc.store.snapshot(discussion_id, 1)
    st = snap.state
    if st.status != Status.WAITING_FOR_HUMAN or st.waiting_for != participant_id:
        return
    view = View(config=snap.config, participants=snap.participants, state=st,
                recent=snap.recent, muted=snap.muted)
    pstate = get_protocol(snap.config.protocol).after_skip(view, participant_id)
    change = Commit(updates={"status": Status.ACTIVE.value, "pstate": pstate,
                             "waiting_for": "", "wait_deadline": ""},
                    events=[status_change(Status.ACTIVE, Status.WAITING_FOR_HUMAN,
                                          "participant_left", participant_id=participant_id)],
                    advance_turn=True, allowed_statuses=(Status.WAITING_FOR_HUMAN,))
    try:
        svc.store.commit(discussion_id, change, turn=st.turn)
    except (Conflict, StaleLease, DiscussionNotFound):
        return  # answered, paused or finished meanwhile
    svc.dispatch(discussion_id)
