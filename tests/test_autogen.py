"""The `autogen` provider: AutoGen AgentChat agents given as their component JSON (dumped by
AutoGen itself), their model client on the reference platform's OpenAI-compatible server over
real HTTP, their state in a real Redis; the allow-list checked before anything is imported."""

from __future__ import annotations

import copy
import sys

import pytest
import requests

from core.agents import Backends
from core.agents import autogen as autogen_backend
from core.ground.errors import Unprocessable
from core.storage import agent_state, keys
from tests.agent_helpers import create, participant, run_to_end, runtime, tuned, turn_request
from tests.autogen_helpers import autogen_agent, component

TOPIC = "Design API for user authentication"


@pytest.fixture
def base_url(platform) -> str:
    return platform[0] + "/v1"


def _with_provider(comp: dict, path: tuple, provider: str) -> dict:
    bad = copy.deepcopy(comp)
    node = bad
    for step in path:
        node = node[step]
    node["provider"] = provider
    return bad


def test_turns_see_only_what_is_new_and_state_lives_in_redis(settings, store, base_url):
    rt = runtime(settings, store)
    did = create(rt, {"topic": TOPIC, "max_rounds": 3, "agents": [
        autogen_agent("Security Expert", base_url),
        {"persona": "Backend Developer", "provider": "simulated"}]})
    run_to_end(rt, did)
    assert store.state(did).status == "completed"
    messages, total = store.messages(did, 0, 20)
    assert total == 6
    ours = [m for m in messages if m.participant_name == "Security Expert"]
    assert all(m.metadata["provider"] == "autogen" for m in ours)
    # The model server's reply names the speaker it answers (the Backend Developer's turn 2).
    assert "Backend Developer" in ours[1].content
    pid = ours[0].participant_id
    record = agent_state.load(store.r, did, pid)
    assert record["turn"] == 4 and record["seen"] == 4
    context = record["after"]["llm_context"]["messages"]
    seen = "\n".join(m["content"] for m in context if m.get("type") == "UserMessage")
    # Each of the other participant's messages reached the agent exactly once, and never its
    # own (it keeps those as its own replies).
    for m in messages:
        if m.participant_name == "Backend Developer" and m.seq < 5:
            assert seen.count(m.content) == 1
        if m.participant_name == "Security Expert":
            assert m.content not in seen
    assert len([m for m in context if m.get("type") == "AssistantMessage"]) == 3
    usage = store.usage(did).participants[pid]
    assert usage.messages == 3 and usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert store.r.hexists(keys.agent_state(did), pid)


def test_a_rerun_of_a_turn_starts_from_the_state_before_it(settings, store, base_url):
    backends = Backends(settings)
    agent = participant("autogen", component=component(base_url))
    backend = backends.get("autogen")
    backend.generate(turn_request(agent, turn=0, did="disc_rerun"))
    after_once = agent_state.load(store.r, "disc_rerun", "agent_t")["after"]
    # The worker died after saving but before the reply was committed: the turn runs again.
    backend.generate(turn_request(agent, turn=0, did="disc_rerun"))
    after_twice = agent_state.load(store.r, "disc_rerun", "agent_t")["after"]
    assert len(after_twice["llm_context"]["messages"]) == len(
        after_once["llm_context"]["messages"]) == 2
    backend.generate(turn_request(agent, turn=1, did="disc_rerun"))
    record = agent_state.load(store.r, "disc_rerun", "agent_t")
    assert len(record["after"]["llm_context"]["messages"]) == 4 and record["before"]


def test_hostile_components_are_refused_before_anything_is_imported(client, r, base_url):
    good = component(base_url)
    trap = "tests.autogen_trap.Trap"
    cases = {
        "'subprocess.Popen'": _with_provider(good, ("config", "model_client"),
                                             "subprocess.Popen"),
        "'tests.autogen_trap.Trap'": _with_provider(good, ("config", "model_context"), trap),
        "workbench[0].provider": _with_provider(good, ("config", "workbench", 0), trap),
        "'autogen_agentchat.agents.UserProxyAgent'": _with_provider(
            good, (), "autogen_agentchat.agents.UserProxyAgent"),
        "must be an AgentChat AssistantAgent": good["config"]["model_client"],
        "failed to load": {**good, "config": {**good["config"], "name": "not a name!"}},
        "credentials are never taken": _secret(good),
        "needs params.component": None,
    }
    for needle, comp in cases.items():
        agent = {"persona": "X", "provider": "autogen",
                 "params": {} if comp is None else {"component": comp}}
        resp = client.post("/v1/discussions", json={"topic": TOPIC, "agents": [agent]})
        assert resp.status_code == 422, (needle, resp.get_json())
        assert needle in resp.get_json()["message"], resp.get_json()
    assert "tests.autogen_trap" not in sys.modules
    assert not r.keys("discussion:*") and not r.exists(keys.ALL, keys.ACTIVE)
    # AutoGen's short names resolve to the class they stand for, and pass.
    alias = _with_provider(good, ("config", "model_client"), "OpenAIChatCompletionClient")
    resp = client.post("/v1/discussions", json={"topic": TOPIC, "agents": [
        {"persona": "Aliased", "provider": "autogen", "params": {"component": alias}}]})
    assert resp.status_code == 201, resp.get_json()


def _secret(comp: dict) -> dict:
    bad = copy.deepcopy(comp)
    bad["config"]["model_client"]["config"]["api_key"] = "sk-live-123"
    return bad


def test_the_model_key_is_a_named_server_credential(settings, store, platform, base_url):
    s = tuned(settings, agent_credentials={"TEAM_OPENAI": {"token": "sk-team",
                                                           "urls": [base_url]}})
    comp = component(base_url, default_headers={"Idempotency-Key": "autogen-key-test"})
    agent = participant("autogen", component=comp, auth="TEAM_OPENAI")
    backends = Backends(s)
    backends.validate(agent)
    backends.get("autogen").generate(turn_request(agent, did="disc_key"))
    seen = requests.get(f"{platform[0]}/requests", params={"key": "autogen-key-test"},
                        timeout=5).json()
    assert seen["model"] == "ref-model"
    # The dumped component's masked key is accepted (and replaced); the body never holds one.
    assert comp["config"]["model_client"]["config"]["api_key"] == "**********"


def test_a_server_without_autogen_says_so(settings, monkeypatch, base_url):
    monkeypatch.setattr(autogen_backend, "installed", lambda: False)
    with pytest.raises(Unprocessable, match="not installed"):
        Backends(settings).validate(participant("autogen", component=component(base_url)))


def test_the_allow_list_is_a_setting(settings, base_url):
    narrow = tuned(settings, autogen_allowed_classes="autogen_agentchat.agents.AssistantAgent")
    with pytest.raises(Unprocessable, match="OpenAIChatCompletionClient"):
        Backends(narrow).validate(participant("autogen", component=component(base_url)))
