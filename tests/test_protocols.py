"""Pure protocol tests: no Redis, no HTTP, no Celery."""

from __future__ import annotations

import pytest

from core.ground.errors import Unprocessable
from core.ground.models import ParticipantType, Permission, Protocol, StopReason
from protocols import Finish, Speak, View, WaitForHuman, get_protocol
from protocols.free_form import FreeForm
from protocols.round_robin import RoundRobin
from tests.helpers import agent, config, human, message, state

AGENTS = [agent("a1", "Security Expert"), agent("a2", "Backend Developer"), agent("a3", "PM")]


def view(turn: int = 0, seq: int = 0, protocol: Protocol = Protocol.ROUND_ROBIN,
         participants=AGENTS, recent=(), max_rounds: int = 3, **kw) -> View:
    return View(config=config(protocol, max_rounds, **kw), participants=participants,
                state=state(turn, seq), recent=list(recent))


def test_round_robin_cycles_in_order_and_counts_rounds() -> None:
    rr = RoundRobin()
    picks = [rr.next_action(view(turn=t, seq=t)) for t in range(9)]
    assert [p.participant_id for p in picks] == ["a1", "a2", "a3"] * 3
    assert [p.round for p in picks] == [1, 1, 1, 2, 2, 2, 3, 3, 3]


def test_round_robin_finishes_after_max_rounds() -> None:
    action = RoundRobin().next_action(view(turn=9, seq=9))
    assert action == Finish(StopReason.MAX_ROUNDS.value)


def test_max_messages_stops_first() -> None:
    action = RoundRobin().next_action(view(turn=2, seq=5, max_messages=5))
    assert action == Finish(StopReason.MAX_MESSAGES.value)


def test_round_robin_gives_people_their_turn() -> None:
    people = [*AGENTS[:2], human("h1", "john")]
    action = RoundRobin().next_action(view(turn=2, seq=2, participants=people))
    assert action == WaitForHuman("h1", 1)


def test_no_participants_finishes() -> None:
    assert RoundRobin().next_action(view(participants=[])) == Finish("no_participants")


def test_free_form_least_recent_speaker_first() -> None:
    ff = FreeForm()
    v = view(protocol=Protocol.FREE_FORM)
    assert ff.next_action(v) == Speak("a1", 1)
    pstate = ff.after_message(v, message("a1", "hello", turn=0))
    v2 = View(config=v.config, participants=AGENTS, state=state(1, 1, pstate=pstate))
    assert ff.next_action(v2) == Speak("a2", 1)


def test_free_form_addressed_agent_answers_first() -> None:
    ff = FreeForm()
    recent = [message("a1", "opening", seq=1, turn=0),
              message("h1", "What does @PM think?", seq=2, ptype=ParticipantType.HUMAN)]
    v = view(turn=1, seq=2, protocol=Protocol.FREE_FORM, recent=recent,
             participants=[*AGENTS, human("h1", "john")])
    assert ff.next_action(v) == Speak("a3", 1)


def test_free_form_mention_must_be_whole_name() -> None:
    ff = FreeForm()
    recent = [message("h1", "ask @PMO please", seq=1, ptype=ParticipantType.HUMAN)]
    v = view(protocol=Protocol.FREE_FORM, recent=recent)
    assert ff.next_action(v) == Speak("a1", 1)  # not a3: "@PMO" is not "@PM"


def test_read_only_person_may_not_post() -> None:
    reader = human("h2", "ann", (Permission.READ,))
    assert FreeForm().may_post(view(), reader) == "participant lacks write permission"
    assert FreeForm().may_post(view(), human("h1", "john")) is None


def test_round_robin_person_posts_only_in_turn() -> None:
    john = human("h1", "john")
    people = [*AGENTS[:2], john]
    waiting = View(config=config(), participants=people,
                   state=state(2, 2, status="waiting_for_human", waiting_for="h1"))
    assert RoundRobin().may_post(view(turn=0, participants=people), john) is not None
    assert RoundRobin().may_post(waiting, john) is None
    assert RoundRobin().takes_turn(waiting, john)


def test_unknown_protocol_is_refused() -> None:
    with pytest.raises(Unprocessable):
        get_protocol("telepathy")
