"""Consensus: a proposal, then ballot rounds until a decision rule is met.

Each voter (every agent and every person who may write) takes one turn per round: an agent
states its position and ends with `VOTE: yes|no|abstain`; a person votes over the API. After
each complete round the tally is checked against the rule and the quorum. The discussion ends
`completed` with `stop_reason` `consensus` when a round decides, else when another condition
fires (`max_rounds` …) with the decision `no_consensus`.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from pydantic import BaseModel, Field

from core.ground.models import (
    ConsensusRules,
    Decision,
    DecisionRule,
    Message,
    MessageType,
    Participant,
    Protocol,
    StopReason,
    Vote,
)
from protocols.base import Action, BaseProtocol, View, turn_owner
from protocols.decisions import STRUCTURED, TEXT, UNPARSED, structured_vote, vote_task
from protocols.round_robin import select_in_order, turn_order

_VOTE = re.compile(r"\bvote\s*[:=]\s*[*_`\"']*\s*(yes|no|abstain)\b", re.IGNORECASE)


def parse_vote(content: str) -> Vote | None:
    """The last `VOTE: yes|no|abstain` in a reply, or None when there is none."""
    found = _VOTE.findall(content)
    return Vote(found[-1].lower()) if found else None


class Tally(BaseModel):
    round: int
    yes: int = 0
    no: int = 0
    abstain: int = 0
    missing: int = 0
    votes: dict[str, Vote] = Field(default_factory=dict)

    @property
    def cast(self) -> int:
        return self.yes + self.no + self.abstain


class ConsensusState(BaseModel):
    """`pstate` of a consensus discussion: ballots per round (round -> voter -> vote)."""

    ballots: dict[str, dict[str, Vote]] = Field(default_factory=dict)
    # How agents' ballots were read: structured, text (`VOTE:` line) or unparsed.
    sources: dict[str, int] = Field(default_factory=dict)


def tally(round_no: int, ballots: dict[str, Vote], voters: list[str]) -> Tally:
    """Count one round's ballots; voters without a ballot are `missing`."""
    t = Tally(round=round_no, votes={v: ballots[v] for v in voters if v in ballots})
    for vote in t.votes.values():
        setattr(t, vote.value, getattr(t, vote.value) + 1)
    t.missing = len(voters) - t.cast
    return t


def decide(t: Tally, rule: DecisionRule, quorum: float, voters: int) -> Decision | None:
    """The decision a round's tally reaches, or None (no quorum, or the rule is not met).

    Abstentions count towards the quorum but not towards a majority. The rule applies to
    either side alike: `accepted` when the yes votes meet it, `rejected` when the no votes do.
    """
    if voters == 0 or t.cast == 0 or t.cast < quorum * voters - 1e-9:
        return None
    if rule == DecisionRule.UNANIMOUS:
        if t.yes == t.cast:
            return Decision.ACCEPTED
        if t.no == t.cast:
            return Decision.REJECTED
        return None
    decisive = t.yes + t.no
    if decisive == 0:
        return None
    if rule == DecisionRule.MAJORITY:
        if 2 * t.yes > decisive:
            return Decision.ACCEPTED
        if 2 * t.no > decisive:
            return Decision.REJECTED
        return None
    if 3 * t.yes >= 2 * decisive:
        return Decision.ACCEPTED
    if 3 * t.no >= 2 * decisive:
        return Decision.REJECTED
    return None


def dissenting(t: Tally, decision: Decision) -> list[str]:
    """Who voted against the decision (for `no_consensus`: against the proposal)."""
    against = Vote.NO if decision in (Decision.ACCEPTED, Decision.NO_CONSENSUS) else Vote.YES
    return [pid for pid, vote in t.votes.items() if vote == against]


class Consensus(BaseProtocol):
    name: ClassVar[str] = Protocol.CONSENSUS.value
    description: ClassVar[str] = (
        "Consensus discussion: state your position on the proposal, then vote."
    )
    options: ClassVar[frozenset[str]] = frozenset({"consensus", "parallel_rounds"})

    def task(self, view: View, speaker: Participant) -> dict[str, Any]:
        """A ballot: backends that support structured output return the vote as data
        (protocols.decisions: its JSON schema, and how an answer reads in the transcript)."""
        return vote_task(self.proposal(view))

    @staticmethod
    def rules(view: View) -> ConsensusRules:
        return view.config.consensus or ConsensusRules()

    def proposal(self, view: View) -> str:
        return self.rules(view).proposal or view.config.topic

    def speakers(self, view: View) -> list[Participant]:
        return turn_order(view)

    def voters(self, view: View) -> list[str]:
        return [p.participant_id for p in self.speakers(view)]

    def _state(self, view: View) -> ConsensusState:
        return ConsensusState.model_validate(
            {"ballots": view.pstate.get("ballots", {}),
             "sources": view.pstate.get("ballot_sources", {})}
        )

    def tallies(self, view: View, *, complete_only: bool = False) -> list[Tally]:
        """Per-round tallies, oldest first (only finished rounds with `complete_only`)."""
        voters = self.voters(view)
        done = self.rounds_done(view)
        ballots = self._state(view).ballots
        last = done if complete_only else max([done, *(int(r) for r in ballots)] or [0])
        return [tally(r, ballots.get(str(r), {}), voters) for r in range(1, last + 1)]

    def decision(self, view: View) -> tuple[Decision | None, Tally | None]:
        """The decision of the last finished round, if it reached one."""
        finished = self.tallies(view, complete_only=True)
        if not finished:
            return None, None
        rules = self.rules(view)
        last = finished[-1]
        return decide(last, rules.decision_rule, rules.quorum, len(self.voters(view))), last

    def termination(self, view: View) -> str | None:
        decision, _ = self.decision(view)
        if decision is not None:
            return StopReason.CONSENSUS.value
        return super().termination(view)

    def outcome(self, view: View, reason: str) -> dict[str, Any]:
        decision, last = self.decision(view)
        if reason != StopReason.CONSENSUS.value or decision is None:
            decision = Decision.NO_CONSENSUS
        tallies = self.tallies(view)
        last = last or (tallies[-1] if tallies else None)
        rules = self.rules(view)
        sources = self._state(view).sources
        return {
            "decision": decision.value,
            "proposal": self.proposal(view),
            "decision_rule": rules.decision_rule.value,
            "quorum": rules.quorum,
            "rounds": self.rounds_done(view),
            "tally": [t.model_dump(mode="json") for t in tallies],
            "dissenting": dissenting(last, decision) if last else [],
            # Agents' ballots by how they were read; unparsed ones counted as abstentions.
            "ballot_sources": {k: sources.get(k, 0) for k in (STRUCTURED, TEXT, UNPARSED)},
            "unparsed_ballots": sources.get(UNPARSED, 0),
        }

    def select(self, view: View) -> Action:
        return select_in_order(view, self.speakers(view))

    def may_post(self, view: View, participant: Participant) -> str | None:
        # People may comment at any time; only a vote (over the votes endpoint) takes a turn.
        return super().may_post(view, participant)

    def takes_turn(self, view: View, author: Participant,
                   message_type: MessageType = MessageType.TEXT) -> bool:
        return message_type == MessageType.VOTE and super().takes_turn(view, author)

    def message_metadata(self, view: View, speaker: Participant, content: str,
                         decision: dict[str, Any] | None = None) -> dict[str, Any]:
        vote, source = structured_vote(decision), STRUCTURED
        if vote is None:
            vote, source = parse_vote(content), TEXT
        meta: dict[str, Any] = {"vote": (vote or Vote.ABSTAIN).value,
                                "vote_source": source if vote else UNPARSED}
        if vote is None:
            meta["vote_unparsed"] = True  # neither data nor a `VOTE:` line: an abstention
        return meta

    def after_message(self, view: View, message: Message) -> dict[str, Any]:
        raw = message.metadata.get("vote")
        if raw not in {v.value for v in Vote} or message.round is None:
            return view.pstate
        ballots = {r: dict(b) for r, b in view.pstate.get("ballots", {}).items()}
        ballots.setdefault(str(message.round), {})[turn_owner(message)] = raw
        pstate = {**view.pstate, "ballots": ballots}
        source = message.metadata.get("vote_source")
        if source in (STRUCTURED, TEXT, UNPARSED):
            sources = dict(view.pstate.get("ballot_sources", {}))
            sources[source] = int(sources.get(source, 0)) + 1
            pstate["ballot_sources"] = sources
        return pstate

    def instructions(self, view: View, speaker: Participant) -> str:
        rounds = self.tallies(view, complete_only=True)
        lines = [
            self.description,
            f"Proposal: {self.proposal(view)}",
            f"Decision rule: {self.rules(view).decision_rule.value}.",
        ]
        if rounds:
            t = rounds[-1]
            lines.append(f"Last round's tally: {t.yes} yes, {t.no} no, {t.abstain} abstain.")
        lines.append("End your reply with one line `VOTE: yes`, `VOTE: no` or `VOTE: abstain` "
                     "(or answer in the ballot's structured form when asked for it).")
        return "\n".join(lines)
