"""Debate: two sides argue a motion (the topic) in alternation, then a judge gives a verdict.

Agents take a side through their `role`: `pro` (for the motion), `con` (against) or `judge`;
one or more agents per side and exactly one judge. Each round is one turn per side, `pro`
first; when a side has several agents they take its turns in rotation. After `max_rounds`
rounds the judge answers with a line `VERDICT: pro|con` and a reason, and the discussion ends
`completed` with stop reason `verdict` and the verdict in its outcome. People may comment at
any time; they take no turns. Everything the debate knows lives in this module (the worked
example in docs/architecture.md, "How to add a protocol").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, ClassVar

from core.ground.errors import Unprocessable
from core.ground.models import CreateDiscussion, Message, Participant, StopReason
from protocols.base import Action, BaseProtocol, Speak, View

PRO, CON, JUDGE = "pro", "con", "judge"
SIDES = (PRO, CON)
VERDICT = "verdict"  # the stop reason once the judge has spoken
_VERDICT_LINE = re.compile(r"\bverdict\s*[:=]\s*[*_`\"']*\s*(pro|con)\b", re.IGNORECASE)


def parse_verdict(content: str) -> str | None:
    """The side the last `VERDICT: pro|con` line names, or None when there is none."""
    found = _VERDICT_LINE.findall(content)
    return found[-1].lower() if found else None


def role_of(participant: Participant) -> str:
    return (participant.role or "").strip().lower()


class Debate(BaseProtocol):
    name: ClassVar[str] = "debate"
    description: ClassVar[str] = (
        "Debate: two sides argue the motion in alternation; a judge then decides."
    )

    def check(self, body: CreateDiscussion, participants: Sequence[Participant]) -> None:
        roles = [(a.role or "").strip().lower() for a in body.agents]
        unknown = sorted({r for r in roles if r not in (*SIDES, JUDGE)})
        if unknown:
            raise Unprocessable("debate agents need role pro, con or judge; got "
                                + ", ".join(repr(r) for r in unknown))
        if PRO not in roles or CON not in roles:
            raise Unprocessable("a debate needs at least one `pro` and one `con` agent")
        if roles.count(JUDGE) != 1:
            raise Unprocessable("a debate needs exactly one `judge` agent")

    @staticmethod
    def side(view: View, name: str) -> list[Participant]:
        return [p for p in view.agents if role_of(p) == name]

    def judge(self, view: View) -> Participant | None:
        found = self.side(view, JUDGE)
        return found[0] if found else None

    def speakers(self, view: View) -> list[Participant]:
        return [*self.side(view, PRO), *self.side(view, CON), *self.side(view, JUDGE)]

    def rounds_done(self, view: View) -> int:
        return min(view.state.turn // len(SIDES), view.config.max_rounds)

    def termination(self, view: View) -> str | None:
        if "verdict" in view.pstate:
            return VERDICT
        reason = super().termination(view)
        # `max_rounds` ends the arguments, not the debate: the judge still has to decide.
        return None if reason == StopReason.MAX_ROUNDS.value else reason

    def select(self, view: View) -> Action:
        turn, rounds = view.state.turn, view.config.max_rounds
        if turn >= rounds * len(SIDES):
            judge = self.judge(view)
            if judge is None:  # the create check makes this unreachable
                raise Unprocessable("a debate needs exactly one `judge` agent")
            return Speak(judge.participant_id, rounds)
        round_no = turn // len(SIDES) + 1
        side = self.side(view, SIDES[turn % len(SIDES)])
        return Speak(side[(round_no - 1) % len(side)].participant_id, round_no)

    def instructions(self, view: View, speaker: Participant) -> str:
        motion = view.config.topic
        if role_of(speaker) == JUDGE:
            return (f"You judge this debate on the motion: {motion}. Weigh both sides' "
                    "arguments in the transcript. Start with one line `VERDICT: pro` (the "
                    "motion stands) or `VERDICT: con` (it falls), then give your reason.")
        stance = "for" if role_of(speaker) == PRO else "against"
        round_no = view.state.turn // len(SIDES) + 1
        return (f"You argue {stance} the motion: {motion}. Round {round_no} of "
                f"{view.config.max_rounds}: answer the other side's latest point, then make "
                "your strongest new one.")

    def task(self, view: View, speaker: Participant) -> dict[str, Any]:
        if role_of(speaker) != JUDGE:
            return {}
        return {"kind": "choice", "label": "VERDICT", "options": list(SIDES),
                "question": f"Does the motion stand: {view.config.topic}?"}

    def message_metadata(self, view: View, speaker: Participant, content: str,
                         decision: dict[str, Any] | None = None) -> dict[str, Any]:
        if role_of(speaker) == JUDGE:
            verdict = parse_verdict(content)
            return {"verdict": verdict} if verdict else {"verdict_unparsed": True}
        return {"side": role_of(speaker)}

    def after_message(self, view: View, message: Message) -> dict[str, Any]:
        speaker = view.participant(message.participant_id)
        if speaker is None or role_of(speaker) != JUDGE or message.turn is None:
            return view.pstate
        reason = _VERDICT_LINE.sub("", message.content).strip(" \n:-—")
        return {**view.pstate, "verdict": message.metadata.get("verdict"),
                "reason": reason[:2000], "judge": speaker.participant_id}

    def outcome(self, view: View, reason: str) -> dict[str, Any]:
        judge = self.judge(view)
        return {
            "motion": view.config.topic,
            "verdict": view.pstate.get("verdict"),
            "reason": view.pstate.get("reason"),
            "judge": judge.name if judge else None,
            "rounds": self.rounds_done(view),
        }
