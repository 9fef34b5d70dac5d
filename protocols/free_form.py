"""Free-form: anyone may post; an addressed agent answers first, else the least recent speaker."""

from __future__ import annotations

import re
from typing import Any, ClassVar

from core.ground.models import Message, Participant, ParticipantType, Protocol, Status
from protocols.base import Action, BaseProtocol, Speak, View


def addressed_agent(message: Message, agents: list[Participant]) -> Participant | None:
    """The agent a message names with `@Name` (persona or name), longest name first."""
    text = message.content.lower()
    for agent in sorted(agents, key=lambda a: -len(a.name)):
        names = {agent.name.lower(), (agent.persona or "").lower()} - {""}
        for name in names:
            if re.search(r"@" + re.escape(name) + r"(?![\w])", text):
                return agent
    return None


class FreeForm(BaseProtocol):
    name: ClassVar[str] = Protocol.FREE_FORM.value
    description: ClassVar[str] = (
        "Free-form discussion: anyone may speak; answer what was said, especially if you were "
        "addressed by name."
    )

    def select(self, view: View) -> Action:
        agents = self.speakers(view)
        round_no = self.rounds_done(view) + 1
        # A message since the last agent turn that names an agent gives that agent the floor.
        for message in reversed(view.recent):
            if message.participant_type == ParticipantType.AGENT and message.turn is not None:
                break
            target = addressed_agent(message, agents)
            if target is not None:
                return Speak(target.participant_id, round_no)
        last: dict[str, int] = view.pstate.get("last_spoke", {})
        # Least recently spoken first; never-spoken agents first, in their listed order.
        chosen = min(
            enumerate(agents), key=lambda ia: (last.get(ia[1].participant_id, -1), ia[0])
        )[1]
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
