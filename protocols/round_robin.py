"""Round-robin: speakers take turns in a fixed order; a round is one turn each."""

from __future__ import annotations

from typing import ClassVar

from core.ground.models import Participant, Protocol
from protocols.base import Action, BaseProtocol, Speak, SpeakAll, View, WaitForHuman, posts_itself


def turn_order(view: View) -> list[Participant]:
    """Agents and writing people in listed order; with `parallel_rounds` the called agents come
    first, so their simultaneous answers fill consecutive turns, and the others follow."""
    writers = view.writers
    if view.config.parallel_rounds:
        return ([p for p in writers if not posts_itself(p)]
                + [p for p in writers if posts_itself(p)])
    return writers


def select_in_order(view: View, order: list[Participant]) -> Action:
    """The speaker whose turn it is in a fixed order, or the agents' simultaneous batch."""
    turn = view.state.turn
    index = turn % len(order)
    speaker = order[index]
    round_no = turn // len(order) + 1
    if posts_itself(speaker):  # a person or an external agent: wait for their post
        return WaitForHuman(speaker.participant_id, round_no)
    if view.config.parallel_rounds:
        batch: list[str] = []
        for p in order[index:]:
            if posts_itself(p):
                break
            batch.append(p.participant_id)
        return SpeakAll(tuple(batch), round_no)
    return Speak(speaker.participant_id, round_no)


class RoundRobin(BaseProtocol):
    name: ClassVar[str] = Protocol.ROUND_ROBIN.value
    options: ClassVar[frozenset[str]] = frozenset({"parallel_rounds"})
    description: ClassVar[str] = (
        "Round-robin discussion: participants speak in a fixed order, one turn each per round."
    )

    def speakers(self, view: View) -> list[Participant]:
        """Agents and the people who may write, in the order they were listed."""
        return turn_order(view)

    def may_post(self, view: View, participant: Participant) -> str | None:
        # A post as an agent follows the rules of a person's post: only on its own turn.
        refusal = super().may_post(view, participant)
        if refusal:
            return refusal
        if not self.takes_turn(view, participant):
            return ("not your turn: in round-robin a participant posts when the discussion "
                    "waits for them")
        return None

    def select(self, view: View) -> Action:
        return select_in_order(view, self.speakers(view))
