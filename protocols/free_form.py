"""Free-form: a conversation. Anyone may post; agents answer what was just said.

Who answers the latest message: the participant it addresses by name (`@Name`) first; else the
agent that spoke least recently, never the message's own author (an agent never answers itself).
An addressed person or external agent answers themself, so the agents hold back. Once people
(or external agents) take part, agents take at most `agent_turns_per_post` turns after each new
post. With nothing left to answer the discussion stays `active` and idle, holding no worker,
until someone posts, a termination condition holds, or someone ends it.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from core.ground.models import (
    Message,
    MessageType,
    Participant,
    ParticipantType,
    Protocol,
    Status,
)
from protocols.base import Action, BaseProtocol, Idle, Speak, View, posts_itself


def addressed(message: Message, participants: list[Participant]) -> Participant | None:
    """The participant a message names with `@Name` (persona or name), longest name first."""
    text = message.content.lower()
    for p in sorted(participants, key=lambda a: -len(a.name)):
        names = {p.name.lower(), (p.persona or "").lower()} - {""}
        for name in names:
            if re.search(r"@" + re.escape(name) + r"(?![\w])", text):
                return p
    return None


def outsiders(view: View) -> list[Participant]:
    """Who takes part by posting: writing people and external agents."""
    return [p for p in view.writers if posts_itself(p)]


def agent_turns_since_post(view: View) -> int:
    """Agent turns since the latest post by a person or an external agent (the whole window's
    count, at least, when the window holds no such post but earlier messages exist)."""
    count = 0
    for message in reversed(view.recent):
        author = view.participant(message.participant_id)
        if author is not None and posts_itself(author):
            return count
        if message.turn is not None and message.participant_type == ParticipantType.AGENT:
            count += 1
    if view.state.seq > len(view.recent):  # older messages are out of the window
        return max(count, view.agent_turns_per_post)
    return count


def latest(view: View) -> Message | None:
    """The message the next answer is to: the newest one that is not a system note."""
    for message in reversed(view.recent):
        if message.message_type != MessageType.SYSTEM:
            return message
    return None


class FreeForm(BaseProtocol):
    name: ClassVar[str] = Protocol.FREE_FORM.value
    description: ClassVar[str] = (
        "Free-form discussion: anyone may speak; answer what was just said, especially if you "
        "were addressed by name."
    )

    def speakers(self, view: View) -> list[Participant]:
        """The agents the engine calls; people and external agents post by themselves."""
        return view.called

    def next_action(self, view: View) -> Action:
        reason = self.termination(view)
        if reason:
            return super().next_action(view)
        if not self.speakers(view) and outsiders(view):
            return Idle()  # only people and external agents: a chat, open until ended
        return super().next_action(view)

    def select(self, view: View) -> Action:
        agents = self.speakers(view)
        round_no = self.rounds_done(view) + 1
        if outsiders(view) and agent_turns_since_post(view) >= view.agent_turns_per_post:
            return Idle()  # the agents have had their say: wait for a new post
        last = latest(view)
        author = last.participant_id if last is not None else None
        target = addressed(last, [p for p in view.writers if p.participant_id != author]
                           ) if last is not None else None
        if target is not None:
            if posts_itself(target):
                return Idle()  # a person or external agent was asked: they answer first
            return Speak(target.participant_id, round_no)
        others = [a for a in agents if a.participant_id != author]
        if not others:
            return Idle()  # an agent never answers itself
        spoke: dict[str, int] = view.pstate.get("last_spoke", {})
        # Least recently spoken first; never-spoken agents first, in their listed order.
        chosen = min(enumerate(others),
                     key=lambda ia: (spoke.get(ia[1].participant_id, -1), ia[0]))[1]
        return Speak(chosen.participant_id, round_no)

    def wakes_on_post(self, view: View, author: Participant) -> bool:
        return view.state.status == Status.ACTIVE

    def after_message(self, view: View, message: Message) -> dict[str, Any]:
        return self.after_skip(view, message.participant_id)

    def after_skip(self, view: View, participant_id: str) -> dict[str, Any]:
        # A failed turn counts as spoken, so the next turn goes to someone else.
        last = dict(view.pstate.get("last_spoke", {}))
        last[participant_id] = view.state.turn
        return {**view.pstate, "last_spoke": last}
