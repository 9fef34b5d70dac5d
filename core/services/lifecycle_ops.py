"""Small lifecycle actions the operations features need (a batch cancelling its discussions)."""

from __future__ import annotations

from core.ground.errors import Conflict, DiscussionNotFound
from core.ground.models import Status, StopReason
from core.storage import audit
from core.storage.store import Commit, Store

NOT_TERMINAL = (Status.PENDING, Status.ACTIVE, Status.WAITING_FOR_HUMAN, Status.PAUSED)


def cancel(store: Store, discussion_id: str, *, actor: str, reason: str = "cancelled") -> bool:
    """Move an unfinished discussion to `cancelled`; False when it had already finished."""
    try:
        previous = store.state(discussion_id).status
        store.commit(
            discussion_id,
            Commit(updates={"status": Status.CANCELLED.value,
                            "stop_reason": StopReason.CANCELLED.value},
                   events=[("status", {"status": Status.CANCELLED.value,
                                       "previous": previous.value, "reason": reason})],
                   allowed_statuses=NOT_TERMINAL),
        )
    except (Conflict, DiscussionNotFound):
        return False
    audit.record(store.r, discussion_id, actor=actor, action="discussion.cancelled",
                 details={"reason": reason})
    return True
