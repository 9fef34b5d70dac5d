"""Ballots and moderator choices asked for as structured output where the backend supports it
(`response_format` on the OpenAI-compatible reference server, AutoGen's structured message, an
A2A data part), the `VOTE:` parse as the fallback, the path recorded on each message and the
unparsed ballots counted in the outcome. Real servers over HTTP, a real Redis."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from tests.a2a_agent import A2AAgent, start_a2a_agent
from tests.agent_helpers import create, openai_agent, run_to_end, runtime
from tests.autogen_helpers import autogen_agent

PROPOSAL = "Adopt passkeys for all customer logins"


def consensus(agents: list[dict], rounds: int = 1) -> dict:
    return {"topic": "Authentication", "protocol": "consensus", "max_rounds": rounds,
            "agents": agents,
            "consensus": {"proposal": PROPOSAL, "decision_rule": "majority", "quorum": 0.5}}


@pytest.fixture
def a2a_pair() -> Iterator[tuple[A2AAgent, A2AAgent]]:
    voter = start_a2a_agent("Data Voter")
    prose = start_a2a_agent("Prose Voter")
    prose.behaviour.mode = "prose"
    yield voter, prose
    voter.stop()
    prose.stop()


def test_openai_ballots_use_the_json_schema_and_prose_falls_back(settings, store, platform):
    rt = runtime(settings, store)
    did = create(rt, consensus([openai_agent("Security Expert"),
                                openai_agent("Backend Developer"),
                                openai_agent("Skeptic", model="prose-model")]))
    run_to_end(rt, did)
    messages, _ = store.messages(did, 0, 10)
    sources = {m.participant_name: m.metadata["vote_source"] for m in messages}
    assert sources == {"Security Expert": "structured", "Backend Developer": "structured",
                       "Skeptic": "unparsed"}
    assert messages[0].content.endswith("\nVOTE: yes")  # the data, rendered for the transcript
    assert messages[2].content.startswith("I'm in favour, with one reservation")
    assert messages[2].metadata["vote"] == "abstain"
    sent = requests.get(f"{platform[0]}/requests", params={"key": f"{did}:0"}, timeout=5).json()
    fmt = sent["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["schema"]["properties"][
        "vote"]["enum"] == ["yes", "no", "abstain"]
    outcome = store.state(did).outcome
    assert outcome["decision"] == "accepted"
    assert outcome["unparsed_ballots"] == 1
    assert outcome["ballot_sources"] == {"structured": 2, "text": 0, "unparsed": 1}


def test_every_backend_path_in_one_ballot(settings, store, platform, a2a_pair):
    voter, prose = a2a_pair
    rt = runtime(settings, store)
    did = create(rt, consensus([
        {"persona": "Data Voter", "provider": "a2a", "params": {"url": voter.url}},
        {"persona": "Prose Voter", "provider": "a2a", "params": {"url": prose.url}},
        autogen_agent("AutoGen Voter", platform[0] + "/v1"),
        {"persona": "Simulated Voter", "provider": "simulated", "params": {"vote": "no"}}]))
    run_to_end(rt, did)
    messages, _ = store.messages(did, 0, 10)
    by_name = {m.participant_name: m.metadata for m in messages}
    assert {n: (m["vote"], m["vote_source"]) for n, m in by_name.items()} == {
        "Data Voter": ("yes", "structured"),
        "Prose Voter": ("abstain", "unparsed"),
        "AutoGen Voter": ("yes", "structured"),
        "Simulated Voter": ("no", "text"),
    }
    # The A2A agent was asked for the ballot in a data part, with its schema.
    asked = voter.behaviour.received[0].data[0]["task"]
    assert asked["kind"] == "vote" and asked["proposal"] == PROPOSAL
    assert asked["schema"]["required"] == ["reason", "vote"]
    outcome = store.state(did).outcome
    assert outcome["ballot_sources"] == {"structured": 2, "text": 1, "unparsed": 1}
    assert outcome["unparsed_ballots"] == 1
    assert outcome["decision"] == "accepted"  # 2 yes, 1 no, 1 abstain (majority of decisive)


@pytest.mark.parametrize(("model", "source"), [("gpt-4o-mini", "structured"),
                                               ("prose-model", "fallback")])
def test_a_moderator_agent_chooses_in_structured_form(settings, store, platform, model, source):
    rt = runtime(settings, store)
    did = create(rt, {"topic": "Authentication", "protocol": "moderated", "max_rounds": 1,
                      "agents": [{**openai_agent("Chair", model=model), "moderator": True},
                                 {"persona": "Security Expert", "provider": "simulated"},
                                 {"persona": "Backend Developer", "provider": "simulated"}]})
    run_to_end(rt, did)
    events = store.events_after(did, "0")
    floors = [e.data for e in events if e.type == "moderation"]
    assert floors and all(f["choice_source"] == source for f in floors)
    messages, _ = store.messages(did, 0, 10)
    assert messages and all(m.metadata["choice_source"] == source for m in messages)
    assert messages[0].participant_name == "Security Expert"
