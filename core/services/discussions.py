"""Service functions behind the API (and the CLI, schedules, batches): plain code, I/O passed in."""

from __future__ import annotations

import dataclasses

from core.ground.clock import iso
from core.ground.errors import Conflict, ParticipantNotFound, StaleLease, Unprocessable
from core.ground.ids import new_id
from core.ground.models import (
    UNFINISHED,
    CreateDiscussion,
    DiscussionConfig,
    HumanTurnPolicy,
    Message,
    MessagePage,
    MessageType,
    Participant,
    ParticipantType,
    Permission,
    PostMessage,
    Session,
    Status,
)
from core.ground.settings import Settings
from core.services import access, moderation
from core.services.auth import SYSTEM, Principal
from core.services.context import PostResult, Services
from core.storage import audit, quotas
from core.storage.listing import ListFilter, list_page
from core.storage.records import record_bytes, status_change
from core.storage.store import Commit, Snapshot
from protocols import View, get_protocol
from protocols.base import posts_itself

IDEMPOTENCY_TTL_S = 24 * 3600


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
    for a, p in zip(body.agents, agents, strict=True):
        if a.moderator:
            p.permissions.append(Permission.MODERATE)
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


def check_rules(body: CreateDiscussion, participants: list[Participant]) -> dict:
    """The rule fields to store, with `proxy_agent` resolved to an agent's id; 422 when they
    do not fit the protocol or the participants."""
    rules = body.rules()
    get_protocol(body.protocol).validate(body, participants)  # the protocol's own options
    if body.human_turn_policy == HumanTurnPolicy.PROXY or body.proxy_agent:
        if not body.proxy_agent:
            raise Unprocessable("human_turn_policy `proxy` needs proxy_agent")
        wanted = body.proxy_agent.lower()
        match = [p for p in participants if p.is_agent and wanted in
                 (p.participant_id.lower(), p.name.lower())]
        if not match:
            raise Unprocessable(f"proxy_agent {body.proxy_agent!r} is not an agent of this "
                                "discussion")
        if match[0].can(Permission.MODERATE):
            raise Unprocessable("the moderator agent cannot be the proxy agent")
        if posts_itself(match[0]):
            raise Unprocessable("an external agent cannot be the proxy agent: its turns are "
                                "posted, and a proxy answers when a post does not come")
        rules["proxy_agent"] = match[0].participant_id
    return rules


def validate_template(svc: Services, body: CreateDiscussion) -> list[Participant]:
    """422 unless a discussion could be created from `body`; its participants otherwise.

    Schedules and batches call it when they store a template, so a bad one fails at once.
    """
    settings = svc.settings
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
    check_rules(body, participants)
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
    rules = check_rules(body, participants)
    did = new_id("disc")
    for p in participants:
        if p.is_agent:
            # Before anything is stored: a platform that refuses an agent fails the request.
            p.instance_id = svc.register_agent(did, p)
    config = DiscussionConfig(
        **rules,
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
    if owner:  # the config and participants count against the owner's storage too
        quotas.check_storage(svc.store.r, svc.settings, owner, record_bytes(config, participants))
    if owner:
        quotas.admit_discussion(svc.store.r, svc.settings, owner, did)
    try:
        svc.store.create(config, participants, status=Status.PENDING, users=users)
    except BaseException:
        if owner:
            quotas.release_discussion(svc.store.r, owner, did)
        raise
    audit.record(svc.store.r, did, actor=owner or creator, action="discussion.created",
                 details={"protocol": body.protocol, "participants": len(participants)})
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
) -> PostResult:
    """Append a participant's message (or hold it for approval); replays a retried key.

    The caller needs `write` and posts only as their own participant.
    """
    settings = svc.settings
    snap = svc.store.snapshot(discussion_id, 0)  # append's checks never read messages
    found = access.access_of(principal, snap.config, snap.participants)
    access.check(found, discussion_id, Permission.WRITE)
    if len(body.content) > settings.max_message_chars:
        raise Unprocessable(f"content may be at most {settings.max_message_chars} characters")
    author = snap.participant(body.participant_id)
    if author is None:
        raise ParticipantNotFound(
            f"participant {body.participant_id} is not in discussion {discussion_id}"
        )
    access.check_author(principal, author, discussion_id, found)
    return append(svc, snap, author, content=body.content, message_type=body.message_type,
                  metadata=body.metadata, idempotency_key=idempotency_key)


def append(svc: Services, snap: Snapshot, author: Participant, *, content: str,
           message_type: MessageType, metadata: dict, idempotency_key: str | None = None,
           must_take_turn: bool = False) -> PostResult:
    """The one way a participant's post joins a discussion: a turn, a free post, or held."""
    discussion_id = snap.config.id
    if idempotency_key:
        # A retry answers as the first attempt did, even when the turn has moved on since.
        # Keys are the poster's own: another participant's use of the same key is theirs.
        seen = svc.store.remembered(discussion_id, author.participant_id, idempotency_key)
        if seen is not None:
            return PostResult(seen, replayed=True)
    if snap.state.status.terminal:
        raise Conflict(f"discussion {discussion_id} is {snap.state.status.value}")
    cap = snap.config.max_messages
    if cap is not None and snap.state.seq >= cap:  # in every state, paused included
        raise Conflict(f"discussion {discussion_id} already holds its max_messages ({cap})",
                       reason="max_messages")
    view = View(config=snap.config, participants=snap.participants, state=snap.state,
                muted=snap.muted)
    protocol = get_protocol(snap.config.protocol)
    refusal = protocol.may_post(view, author)
    if refusal:
        raise Conflict(refusal)
    takes_turn = protocol.takes_turn(view, author, message_type)
    if must_take_turn and not takes_turn:
        raise Conflict("not your turn: the discussion is not waiting for your vote")
    message = Message(
        message_id=new_id("msg"),
        participant_id=author.participant_id,
        participant_name=author.name,
        participant_type=author.participant_type,
        content=content,
        timestamp=iso(),
        message_type=message_type,
        round=snap.state.current_round or None,
        turn=snap.state.turn if takes_turn else None,
        metadata=metadata,
    )
    if (not takes_turn and snap.config.require_approval
            and not author.can(Permission.MODERATE)):
        return moderation.hold(svc.store, discussion_id, message, idempotency_key,
                               IDEMPOTENCY_TTL_S)
    if takes_turn:
        # The person's turn: commit it fenced by turn number, and wake the engine.
        waited = snap.state.waiting_for
        pstate = protocol.after_message(view, message)
        change = Commit(
            message=message,
            advance_turn=True,
            updates={"status": Status.ACTIVE.value, "waiting_for": "", "wait_deadline": "",
                     "pstate": pstate},
            events=[status_change(Status.ACTIVE, Status.WAITING_FOR_HUMAN, "human_answered",
                                  participant_id=waited)],
            allowed_statuses=(Status.WAITING_FOR_HUMAN,), max_seq=cap,
        )
        turn: int | None = snap.state.turn
    else:
        change = Commit(message=message, allowed_statuses=UNFINISHED, max_seq=cap)
        turn = None
    try:
        result = svc.store.commit(
            discussion_id, change, turn=turn, participant_id=author.participant_id,
            idempotency_key=idempotency_key, idempotency_ttl_s=IDEMPOTENCY_TTL_S,
            max_bytes=svc.settings.max_discussion_bytes,
            storage_quota=svc.settings.user_storage_bytes,
        )
    except StaleLease:
        raise Conflict("the turn moved on while posting; read the discussion and retry") from None
    if not result.replayed and (takes_turn or protocol.wakes_on_post(view, author)):
        svc.dispatch(discussion_id)  # the protocol may want an agent to answer
    assert result.message is not None
    return PostResult(result.message, result.replayed)
