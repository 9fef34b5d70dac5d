"""Service functions behind the API (and the CLI, schedules, batches): plain code, I/O passed in."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

from core import access, audit, quotas
from core.auth import SYSTEM, Principal
from core.clock import iso
from core.errors import Conflict, ParticipantNotFound, StaleLease, Unprocessable
from core.ids import new_id
from core.listing import ListFilter, list_page
from core.models import (
    CreateDiscussion,
    DiscussionConfig,
    Message,
    MessagePage,
    Participant,
    ParticipantType,
    Permission,
    PostMessage,
    Session,
    Status,
)
from core.settings import Settings
from core.store import Commit, Store
from protocols import View, get_protocol

# Post statuses: a message may join a discussion that is running, waiting or paused.
POSTABLE = (Status.PENDING, Status.ACTIVE, Status.WAITING_FOR_HUMAN, Status.PAUSED)
IDEMPOTENCY_TTL_S = 24 * 3600


@dataclass
class Services:
    """What the service functions need: settings, the store, a validator and a dispatcher."""

    settings: Settings
    store: Store
    validate_agent: Callable[[Participant], None]
    dispatch: Callable[[str], None]
    # Creates an agent on its backend (the Execution Platform); returns its instance id.
    register_agent: Callable[[str, Participant], str | None] = field(
        default=lambda discussion_id, agent: None)


def build_participants(body: CreateDiscussion, settings: Settings) -> list[Participant]:
    """Participants with server-assigned ids, agents first then people, in the order given."""
    agents = [
        Participant(
            participant_id=new_id("agent"),
            name=a.persona,
            participant_type=ParticipantType.AGENT,
            role=a.role,
            permissions=[Permission.READ, Permission.WRITE],
            persona=a.persona,
            provider=a.provider or settings.default_provider,
            model=a.model,
            system_prompt=a.system_prompt,
            temperature=a.temperature,
            params=a.params,
        )
        for a in body.agents
    ]
    humans = [
        Participant(
            participant_id=new_id("human"),
            name=h.name,
            participant_type=ParticipantType.HUMAN,
            role=h.role,
            permissions=sorted(set(h.permissions), key=list(Permission).index),
            user_id=h.user_id,
        )
        for h in body.humans
    ]
    return agents + humans


def validate_template(svc: Services, body: CreateDiscussion) -> list[Participant]:
    """422 unless a discussion could be created from `body`; its participants otherwise.

    Schedules and batches call it when they store a template, so a bad one fails at once.
    """
    settings = svc.settings
    get_protocol(body.protocol)  # 422 for a protocol this build cannot run
    if not body.agents and not body.humans:
        raise Unprocessable("a discussion needs at least one agent or person")
    if len(body.agents) + len(body.humans) > settings.max_participants:
        raise Unprocessable(f"at most {settings.max_participants} participants per discussion")
    if body.max_rounds > settings.max_rounds_limit:
        raise Unprocessable(f"max_rounds may be at most {settings.max_rounds_limit}")
    if body.max_messages is not None and body.max_messages > settings.max_messages_limit:
        raise Unprocessable(f"max_messages may be at most {settings.max_messages_limit}")
    participants = build_participants(body, settings)
    for p in participants:
        if p.is_agent:
            svc.validate_agent(p)
    return participants


def create_discussion(svc: Services, body: CreateDiscussion, owner: str | None = None,
                      *, creator: str | None = None,
                      principal: Principal | None = None) -> Session:
    """Validate, store and start a discussion; it begins `pending` until a worker takes it.

    An authenticated principal becomes the owner (its quotas apply); trusted callers (schedules,
    batches) may name an owner on someone's behalf. `creator` names who made it in the audit
    log when there is no owner (a schedule, a batch).
    """
    if principal is not None and not principal.unrestricted:
        owner = principal.user_id
    if owner and body.agents:
        quotas.check_spend(svc.store.r, svc.settings, owner)
    participants = validate_template(svc, body)
    did = new_id("disc")
    for p in participants:
        if p.is_agent:
            # Before anything is stored: a platform that refuses an agent fails the request.
            p.instance_id = svc.register_agent(did, p)
    config = DiscussionConfig(
        id=did,
        topic=body.topic,
        protocol=body.protocol,
        max_rounds=body.max_rounds,
        max_messages=body.max_messages,
        owner=owner,
        metadata={**body.metadata, "_participant_order": [p.participant_id for p in participants]},
        created_at=iso(),
    )
    users = [h.user_id for h in body.humans] + ([owner] if owner else [])
    if owner:
        quotas.admit_discussion(svc.store.r, svc.settings, owner, did)
    try:
        svc.store.create(config, participants, status=Status.PENDING, users=users)
    except BaseException:
        if owner:
            quotas.release_discussion(svc.store.r, owner, did)
        raise
    audit.record(svc.store.r, did, actor=owner or creator, action="discussion.created",
                 details={"protocol": body.protocol.value, "participants": len(participants)})
    svc.dispatch(did)
    return svc.store.session(did)


def list_discussions(svc: Services, principal: Principal, f: ListFilter, *,
                     limit: int | None = None, cursor: str | None = None
                     ) -> tuple[list[str], str | None]:
    """Ids newest first matching `f`, and the next page's cursor: every discussion for an
    unrestricted caller, else only the caller's (created or taking part: their user index)."""
    if not principal.unrestricted:
        f = dataclasses.replace(f, user=principal.user_id)
    return list_page(svc.store.r, f, limit=limit, cursor=cursor)


def get_session(svc: Services, discussion_id: str, principal: Principal = SYSTEM) -> Session:
    """The session, for a caller who may read it."""
    access.authorize(svc.store, discussion_id, principal)
    return svc.store.session(discussion_id)


def list_messages(svc: Services, discussion_id: str, offset: int, limit: int,
                  principal: Principal = SYSTEM) -> MessagePage:
    """A page of the transcript, for a caller who may read it."""
    access.authorize(svc.store, discussion_id, principal)
    messages, total = svc.store.messages(discussion_id, offset, limit)
    return MessagePage(discussion_id=discussion_id, messages=messages, total=total,
                       limit=limit, offset=offset)


def delete_discussion(svc: Services, discussion_id: str, principal: Principal = SYSTEM) -> None:
    """Delete every key of the discussion; only its creator (or a trusted caller) may."""
    found = access.authorize(svc.store, discussion_id, principal)
    access.check_creator(found, discussion_id)
    owner = svc.store.config(discussion_id).owner
    svc.store.delete(discussion_id)
    if owner:
        quotas.release_discussion(svc.store.r, owner, discussion_id)


def post_message(
    svc: Services, discussion_id: str, body: PostMessage, idempotency_key: str | None = None,
    principal: Principal = SYSTEM,
) -> tuple[Message, bool]:
    """Append a participant's message; (message, replayed) where replayed marks a retried key.

    The caller needs `write` and posts only as their own participant.
    """
    settings = svc.settings
    snap = svc.store.snapshot(discussion_id, 1)
    found = access.access_of(principal, snap.config, snap.participants)
    access.check(found, discussion_id, Permission.WRITE)
    if len(body.content) > settings.max_message_chars:
        raise Unprocessable(f"content may be at most {settings.max_message_chars} characters")
    author = snap.participant(body.participant_id)
    if author is None:
        raise ParticipantNotFound(
            f"participant {body.participant_id} is not in discussion {discussion_id}"
        )
    access.check_author(principal, author, discussion_id)
    if snap.state.status.terminal:
        raise Conflict(f"discussion {discussion_id} is {snap.state.status.value}")
    view = View(config=snap.config, participants=snap.participants, state=snap.state)
    refusal = get_protocol(snap.config.protocol).may_post(view, author)
    if refusal:
        raise Conflict(refusal)
    protocol = get_protocol(snap.config.protocol)
    takes_turn = protocol.takes_turn(view, author)
    message = Message(
        message_id=new_id("msg"),
        participant_id=author.participant_id,
        participant_name=author.name,
        participant_type=author.participant_type,
        content=body.content,
        timestamp=iso(),
        message_type=body.message_type,
        round=snap.state.current_round or None,
        turn=snap.state.turn if takes_turn else None,
        metadata=body.metadata,
    )
    if takes_turn:
        # The person's turn: commit it fenced by turn number, and wake the engine.
        change = Commit(
            message=message,
            advance_turn=True,
            updates={"status": Status.ACTIVE.value, "waiting_for": ""},
            events=[("status", {"status": Status.ACTIVE.value,
                                "previous": Status.WAITING_FOR_HUMAN.value,
                                "reason": "human_answered",
                                "participant_id": author.participant_id})],
            allowed_statuses=(Status.WAITING_FOR_HUMAN,),
        )
        turn: int | None = snap.state.turn
    else:
        change = Commit(message=message, allowed_statuses=POSTABLE)
        turn = None
    try:
        result = svc.store.commit(
            discussion_id, change, turn=turn,
            idempotency_key=idempotency_key, idempotency_ttl_s=IDEMPOTENCY_TTL_S,
        )
    except StaleLease:
        raise Conflict("the turn moved on while posting; read the discussion and retry") from None
    if not result.replayed and (takes_turn or protocol.wakes_on_post(view, author)):
        svc.dispatch(discussion_id)  # the protocol may want an agent to answer
    assert result.message is not None
    return result.message, result.replayed
