"""Who may do what to one discussion: plain functions shared by REST, WebSocket and the CLI.

A discussion's creator holds every permission; each human participant holds the permissions the
discussion gave them (`write` and `moderate` imply `read`: nobody acts on what they cannot see).
Anyone else has no access and is told the discussion does not exist (404, never 403), so ids leak
nothing. Agents hold no authority of their own: the engine posts as the agents it calls, and the
creator posts as the discussion's external agents (their turns come from the creator's system).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from core.ground.errors import DiscussionNotFound, Forbidden
from core.ground.models import DiscussionConfig, Participant, ParticipantType, Permission
from core.services.auth import Principal
from core.storage.store import Store
from protocols.base import EXTERNAL

ALL = frozenset(Permission)


@dataclass(frozen=True)
class Access:
    """What one principal may do in one discussion."""

    permissions: frozenset[Permission]
    creator: bool = False
    unrestricted: bool = False

    @property
    def any(self) -> bool:
        return bool(self.permissions)

    def can(self, permission: Permission) -> bool:
        return permission in self.permissions


def access_of(principal: Principal, config: DiscussionConfig,
              participants: Sequence[Participant]) -> Access:
    """The principal's permissions in this discussion (empty: no access at all)."""
    if principal.unrestricted:
        return Access(permissions=ALL, creator=True, unrestricted=True)
    perms: set[Permission] = set()
    creator = config.owner is not None and config.owner == principal.user_id
    if creator:
        perms |= ALL
    for p in participants:
        if p.participant_type == ParticipantType.HUMAN and p.user_id == principal.user_id:
            perms |= set(p.permissions)
    if perms:
        perms.add(Permission.READ)
    return Access(permissions=frozenset(perms), creator=creator)


def check(access: Access, discussion_id: str, permission: Permission = Permission.READ) -> None:
    """404 without any access; 403 when the caller can see it but lacks `permission`."""
    if not access.any:
        raise DiscussionNotFound(f"discussion {discussion_id} not found")
    if not access.can(permission):
        raise Forbidden(f"this needs the {permission.value!r} permission in {discussion_id}",
                        permission=permission.value)


def check_creator(access: Access, discussion_id: str) -> None:
    """Only the creator (or an unrestricted caller) may do this, e.g. delete."""
    check(access, discussion_id)
    if not access.creator:
        raise Forbidden(f"only the creator of {discussion_id} may do this")


def authorize(store: Store, discussion_id: str, principal: Principal,
              permission: Permission = Permission.READ) -> Access:
    """Load the discussion's members and check the principal; the Access on success."""
    if principal.unrestricted:
        if not store.exists(discussion_id):
            raise DiscussionNotFound(f"discussion {discussion_id} not found")
        return Access(permissions=ALL, creator=True, unrestricted=True)
    config, participants = store.members(discussion_id)
    access = access_of(principal, config, participants)
    check(access, discussion_id, permission)
    return access


def check_actor(principal: Principal, actor: Participant,
                permission: Permission = Permission.WRITE) -> None:
    """A person acts (posts, votes, moderates) only as themself, with that participant's own
    permission; nobody but the engine acts as an agent."""
    if principal.unrestricted:
        return
    if actor.participant_type != ParticipantType.HUMAN or actor.user_id != principal.user_id:
        raise Forbidden("you may act only as your own participant")
    if not actor.can(permission):
        raise Forbidden(f"participant {actor.participant_id} lacks the {permission.value!r} "
                        "permission", permission=permission.value)


def own_participant(principal: Principal, participants: Sequence[Participant]
                    ) -> Participant | None:
    """The caller's own human participant in a discussion, if they are one."""
    for p in participants:
        if p.participant_type == ParticipantType.HUMAN and p.user_id == principal.user_id:
            return p
    return None


def check_author(principal: Principal, author: Participant, discussion_id: str,
                 found: Access | None = None) -> None:
    """A person posts only as themself (see check_actor); the discussion's creator may also
    post as its external agents, whose turns their own system posts."""
    if (found is not None and found.creator and author.is_agent
            and author.provider == EXTERNAL):
        return
    check_actor(principal, author, Permission.WRITE)
