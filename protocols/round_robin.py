"""Round-robin: speakers take turns in a fixed order; a round is one turn each."""

from __future__ import annotations

from typing import ClassVar

from core.models import Participant, Permission, Protocol
from protocols.base import Action, BaseProtocol, Speak, View, WaitForHuman


class RoundRobin(BaseProtocol):
    name: ClassVar[Protocol] = Protocol.ROUND_ROBIN
    description: ClassVar[str] = (
        "Round-robin discussion: participants speak in a fixed order, one turn each per round."
    )

    def speakers(self, view: View) -> list[Participant]:
        """Agents and the people who may write, in the order they were listed."""
        return [p for p in view.participants if p.is_agent or p.can(Permission.WRITE)]

    def may_post(self, view: View, participant: Participant) -> str | None:
        refusal = super().may_post(view, participant)
        if refusal or participant.is_agent:
            return refusal
        if not self.takes_turn(view, participant):
            return "not your turn: round-robin people post when the discussion waits for them"
        return None

    def select(self, view: View) -> Action:
        order = self.speakers(view)
        turn = view.state.turn
        speaker = order[turn % len(order)]
        round_no = turn // len(order) + 1
        if speaker.is_agent:
            return Speak(speaker.participant_id, round_no)
        return WaitForHuman(speaker.participant_id, round_no)
