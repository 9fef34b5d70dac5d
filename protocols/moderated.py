"""Moderated: a moderator (a person with `moderate`, or an agent configured as moderator) holds
the floor.

Who speaks next, in this order: the participant a moderator gave the floor to (until they have
spoken); else, with a moderator agent, the one it names (one agent call per turn, recorded in
`pstate.choice`); else the agent that spoke least recently. Muted participants never get a turn
and may not post. People speak when given the floor (a durable human turn).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, ClassVar

from pydantic import BaseModel

from core.ground.errors import Unprocessable
from core.ground.models import (
    CreateDiscussion,
    Message,
    Participant,
    Permission,
    Protocol,
    Status,
    StopReason,
)
from protocols.base import (
    Action,
    BaseProtocol,
    Choose,
    Finish,
    Idle,
    Speak,
    View,
    WaitForHuman,
    posts_itself,
    turn_owner,
)
from protocols.decisions import STRUCTURED, TEXT, choice_task, structured_choice

END = "END"


def parse_choice(content: str, candidates: list[Participant]) -> str | None:
    """The participant id a moderator agent's reply names (`NEXT: <name>`), END, or None."""
    text = content.strip()
    if re.search(r"^\s*(NEXT\s*:\s*)?END\b", text, re.IGNORECASE | re.MULTILINE):
        return END
    named = re.search(r"NEXT\s*:\s*(.+)", text, re.IGNORECASE)
    target = (named.group(1) if named else text).strip().strip("*`\"'. ").lower()
    by_name = sorted(candidates, key=lambda p: -len(p.name))
    for p in by_name:
        if target.startswith(p.name.lower()) or target == p.participant_id.lower():
            return p.participant_id
    for p in by_name:  # the name anywhere in the reply, longest names first
        if p.name.lower() in text.lower():
            return p.participant_id
    return None


class ModeratedState(BaseModel):
    """`pstate`: who spoke when, which floor grant was used, the moderator agent's choice."""

    last_spoke: dict[str, int] = {}
    floor_served: str | None = None
    choice: dict[str, Any] | None = None


class Moderated(BaseProtocol):
    name: ClassVar[str] = Protocol.MODERATED.value
    description: ClassVar[str] = (
        "Moderated discussion: speak when the moderator gives you the floor; keep to the point."
    )
    reads_every_turn: ClassVar[bool] = True
    options: ClassVar[frozenset[str]] = frozenset({"moderator_agent", "require_approval"})

    def check(self, body: CreateDiscussion, participants: Sequence[Participant]) -> None:
        if sum(1 for a in body.agents if a.moderator) > 1:
            raise Unprocessable("at most one agent may be the moderator")

    @staticmethod
    def moderator_agent(view: View) -> Participant | None:
        for p in view.agents:
            if p.can(Permission.MODERATE):
                return p
        return None

    def speakers(self, view: View) -> list[Participant]:
        """Everyone who may take a turn: non-moderator agents and writing people."""
        mod = self.moderator_agent(view)
        return [p for p in view.writers if mod is None or p.participant_id != mod.participant_id]

    def rounds_done(self, view: View) -> int:
        mod = self.moderator_agent(view)
        n = len([a for a in view.agents if mod is None or a.participant_id != mod.participant_id])
        return view.state.turn // n if n else view.state.turn

    def _pstate(self, view: View) -> ModeratedState:
        return ModeratedState.model_validate(view.pstate)

    def candidates(self, view: View) -> list[Participant]:
        """Agents that may speak now, least recently spoken first (never-spoken first)."""
        last = self._pstate(view).last_spoke
        agents = [p for p in self.speakers(view) if not posts_itself(p) and p.participant_id
                  not in view.muted]
        order = {p.participant_id: i for i, p in enumerate(agents)}
        return sorted(agents, key=lambda p: (last.get(p.participant_id, -1),
                                             order[p.participant_id]))

    def active_floor(self, view: View) -> str | None:
        """The participant holding an unused floor grant, if any."""
        floor = view.state.floor
        if not floor or floor.get("id") == self._pstate(view).floor_served:
            return None
        pid = floor.get("participant_id")
        p = view.participant(pid) if pid else None
        if p is None or pid in view.muted:
            return None
        return pid

    def select(self, view: View) -> Action:
        round_no = self.rounds_done(view) + 1
        st = self._pstate(view)
        holder = self.active_floor(view)
        if holder is None and st.choice and st.choice.get("turn") == view.state.turn:
            if st.choice.get("end"):
                return Finish(StopReason.MODERATOR.value)
            holder = st.choice.get("participant_id")
        if holder is not None:
            p = view.participant(holder)
            if p is not None and holder not in view.muted:
                if not posts_itself(p):
                    return Speak(holder, round_no)
                return WaitForHuman(holder, round_no)
        candidates = self.candidates(view)
        if not candidates:
            return Idle()  # everyone muted: wait for the moderator
        mod = self.moderator_agent(view)
        if mod is not None:
            names = ", ".join(p.name for p in candidates)
            return Choose(
                mod.participant_id, tuple(p.participant_id for p in candidates), round_no,
                instructions=(f"You moderate this discussion. Choose who speaks next among: "
                              f"{names}. Reply with one line `NEXT: <name>`, or `END` when the "
                              "discussion has reached its goal."),
                task=choice_task([p.name for p in candidates], END))
        return Speak(candidates[0].participant_id, round_no)

    def after_choice(self, view: View, action: Choose, content: str | None,
                     decision: dict[str, Any] | None = None
                     ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Record the moderator agent's pick (or its END) for this turn in `pstate.choice`:
        from its structured answer when there is one, else from its `NEXT:` line; how it was
        read goes on the event, the choice and the chosen speaker's message."""
        candidates = [p for pid in action.candidates if (p := view.participant(pid))]
        event: dict[str, Any] = {"action": "floor", "by": action.moderator_id, "auto": True}
        picked, source = structured_choice(decision, candidates, END), STRUCTURED
        if picked is None:
            picked = parse_choice(content, candidates) if content is not None else None
            source = TEXT
        if picked is None:
            # An unusable answer or a failed call: the least recent speaker keeps things moving.
            picked, source = candidates[0].participant_id, "fallback"
            event["fallback"] = True
        event["choice_source"] = source
        if picked == END:
            choice: dict[str, Any] = {"turn": view.state.turn, "end": True, "source": source}
            event["action"] = "end"
        else:
            choice = {"turn": view.state.turn, "participant_id": picked, "source": source}
            event["participant_id"] = picked
        return {**view.pstate, "choice": choice}, event

    def _mark(self, view: View, owner: str) -> dict[str, Any]:
        st = self._pstate(view)
        floor = view.state.floor
        if floor and floor.get("participant_id") == owner:
            st.floor_served = floor.get("id")
        st.last_spoke = {**st.last_spoke, owner: view.state.turn}
        st.choice = None
        return {**view.pstate, **st.model_dump(mode="json")}

    def after_message(self, view: View, message: Message) -> dict[str, Any]:
        return self._mark(view, turn_owner(message))

    def message_metadata(self, view: View, speaker: Participant, content: str,
                         decision: dict[str, Any] | None = None) -> dict[str, Any]:
        """A speaker the moderator agent chose says how that choice was read."""
        choice = self._pstate(view).choice
        if (choice and choice.get("turn") == view.state.turn and choice.get("source")
                and choice.get("participant_id") == speaker.participant_id):
            return {"chosen_by": "moderator_agent", "choice_source": choice["source"]}
        return {}

    def after_skip(self, view: View, participant_id: str) -> dict[str, Any]:
        return self._mark(view, participant_id)

    def wakes_on_post(self, view: View, author: Participant) -> bool:
        return view.state.status == Status.ACTIVE

    def instructions(self, view: View, speaker: Participant) -> str:
        return self.description
