"""The discussion state machine: pause, resume, cancel and end, each a compare-and-set commit.

pending ──► active ◄──► waiting_for_human
   │          │   ▲            │
   └──────────┴─► paused ◄─────┘      (pause / resume)
 any non-terminal ──► cancelled (cancel) | completed (end, or a protocol's finish) | failed

Every change is a `status` event on the stream. An illegal transition raises Conflict (409).
"""

from __future__ import annotations

from core.ground.errors import Conflict, DiscussionNotFound
from core.ground.models import UNFINISHED, Participant, Status, StopReason
from core.services.context import Services
from core.storage import audit
from core.storage.records import status_change
from core.storage.store import Commit
from protocols import View, get_protocol

NON_TERMINAL = frozenset(UNFINISHED)
TRANSITIONS: dict[str, tuple[frozenset[Status], Status]] = {
    "pause": (frozenset({Status.PENDING, Status.ACTIVE, Status.WAITING_FOR_HUMAN}),
              Status.PAUSED),
    "resume": (frozenset({Status.PAUSED}), Status.ACTIVE),
    "cancel": (NON_TERMINAL, Status.CANCELLED),
    "end": (NON_TERMINAL, Status.COMPLETED),
}
AUDIT_ACTIONS = {"pause": "discussion.paused", "resume": "discussion.resumed",
                 "cancel": "discussion.cancelled", "end": "discussion.ended"}


def transition(svc: Services, discussion_id: str, action: str, *, by: Participant | None = None,
               reason: str | None = None, actor: str | None = None) -> Status:
    """Apply a lifecycle action; the new status. Conflict when the current status forbids it.

    `by` is the acting participant; `actor` names a system actor (a batch) in the audit log.
    """
    allowed, target = TRANSITIONS[action]
    for _ in range(5):  # the status may move (a step, a person) between read and write
        snap = svc.store.snapshot(discussion_id, svc.settings.context_window_messages)
        current = snap.state.status
        if current not in allowed:
            raise Conflict(f"cannot {action} a discussion that is {current.value}",
                           status=current.value)
        updates: dict = {"status": target.value}
        if action == "pause":
            # A person's turn starts afresh (new deadline) on resume.
            updates.update(waiting_for="", wait_deadline="", proxy_turn="")
        elif action == "cancel":
            updates.update(stop_reason=StopReason.CANCELLED.value, waiting_for="",
                           wait_deadline="")
        elif action == "end":
            view = View(config=snap.config, participants=snap.participants, state=snap.state,
                        recent=snap.recent, muted=snap.muted)
            outcome = get_protocol(snap.config.protocol).outcome(view,
                                                                 StopReason.MODERATOR.value)
            updates.update(stop_reason=StopReason.MODERATOR.value, waiting_for="",
                           wait_deadline="")
            if outcome:
                updates["outcome"] = outcome
        detail = {**({"by": by.participant_id} if by else {}),
                  **({"note": reason} if reason else {}),
                  **({"stop_reason": updates["stop_reason"]} if "stop_reason" in updates
                     else {})}
        event = status_change(target, current, action, **detail)
        try:
            svc.store.commit(discussion_id, Commit(updates=updates, events=[event],
                                                   allowed_statuses=(current,)))
        except Conflict:
            continue
        audit.record(svc.store.r, discussion_id,
                     actor=by.participant_id if by else actor, action=AUDIT_ACTIONS[action],
                     details={"previous": current.value, **({"reason": reason} if reason
                                                            else {})})
        if target == Status.ACTIVE:
            svc.dispatch(discussion_id)
        return target
    raise Conflict("the discussion kept changing; read it and retry")


def cancel(svc: Services, discussion_id: str, *, actor: str, reason: str = "cancelled") -> bool:
    """Cancel an unfinished discussion for a system actor (a batch); False when it had
    already finished or is gone. The same transition as a moderator's cancel."""
    try:
        transition(svc, discussion_id, "cancel", actor=actor, reason=reason)
    except (Conflict, DiscussionNotFound):
        return False
    return True
