"""The `a2a` provider against a real A2A agent served by the a2a-sdk's own server side: the card
at creation (422/503, nothing stored), one message per turn with stable ids, task states,
streaming, named credentials, the deadline, and the engine's failure rules."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from core.agents import Backends
from core.agents.a2a import context_id, message_id
from core.ground.errors import AgentError, Unprocessable
from core.storage import keys
from scripts.embedded_redis import free_port
from tests.a2a_agent import A2AAgent, Behaviour, start_a2a_agent
from tests.agent_helpers import create, participant, run_to_end, runtime, tuned, turn_request
from tests.autogen_helpers import component

TOPIC = "Design API for user authentication"


@pytest.fixture(scope="module")
def a2a_server() -> Iterator[A2AAgent]:
    agent = start_a2a_agent("Partner Agent")
    yield agent
    agent.stop()


@pytest.fixture
def a2a(a2a_server: A2AAgent) -> A2AAgent:
    a2a_server.behaviour.__dict__.update(Behaviour().__dict__)
    return a2a_server


@pytest.fixture(scope="module")
def streaming_server() -> Iterator[A2AAgent]:
    agent = start_a2a_agent("Streaming Agent", streaming=True)
    agent.behaviour.mode = "stream"
    yield agent
    agent.stop()


def a2a_agent(persona: str, url: str, **params) -> dict:
    return {"persona": persona, "provider": "a2a", "params": {"url": url, **params}}


def test_each_turn_is_one_message_with_ids_stable_across_retries(settings, a2a) -> None:
    backend = Backends(settings).get("a2a")
    agent = participant("a2a", url=a2a.url)
    reply = backend.generate(turn_request(agent, turn=3, did="disc_ids"))
    backend.generate(turn_request(agent, turn=3, did="disc_ids"))  # the same turn re-run
    backend.generate(turn_request(agent, turn=4, did="disc_ids"))
    assert reply.content == "Partner Agent here: I read 1 transcript lines and add my view."
    first, again, nxt = a2a.behaviour.received
    assert first.message_id == again.message_id == message_id("disc_ids", 3, "agent_t")
    assert nxt.message_id != first.message_id
    assert first.context_id == nxt.context_id == context_id("disc_ids", "agent_t")
    assert context_id("disc_ids", "agent_other") != first.context_id
    # Instructions, then the transcript as data, then the same context in structured form.
    assert first.texts[0] == "You are Tester."
    assert first.texts[1].startswith("<transcript>")
    assert first.data[0]["discussion"]["discussion_id"] == "disc_ids"
    assert first.metadata["discussion_id"] == "disc_ids"
    assert reply.completion_tokens > 0 and reply.metadata["usage_estimated"]


@pytest.mark.parametrize("mode", ["input_required", "failed", "rejected"])
def test_a_task_that_ends_without_an_answer_is_a_failed_turn(settings, a2a, mode) -> None:
    a2a.behaviour.mode = mode
    with pytest.raises(AgentError) as err:
        Backends(settings).get("a2a").generate(turn_request(participant("a2a", url=a2a.url)))
    assert f"the task ended {mode.replace('_', '-')}" in err.value.message
    assert not err.value.transient


def test_a_completed_task_gives_its_artifact_text(settings, a2a) -> None:
    a2a.behaviour.mode = "task"
    reply = Backends(settings).get("a2a").generate(turn_request(participant("a2a", url=a2a.url)))
    assert reply.content.startswith("Partner Agent here:")
    assert reply.metadata["a2a"]["state"] == "completed" and reply.metadata["a2a"]["task_id"]


def test_streamed_text_arrives_as_deltas(settings, streaming_server) -> None:
    deltas: list[str] = []
    agent = participant("a2a", url=streaming_server.url, stream=True)
    reply = Backends(settings).get("a2a").generate(turn_request(agent, on_delta=deltas.append))
    assert len(deltas) > 5 and "".join(deltas) == reply.content


def test_a_slow_agent_is_cut_at_the_turn_deadline(settings, a2a) -> None:
    a2a.behaviour.__dict__.update(mode="slow", delay_s=3.0)
    with pytest.raises(AgentError) as err:
        Backends(settings).get("a2a").generate(
            turn_request(participant("a2a", url=a2a.url), deadline_s=1.0))
    assert err.value.transient


def test_a_busy_agent_is_retried_with_the_same_message(settings, a2a) -> None:
    a2a.behaviour.fail_first = 2
    agent = participant("a2a", url=a2a.url)
    reply = Backends(settings).get("a2a").generate(turn_request(agent, turn=7, did="disc_busy"))
    assert reply.attempts == 3 and reply.content.startswith("Partner Agent here")
    expected = message_id("disc_busy", 7, "agent_t")
    assert a2a.behaviour.posted_ids == [expected] * 3  # the same message each time
    assert len(a2a.behaviour.received) == 1  # and the agent ran it once


def test_an_agent_that_went_away_is_a_transient_failure(settings) -> None:
    gone = start_a2a_agent("Gone")
    backends = Backends(tuned(settings, agent_max_retries=1))
    agent = participant("a2a", url=gone.url)
    backends.register("disc_gone", agent)  # its card is now cached
    gone.stop()
    with pytest.raises(AgentError) as err:
        backends.get("a2a").generate(turn_request(agent))
    assert err.value.transient and err.value.details["attempts"] == 2


def test_credentials_are_named_in_the_body_and_sent_only_by_the_server(settings) -> None:
    secured = start_a2a_agent("Secured", token="s3cret-token")
    try:
        s = tuned(settings, agent_credentials={
            "PARTNER_A2A": {"token": "s3cret-token", "urls": [secured.url]},
            "ELSEWHERE": {"token": "other", "urls": ["https://partner.example/"]}})
        backends = Backends(s)
        agent = participant("a2a", url=secured.url, auth="PARTNER_A2A")
        backends.validate(agent)
        reply = backends.get("a2a").generate(turn_request(agent))
        assert reply.content.startswith("Secured here")
        assert secured.behaviour.received[-1].authorization == "Bearer s3cret-token"
        with pytest.raises(AgentError) as err:  # without the credential the agent refuses
            backends.get("a2a").generate(turn_request(participant("a2a", url=secured.url)))
        assert "401" in err.value.message and not err.value.transient
        refused = {
            "token": participant("a2a", url=secured.url, token="s3cret-token"),
            "UNKNOWN": participant("a2a", url=secured.url, auth="UNKNOWN"),
            "may not be sent": participant("a2a", url=secured.url, auth="ELSEWHERE"),
        }
        for needle, bad in refused.items():
            with pytest.raises(Unprocessable, match=needle):
                backends.validate(bad)
    finally:
        secured.stop()


def test_creation_resolves_the_card_or_refuses_and_stores_nothing(client, r, a2a,
                                                                  platform) -> None:
    textless = start_a2a_agent("Images Only", input_modes=("image/png",))
    try:
        cases = [
            (a2a_agent("Nothing There", f"http://127.0.0.1:{free_port()}"), 503, "did not answer"),
            (a2a_agent("No Card", platform[0]), 422, "serves no valid A2A agent card"),
            (a2a_agent("Images", textless.url), 422, "accepts no text"),
            (a2a_agent("Bad", "ftp://x"), 422, "params.url"),
            ({"persona": "X", "provider": "a2aa"}, 422, "provider 'a2aa' is not available"),
        ]
        for agent, status, needle in cases:
            resp = client.post("/v1/discussions", json={"topic": TOPIC, "agents": [agent]})
            assert resp.status_code == status, resp.get_json()
            assert needle in resp.get_json()["message"]
        # Nothing stored, whatever the refusal (other keys may be a session worker's heartbeat).
        assert not r.keys("discussion:*") and not r.exists(keys.ALL, keys.ACTIVE)
        resp = client.post("/v1/discussions", json={"topic": TOPIC,
                                                    "agents": [a2a_agent("Partner", a2a.url)]})
        assert resp.status_code == 201, resp.get_json()
    finally:
        textless.stop()


def test_through_the_engine_failures_follow_the_rules(settings, store, a2a) -> None:
    rt = runtime(settings, store)
    did = create(rt, {"topic": TOPIC, "max_rounds": 2, "agents": [
        a2a_agent("Partner", a2a.url), {"persona": "Local", "provider": "simulated"}]})
    a2a.behaviour.mode = "input_required"
    run_to_end(rt, did)
    events = store.events_after(did, "0")
    failed = [e.data for e in events if e.type == "turn_failed"]
    assert [f["turn"] for f in failed] == [0, 2] and "input-required" in failed[0]["error"]
    messages, total = store.messages(did, 0, 10)
    assert total == 2 and {m.participant_name for m in messages} == {"Local"}
    assert store.state(did).status == "completed"
    assert not store.r.exists(keys.replies(did))


def test_through_the_engine_a_streaming_agent_sends_deltas(settings, store,
                                                          streaming_server) -> None:
    rt = runtime(settings, store)
    did = create(rt, {"topic": TOPIC, "max_rounds": 1, "agents": [
        a2a_agent("Streamer", streaming_server.url, stream=True)]})
    run_to_end(rt, did)
    events = store.events_after(did, "0")
    deltas = "".join(e.data["delta"] for e in events if e.type == "message_delta")
    messages, _ = store.messages(did, 0, 10)
    assert deltas == messages[0].content and messages[0].metadata["provider"] == "a2a"
    usage = store.usage(did)
    assert usage.total.completion_tokens > 0 and usage.total.messages == 1


def test_message_ids_do_not_depend_on_the_process(a2a) -> None:
    assert message_id("disc_a", 1, "agent_b") == message_id("disc_a", 1, "agent_b")
    assert requests.get(f"{a2a.url}/.well-known/agent-card.json", timeout=5).ok


def test_agent_urls_can_be_limited_to_allowed_prefixes(settings, a2a, platform) -> None:
    # A server whose network reaches internal services limits where bodies may point agents.
    s = tuned(settings, agent_url_prefixes=f"{a2a.url}, https://agents.example/")
    backends = Backends(s)
    backends.validate(participant("a2a", url=a2a.url))
    with pytest.raises(Unprocessable, match="AGENT_URL_PREFIXES"):
        backends.validate(participant("a2a", url="http://169.254.169.254/latest"))
    with pytest.raises(Unprocessable, match="model client's URL"):
        backends.validate(participant("autogen", component=component(platform[0] + "/v1")))
