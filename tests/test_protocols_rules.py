"""Pure tests of consensus, moderated, parallel rounds and the shared termination rules."""

from __future__ import annotations

import time

import pytest

from core.ground.models import (
    ConsensusRules,
    Decision,
    DecisionRule,
    MessageType,
    ParticipantType,
    Permission,
    Protocol,
    StopReason,
    Vote,
)
from protocols import Choose, Finish, Idle, Speak, SpeakAll, View, WaitForHuman
from protocols.consensus import Consensus, Tally, decide, parse_vote, tally
from protocols.moderated import END, Moderated, parse_choice
from protocols.round_robin import RoundRobin
from tests.helpers import agent, config, human, message, state

A = [agent("a1", "Security Expert"), agent("a2", "Backend Developer")]
JOHN = human("h1", "john")


def v(protocol: Protocol, participants=A, *, turn: int = 0, seq: int = 0, pstate=None,
      recent=(), muted=frozenset(), now=None, st=None, **cfg) -> View:
    return View(config=config(protocol, cfg.pop("max_rounds", 3), **cfg),
                participants=participants,
                state=st or state(turn, seq, pstate=pstate or {}), recent=list(recent),
                muted=frozenset(muted), now=now)


# ------------------------------------------------------------------ termination


def test_stop_phrase_fires_first() -> None:
    recent = [message("a1", "I think we are DONE here", seq=1, turn=0)]
    action = RoundRobin().next_action(v(Protocol.ROUND_ROBIN, recent=recent, turn=1, seq=1,
                                        stop_phrases=["done here"], max_messages=1))
    assert action == Finish(StopReason.STOP_PHRASE.value)


def test_deadline_and_token_budget() -> None:
    rr = RoundRobin()
    past = time.time() + 3600
    assert rr.next_action(v(Protocol.ROUND_ROBIN, now=past, deadline_s=60)) == Finish("deadline")
    assert isinstance(rr.next_action(v(Protocol.ROUND_ROBIN, now=time.time(), deadline_s=60)),
                      Speak)
    spent = state(2, 2, tokens_used=500)
    assert rr.next_action(v(Protocol.ROUND_ROBIN, st=spent, token_budget=500)) == \
        Finish("token_budget")
    assert isinstance(rr.next_action(v(Protocol.ROUND_ROBIN, st=spent, token_budget=501)),
                      Speak)


# ------------------------------------------------------------------ parallel rounds


def test_parallel_round_robin_batches_agents_then_people() -> None:
    people = [A[0], JOHN, A[1]]
    rr = RoundRobin()
    assert rr.next_action(v(Protocol.ROUND_ROBIN, people, parallel_rounds=True)) == \
        SpeakAll(("a1", "a2"), 1)
    # A crash after the first commit of the batch: the rest of it, same round.
    assert rr.next_action(v(Protocol.ROUND_ROBIN, people, turn=1, parallel_rounds=True)) == \
        SpeakAll(("a2",), 1)
    assert rr.next_action(v(Protocol.ROUND_ROBIN, people, turn=2, parallel_rounds=True)) == \
        WaitForHuman("h1", 1)
    assert rr.next_action(v(Protocol.ROUND_ROBIN, people, turn=3, parallel_rounds=True)) == \
        SpeakAll(("a1", "a2"), 2)


# ------------------------------------------------------------------ consensus


@pytest.mark.parametrize(("text", "vote"), [
    ("I agree.\nVOTE: yes", Vote.YES),
    ("vote: NO", Vote.NO),
    ("**Vote:** abstain", Vote.ABSTAIN),  # markdown emphasis is tolerated
    ("Vote = abstain", Vote.ABSTAIN),
    ("VOTE: no ... on reflection VOTE: yes", Vote.YES),
    ("I vote yes", None),
    ("", None),
])
def test_parse_vote(text: str, vote: Vote | None) -> None:
    assert parse_vote(text) == vote


def _t(yes=0, no=0, abstain=0, missing=0) -> Tally:
    return Tally(round=1, yes=yes, no=no, abstain=abstain, missing=missing)


@pytest.mark.parametrize(("t", "rule", "quorum", "voters", "expected"), [
    (_t(2, 1), DecisionRule.MAJORITY, 0.5, 3, Decision.ACCEPTED),
    (_t(1, 2), DecisionRule.MAJORITY, 0.5, 3, Decision.REJECTED),
    (_t(1, 1), DecisionRule.MAJORITY, 0.5, 2, None),  # a tie decides nothing
    (_t(1, 0, 2), DecisionRule.MAJORITY, 0.5, 3, Decision.ACCEPTED),  # abstain not counted
    (_t(1, 0, 0, 2), DecisionRule.MAJORITY, 0.5, 3, None),  # quorum not met
    (_t(1, 0, 0, 2), DecisionRule.MAJORITY, 0.3, 3, Decision.ACCEPTED),
    (_t(2, 1), DecisionRule.SUPERMAJORITY, 0.5, 3, Decision.ACCEPTED),  # exactly 2/3
    (_t(3, 2), DecisionRule.SUPERMAJORITY, 0.5, 5, None),
    (_t(1, 2), DecisionRule.SUPERMAJORITY, 0.5, 3, Decision.REJECTED),
    (_t(3), DecisionRule.UNANIMOUS, 1.0, 3, Decision.ACCEPTED),
    (_t(2, 0, 1), DecisionRule.UNANIMOUS, 1.0, 3, None),  # an abstention breaks unanimity
    (_t(0, 3), DecisionRule.UNANIMOUS, 1.0, 3, Decision.REJECTED),
    (_t(2, 0, 0, 1), DecisionRule.UNANIMOUS, 1.0, 3, None),
])
def test_decision_rules(t, rule, quorum, voters, expected) -> None:
    assert decide(t, rule, quorum, voters) == expected


def test_tally_counts_missing() -> None:
    t = tally(2, {"a1": Vote.YES, "h1": Vote.ABSTAIN}, ["a1", "a2", "h1"])
    assert (t.yes, t.no, t.abstain, t.missing, t.round) == (1, 0, 1, 1, 2)


def _ballot_msg(pid: str, vote: str, rnd: int, turn: int, proxy_for: str | None = None):
    m = message(pid, f"VOTE: {vote}", seq=turn + 1, turn=turn)
    meta = {"vote": vote, **({"proxy_for": proxy_for} if proxy_for else {})}
    return m.model_copy(update={"round": rnd, "metadata": meta})


def _play(c: Consensus, participants, votes: list[str], **cfg) -> View:
    """Feed a sequence of ballots through after_message, as the engine would."""
    pstate: dict = {}
    for turn, vote in enumerate(votes):
        view = v(Protocol.CONSENSUS, participants, turn=turn, seq=turn, pstate=pstate, **cfg)
        action = c.next_action(view)
        assert isinstance(action, Speak | WaitForHuman), action
        pstate = c.after_message(view, _ballot_msg(action.participant_id, vote, action.round,
                                                   turn))
    n = len(votes)
    return v(Protocol.CONSENSUS, participants, turn=n, seq=n, pstate=pstate, **cfg)


def test_consensus_accepts_after_second_round() -> None:
    c = Consensus()
    # Round 1 ties (1 yes, 1 no, 1 abstain): no decision, a second round follows.
    end = _play(c, [*A, JOHN], ["no", "yes", "abstain", "yes", "yes", "yes"], max_rounds=5)
    action = c.next_action(end)
    assert isinstance(action, Finish) and action.reason == "consensus"
    out = action.outcome
    assert out["decision"] == "accepted" and out["rounds"] == 2
    assert [(t["yes"], t["no"], t["abstain"]) for t in out["tally"]] == [(1, 1, 1), (3, 0, 0)]
    assert out["tally"][0]["votes"] == {"a1": "no", "a2": "yes", "h1": "abstain"}
    assert out["dissenting"] == [] and out["proposal"] == "Design the auth API"


def test_consensus_round_one_majority_rejects_with_dissent() -> None:
    c = Consensus()
    end = _play(c, A + [agent("a3", "PM")], ["no", "no", "yes"])
    out = c.next_action(end).outcome
    assert out["decision"] == "rejected" and out["dissenting"] == ["a3"]


def test_consensus_no_consensus_after_max_rounds() -> None:
    c = Consensus()
    rules = ConsensusRules(decision_rule=DecisionRule.UNANIMOUS, proposal="Use JWT")
    end = _play(c, A, ["yes", "no", "yes", "abstain"], max_rounds=2, consensus=rules)
    action = c.next_action(end)
    assert action.reason == "max_rounds"
    assert action.outcome["decision"] == "no_consensus"
    assert action.outcome["rounds"] == 2 and action.outcome["proposal"] == "Use JWT"
    assert action.outcome["dissenting"] == []  # last round: yes + abstain, nobody against


def test_consensus_unparsed_reply_is_recorded_as_abstain() -> None:
    c = Consensus()
    meta = c.message_metadata(v(Protocol.CONSENSUS), A[0], "I am not sure.")
    assert meta == {"vote": "abstain", "vote_unparsed": True, "vote_source": "unparsed"}
    assert c.message_metadata(v(Protocol.CONSENSUS), A[0], "VOTE: no") == {
        "vote": "no", "vote_source": "text"}


def test_consensus_a_structured_ballot_wins_over_the_words() -> None:
    c = Consensus()
    meta = c.message_metadata(v(Protocol.CONSENSUS), A[0], "Overall... VOTE: no",
                              {"vote": "YES", "reason": "sound"})
    assert meta == {"vote": "yes", "vote_source": "structured"}
    # Data that is no ballot falls back to the words.
    assert c.message_metadata(v(Protocol.CONSENSUS), A[0], "VOTE: no", {"vote": "maybe"}) == {
        "vote": "no", "vote_source": "text"}


def test_consensus_proxy_ballot_counts_for_the_person() -> None:
    c = Consensus()
    view = v(Protocol.CONSENSUS, [*A, JOHN], turn=2)
    pstate = c.after_message(view, _ballot_msg("a1", "yes", 1, 2, proxy_for="h1"))
    assert pstate["ballots"]["1"] == {"h1": "yes"}


def test_consensus_person_turn_is_a_vote_only() -> None:
    c = Consensus()
    waiting = v(Protocol.CONSENSUS, [*A, JOHN],
                st=state(2, 2, status="waiting_for_human", waiting_for="h1"))
    assert c.takes_turn(waiting, JOHN, MessageType.VOTE)
    assert not c.takes_turn(waiting, JOHN, MessageType.TEXT)  # a comment, not the ballot
    assert c.may_post(waiting, JOHN) is None


# ------------------------------------------------------------------ moderated

MOD = agent("m1", "Moderator")
MOD.permissions.append(Permission.MODERATE)
ANN = human("h2", "ann", (Permission.READ, Permission.WRITE, Permission.MODERATE))


def test_moderated_without_moderator_agent_least_recent_first() -> None:
    m = Moderated()
    view = v(Protocol.MODERATED, [*A, ANN])
    assert m.next_action(view) == Speak("a1", 1)
    pstate = m.after_message(view, message("a1", "hi", turn=0))
    assert m.next_action(v(Protocol.MODERATED, [*A, ANN], turn=1, pstate=pstate)) == \
        Speak("a2", 1)


def test_moderator_agent_chooses_then_choice_speaks_once() -> None:
    m = Moderated()
    people = [MOD, *A]
    assert m.next_action(v(Protocol.MODERATED, people)) == Choose("m1", ("a1", "a2"), 1)
    chose = {"choice": {"turn": 0, "participant_id": "a2"}}
    view = v(Protocol.MODERATED, people, pstate=chose)
    assert m.next_action(view) == Speak("a2", 1)
    after = m.after_message(view, message("a2", "x", turn=0))
    assert after["choice"] is None
    assert m.next_action(v(Protocol.MODERATED, people, turn=1, pstate=after)) == \
        Choose("m1", ("a1", "a2"), 1)
    ended = {"choice": {"turn": 0, "end": True}}
    assert m.next_action(v(Protocol.MODERATED, people, pstate=ended)) == Finish("moderator")


def test_floor_grant_is_used_once_and_people_get_a_wait() -> None:
    m = Moderated()
    people = [*A, JOHN, ANN]
    floor = {"id": "floor_1", "participant_id": "h1", "by": "h2"}
    st = state(0, 0, floor=floor)
    view = v(Protocol.MODERATED, people, st=st)
    assert m.next_action(view) == WaitForHuman("h1", 1)
    after = m.after_skip(view, "h1")
    st2 = state(1, 0, floor=floor, pstate=after)
    assert m.next_action(v(Protocol.MODERATED, people, st=st2)) == Speak("a1", 1)


def test_muted_never_speak_nor_post() -> None:
    m = Moderated()
    view = v(Protocol.MODERATED, [*A, JOHN], muted={"a1"})
    assert m.next_action(view) == Speak("a2", 1)
    assert m.may_post(view, A[0]) == "participant is muted"
    all_muted = v(Protocol.MODERATED, [*A, JOHN], muted={"a1", "a2"})
    assert m.next_action(all_muted) == Idle()


def test_parse_choice() -> None:
    assert parse_choice("NEXT: Backend Developer", A) == "a2"
    assert parse_choice("I'd pick security expert now", A) == "a1"
    assert parse_choice("END", A) == END
    assert parse_choice("nobody", A) is None
    assert ParticipantType.AGENT  # keeps the import list honest
