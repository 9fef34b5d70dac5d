"""Moderation: floor, held messages, mute; every action checks the actor's `moderate` right."""

from __future__ import annotations

from core.ground.clock import iso
from core.ground.control_models import HeldMessage, ModerationBody
from core.ground.errors import (
    Conflict,
    DiscussionNotFound,
    Forbidden,
    NotFound,
    ParticipantNotFound,
)
from core.ground.ids import new_id
from core.ground.models import UNFINISHED, Message, Participant, Permission, Protocol, Status
from core.services import access, lifecycle
from core.services.auth import SYSTEM, Principal
from core.services.context import PostResult, Services
from core.storage import audit
from core.storage.records import parse_message
from core.storage.store import Commit, Snapshot, Store


def require_moderator(snap: Snapshot, actor_id: str) -> Participant:
    """The acting participant, if it may moderate: 404 when unknown, 403 without `moderate`."""
    actor = snap.participant(actor_id)
    if actor is None:
        raise ParticipantNotFound(f"participant {actor_id} is not in discussion {snap.config.id}")
    if not actor.can(Permission.MODERATE):
        raise Forbidden(f"participant {actor_id} lacks moderate permission")
    return actor


def moderate(svc: Services, discussion_id: str, body: ModerationBody,
             principal: Principal = SYSTEM) -> Status:
    """Run one moderation action; the discussion's status afterwards.

    The caller acts as `by`, their own participant, which needs `moderate`.
    """
    snap = svc.store.snapshot(discussion_id, 1)
    access.check(access.access_of(principal, snap.config, snap.participants), discussion_id,
                 Permission.MODERATE)
    actor = require_moderator(snap, body.by)
    access.check_actor(principal, actor, Permission.MODERATE)
    if body.action in ("pause", "resume", "end"):
        return lifecycle.transition(svc, discussion_id, body.action, by=actor,
                                    reason=body.reason)
    if snap.config.protocol != Protocol.MODERATED:
        raise Conflict(f"`{body.action}` applies to moderated discussions only")
    if snap.state.status.terminal:
        raise Conflict(f"discussion {discussion_id} is {snap.state.status.value}")
    event = {"action": body.action, "by": actor.participant_id,
             **({"reason": body.reason} if body.reason else {})}
    if body.action == "floor":
        give_floor(svc, snap, body.participant_id or "", event)
    elif body.action in ("mute", "unmute"):
        set_muted(svc.store, snap, body.participant_id or "", body.action == "mute", event)
    else:
        review(svc, snap, body.held_id or "", body.action == "approve", event)
    audit.record(svc.store.r, discussion_id, actor=actor.participant_id,
                 action=f"moderation.{body.action}",
                 target=body.participant_id or body.held_id,
                 details={"reason": body.reason} if body.reason else {})
    if snap.state.status == Status.ACTIVE:
        svc.dispatch(discussion_id)  # the next speaker may have changed
    return svc.store.state(discussion_id).status


def _target(snap: Snapshot, pid: str) -> Participant:
    target = snap.participant(pid)
    if target is None:
        raise ParticipantNotFound(f"participant {pid} is not in discussion {snap.config.id}")
    return target


def give_floor(svc: Services, snap: Snapshot, pid: str, event: dict) -> None:
    """The participant speaks next (after the turn in progress), once."""
    target = _target(snap, pid)
    if target.is_agent and target.can(Permission.MODERATE):
        raise Conflict("the moderator agent does not take speaking turns")
    if not target.is_agent and not target.can(Permission.WRITE):
        raise Conflict("the participant lacks write permission")
    if pid in snap.muted:
        raise Conflict("the participant is muted; unmute first")
    grant = {"id": new_id("floor"), "participant_id": pid, "by": event["by"], "at": iso()}
    svc.store.commit(snap.config.id, Commit(
        updates={"floor": grant},
        events=[("moderation", {**event, "participant_id": pid, "floor_id": grant["id"]})],
        allowed_statuses=UNFINISHED))


def set_muted(store: Store, snap: Snapshot, pid: str, muted: bool, event: dict) -> None:
    """Mute (no turns, no posts) or unmute a participant."""
    target = _target(snap, pid)
    if target.can(Permission.MODERATE):
        raise Conflict("a moderator cannot be muted")
    store.set_muted(snap.config.id, pid, muted, {**event, "participant_id": pid})


def hold(store: Store, did: str, message: Message, idempotency_key: str | None,
         ttl_s: int) -> PostResult:
    """Keep a post aside until a moderator approves it; replays a retried idempotency key."""
    held_id = new_id("held")
    record = HeldMessage(held_id=held_id, message=message)
    replayed = store.hold(did, held_id, record.model_dump_json(), message.model_dump_json(),
                          {"held_id": held_id, "participant_id": message.participant_id},
                          idempotency_key, ttl_s)
    if replayed is not None:
        record = HeldMessage.model_validate_json(replayed)
        return PostResult(record.message, replayed=True, held_id=record.held_id)
    return PostResult(message, held_id=held_id)


def held_messages(store: Store, did: str) -> list[HeldMessage]:
    """Posts waiting for approval, oldest first."""
    if not store.exists(did):
        raise DiscussionNotFound(f"discussion {did} not found")
    raw = store.held(did)
    items = [HeldMessage(held_id=k, message=parse_message(v)) for k, v in raw.items()]
    return sorted(items, key=lambda h: (h.message.timestamp, h.held_id))


def review(svc: Services, snap: Snapshot, held_id: str, approve: bool, event: dict) -> None:
    """Approve (the message joins the transcript) or reject a held message, exactly once."""
    did, store = snap.config.id, svc.store
    raw = store.take_held(did, held_id)
    if not raw:
        raise NotFound(f"held message {held_id} not found (already reviewed?)")
    message = Message.model_validate_json(raw)
    detail = {**event, "held_id": held_id, "participant_id": message.participant_id}
    try:
        if approve:
            message = message.model_copy(update={
                "timestamp": iso(), "metadata": {**message.metadata,
                                                 "approved_by": event["by"]}})
            store.commit(did, Commit(message=message, events=[("moderation", detail)],
                                     allowed_statuses=UNFINISHED))
        else:
            store.commit(did, Commit(events=[("moderation", detail)], allowed_statuses=UNFINISHED))
    except Exception:
        store.put_back_held(did, held_id, raw)  # not reviewed after all: keep it held
        raise
