"""The debate protocol: pure rules, and a whole debate through a real worker with simulated
agents whose `params.choose` steers the judge's verdict."""

from __future__ import annotations

import pytest
import requests

from core.ground.errors import Unprocessable
from core.ground.models import CreateDiscussion, Participant
from protocols import Finish, Speak, View, get_protocol, supported
from protocols.debate import Debate, parse_verdict
from tests.e2e import Api
from tests.helpers import agent, config, message, state


def side(pid: str, role: str) -> Participant:
    return agent(pid, pid.title()).model_copy(update={"role": role})


PANEL = [side("p1", "pro"), side("p2", "pro"), side("c1", "con"), side("j", "judge")]


def view(turn: int, pstate: dict | None = None, rounds: int = 2, **cfg) -> View:
    return View(config=config("debate", rounds, **cfg), participants=PANEL,
                state=state(turn, turn, pstate=pstate or {}))


def body(**changes) -> CreateDiscussion:
    data = {"topic": "Monoliths beat microservices for small teams", "protocol": "debate",
            "max_rounds": 2,
            "agents": [{"persona": "Advocate", "role": "pro", "provider": "simulated"},
                       {"persona": "Critic", "role": "con", "provider": "simulated"},
                       {"persona": "Judge", "role": "judge", "provider": "simulated"}]}
    return CreateDiscussion.model_validate({**data, **changes})


def test_registered_by_its_registry_line() -> None:
    assert "debate" in supported() and isinstance(get_protocol("debate"), Debate)


def test_sides_alternate_pro_first_and_rotate_within_a_side() -> None:
    d = Debate()
    assert [d.next_action(view(t)) for t in range(4)] == [
        Speak("p1", 1), Speak("c1", 1), Speak("p2", 2), Speak("c1", 2)]


def test_after_the_rounds_the_judge_speaks_then_the_verdict_ends_it() -> None:
    d = Debate()
    assert d.next_action(view(4)) == Speak("j", 2)  # max_rounds ends arguments, not the debate
    judged = view(4)
    reply = message("j", "VERDICT: con\nThe critic showed the migration costs.", turn=4)
    reply.metadata = d.message_metadata(judged, PANEL[3], reply.content)
    assert reply.metadata == {"verdict": "con"}
    pstate = d.after_message(judged, reply)
    action = d.next_action(view(5, pstate))
    assert isinstance(action, Finish) and action.reason == "verdict"
    assert action.outcome["verdict"] == "con" and action.outcome["judge"] == "J"
    assert action.outcome["reason"] == "The critic showed the migration costs."


def test_other_termination_rules_still_apply() -> None:
    action = Debate().next_action(view(2, max_messages=2))
    assert action == Finish("max_messages", Debate().outcome(view(2), "max_messages"))
    assert action.outcome["verdict"] is None


def test_the_judge_is_asked_for_a_structured_choice_and_debaters_for_nothing() -> None:
    d = Debate()
    assert d.task(view(4), PANEL[3])["options"] == ["pro", "con"]
    assert d.task(view(0), PANEL[0]) == {}
    assert "VERDICT: pro" in d.instructions(view(4), PANEL[3])
    assert "for the motion" in d.instructions(view(0), PANEL[0])
    assert "against the motion" in d.instructions(view(1), PANEL[2])


def test_parse_verdict() -> None:
    assert parse_verdict("After weighing it all: **VERDICT: Pro**.") == "pro"
    assert parse_verdict("verdict = con") == "con"
    assert parse_verdict("I cannot decide.") is None


@pytest.mark.parametrize("change, expected", [
    ({"agents": [{"persona": "A", "role": "pro"}, {"persona": "J", "role": "judge"}]},
     "at least one `pro` and one `con`"),
    ({"agents": [{"persona": "A", "role": "pro"}, {"persona": "B", "role": "con"}]},
     "exactly one `judge`"),
    ({"agents": [{"persona": "A", "role": "pro"}, {"persona": "B", "role": "con"},
                 {"persona": "J", "role": "judge"}, {"persona": "K", "role": "judge"}]},
     "exactly one `judge`"),
    ({"agents": [{"persona": "A", "role": "pro"}, {"persona": "B", "role": "neutral"},
                 {"persona": "J", "role": "judge"}]}, "role pro, con or judge"),
    ({"parallel_rounds": True}, "parallel_rounds does not apply to `debate`"),
])
def test_bad_panels_are_refused(change: dict, expected: str) -> None:
    b = body(**change)
    with pytest.raises(Unprocessable, match=expected.replace("(", r"\(")):
        Debate().validate(b, [])


def test_a_debate_runs_to_its_verdict_through_a_real_worker(live_server: str) -> None:
    api = Api(live_server)
    created = api.create({
        "topic": "Monoliths beat microservices for small teams", "protocol": "debate",
        "max_rounds": 2,
        "agents": [
            {"persona": "Advocate", "role": "pro", "provider": "simulated"},
            {"persona": "Second Advocate", "role": "pro", "provider": "simulated"},
            {"persona": "Critic", "role": "con", "provider": "simulated"},
            # The simulated judge's structured choice is steered by its params.
            {"persona": "Judge", "role": "judge", "provider": "simulated",
             "params": {"choose": "con"}},
        ]})
    done = api.finished(created["id"])
    assert done["status"] == "completed" and done["stop_reason"] == "verdict"
    assert done["outcome"]["verdict"] == "con" and done["outcome"]["judge"] == "Judge"
    assert done["outcome"]["rounds"] == 2 and done["outcome"]["reason"]
    msgs = api.messages(created["id"])
    assert [m["participant_name"] for m in msgs] == [
        "Advocate", "Critic", "Second Advocate", "Critic", "Judge"]
    assert [m["metadata"].get("side") for m in msgs[:4]] == ["pro", "con", "pro", "con"]
    assert msgs[-1]["metadata"]["verdict"] == "con"
    listed = requests.get(f"{live_server}/v1/discussions", params={"protocol": "debate"},
                          timeout=10)
    assert created["id"] in listed.json()["discussions"]
