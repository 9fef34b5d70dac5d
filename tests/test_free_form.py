"""Free-form as a conversation (protocols/free_form.py), pure: no Redis, no HTTP, no Celery."""

from __future__ import annotations

from core.ground.models import Participant, ParticipantType, Permission, Protocol
from protocols import Idle, Speak, View
from protocols.free_form import FreeForm, agent_turns_since_post
from protocols.round_robin import RoundRobin
from tests.helpers import agent, config, human, message, state

SE, BD = agent("a1", "Security Expert"), agent("a2", "Backend Developer")
JOHN = human("h1", "john")


def external(pid: str, name: str) -> Participant:
    return Participant(participant_id=pid, name=name, persona=name,
                       participant_type=ParticipantType.AGENT, provider="external",
                       permissions=[Permission.READ, Permission.WRITE])


BOT = external("a9", "Review Bot")


def view(participants: list[Participant], recent: list, *, turn: int = 0,
         per_post: int = 3, max_rounds: int = 10, spoke: dict | None = None) -> View:
    seq = len(recent)
    return View(config=config(Protocol.FREE_FORM, max_rounds), participants=participants,
                state=state(turn, seq, pstate={"last_spoke": spoke or {}}),
                recent=recent, agent_turns_per_post=per_post)


def said(pid: str, text: str, seq: int, turn: int | None = None, human: bool = False):
    return message(pid, text, seq=seq, turn=turn,
                   ptype=ParticipantType.HUMAN if human else ParticipantType.AGENT)


def test_a_lone_agent_opens_then_never_answers_itself() -> None:
    ff = FreeForm()
    assert ff.next_action(view([SE], [])) == Speak("a1", 1)
    opened = [said("a1", "opening", 1, turn=0)]
    assert ff.next_action(view([SE], opened, turn=1, spoke={"a1": 0})) == Idle()


def test_the_seed_walkthrough_stays_open_after_a_post_as_its_agent() -> None:
    # One agent, no people: its own post (the seed's "Send Message") leaves nothing to answer.
    ff = FreeForm()
    recent = [said("a1", "opening", 1, turn=0), said("a1", "Test message", 2)]
    assert ff.next_action(view([SE], recent, turn=1, spoke={"a1": 0})) == Idle()


def test_agents_answer_the_latest_speaker_never_themselves() -> None:
    ff = FreeForm()
    recent = [said("a1", "opening", 1, turn=0)]
    # a1 spoke least recently of all? No: a2 never spoke, and a1 wrote the latest message.
    assert ff.next_action(view([SE, BD], recent, turn=1, spoke={"a1": 0})) == Speak("a2", 1)
    recent.append(said("a2", "reply", 2, turn=1))
    assert ff.next_action(view([SE, BD], recent, turn=2,
                               spoke={"a1": 0, "a2": 1})) == Speak("a1", 2)


def test_whoever_was_addressed_answers_first() -> None:
    ff = FreeForm()
    recent = [said("a1", "opening", 1, turn=0),
              said("h1", "@Security Expert, and passkeys?", 2, human=True)]
    # a1 spoke last among agents, yet it was addressed: it answers first.
    assert ff.next_action(view([SE, BD, JOHN], recent, turn=1,
                               spoke={"a1": 0})) == Speak("a1", 1)


def test_an_addressed_person_or_external_agent_answers_before_any_agent() -> None:
    ff = FreeForm()
    for target, name in ((JOHN, "@John"), (BOT, "@Review Bot")):
        recent = [said("a1", f"{name}, what do you think?", 1, turn=0)]
        assert ff.next_action(view([SE, BD, JOHN, BOT], recent, turn=1,
                                   spoke={"a1": 0})) == Idle(), target.name


def test_an_agent_addressing_itself_is_not_an_answer_to_give() -> None:
    recent = [said("a1", "as @Security Expert I think so", 1, turn=0)]
    assert FreeForm().next_action(view([SE, BD], recent, turn=1,
                                       spoke={"a1": 0})) == Speak("a2", 1)


def test_with_people_agents_take_at_most_n_turns_per_post() -> None:
    ff = FreeForm()
    recent = [said("h1", "kick-off", 1, human=True)]
    spoke: dict[str, int] = {}
    for turn in range(2):
        action = ff.next_action(view([SE, BD, JOHN], recent, turn=turn, per_post=2, spoke=spoke))
        assert isinstance(action, Speak)
        spoke[action.participant_id] = turn
        recent.append(said(action.participant_id, "answer", len(recent) + 1, turn=turn))
    assert agent_turns_since_post(view([SE, BD, JOHN], recent, per_post=2)) == 2
    assert ff.next_action(view([SE, BD, JOHN], recent, turn=2, per_post=2,
                               spoke=spoke)) == Idle()
    recent.append(said("h1", "new point", len(recent) + 1, human=True))
    assert isinstance(ff.next_action(view([SE, BD, JOHN], recent, turn=2, per_post=2,
                                          spoke=spoke)), Speak)


def test_posts_by_an_external_agent_count_as_new_posts() -> None:
    ff = FreeForm()
    recent = [said("a1", "x", 1, turn=0), said("a2", "y", 2, turn=1), said("a9", "bot", 3)]
    assert ff.next_action(view([SE, BD, BOT], recent, turn=2, per_post=2,
                               spoke={"a1": 0, "a2": 1})) == Speak("a1", 2)


def test_without_people_agents_talk_until_a_termination_condition() -> None:
    ff = FreeForm()
    recent = [said("a1" if i % 2 == 0 else "a2", "x", i + 1, turn=i) for i in range(5)]
    action = ff.next_action(view([SE, BD], recent, turn=5, per_post=1,
                                 spoke={"a1": 4, "a2": 3}))
    assert action == Speak("a2", 3)  # no people: the per-post cap does not apply


def test_people_only_free_form_is_an_open_chat() -> None:
    assert FreeForm().next_action(view([JOHN], [])) == Idle()


def test_round_robin_waits_for_an_external_agent_like_a_person() -> None:
    rr = RoundRobin()
    v = View(config=config(Protocol.ROUND_ROBIN, 2), participants=[SE, BOT],
             state=state(1, 1), recent=[])
    action = rr.next_action(v)
    assert type(action).__name__ == "WaitForHuman" and action.participant_id == "a9"
    assert rr.takes_turn(v, BOT) is False  # not waiting yet: a post now would be out of turn
    assert rr.may_post(v, BOT) is not None and rr.may_post(v, SE) is not None
    waiting = View(config=v.config, participants=v.participants,
                   state=state(1, 1, status="waiting_for_human", waiting_for="a9"), recent=[])
    assert rr.may_post(waiting, BOT) is None and rr.may_post(waiting, SE) is not None
