"""The engine with real agent backends (the reference platform over HTTP, a real Redis): the
per-turn result cache, failed turns, accounting totals and streamed deltas."""

from __future__ import annotations

import json

from core.storage import keys
from core.storage.store import Store
from protocols import View, get_protocol
from tests.agent_helpers import calls, create, ep_agent, openai_agent, run_to_end, runtime, tuned
from workers import turns
from workers.runtime import StepContext


def _events(store: Store, did: str) -> list:
    return store.events_after(did, "0")


def test_rerun_of_a_turn_reuses_the_reply_and_never_calls_again(settings, store, platform):
    base, _ = platform
    rt = runtime(settings, store)
    did = create(rt, {"topic": "Caching", "agents": [ep_agent("Security Expert"),
                                                    ep_agent("Backend Developer")],
                      "max_rounds": 1})
    # A first step gets turn 0's reply, then "crashes" before committing it.
    token = store.acquire(did, settings.lease_ttl_ms)
    snap = store.snapshot(did, settings.context_window_messages)
    speaker = snap.participants[0]
    assert store.begin_turn(did, token, 0, {"turn": 0}) is None
    protocol = get_protocol(snap.config.protocol)
    view = View(config=snap.config, participants=snap.participants, state=snap.state)
    step = StepContext(rt, did, token, snap, protocol)
    first = turns.call_agent(step, speaker, 1, protocol.instructions(view, speaker))
    assert calls(base, speaker.instance_id, 0) == 1
    store.r.delete(keys.lock(did))  # the lease expires with the crashed worker
    # The re-run (a redelivered task) finishes the discussion.
    run_to_end(rt, did)
    messages, total = store.messages(did, 0, 10)
    assert total == 2
    assert messages[0].content == first.content and messages[0].metadata["cached_reply"]
    assert calls(base, speaker.instance_id, 0) == 1  # not called again
    assert calls(base, snap.participants[1].instance_id, 1) == 1
    assert not store.r.hgetall(keys.replies(did))  # the cache is dropped on commit
    assert [e.type for e in _events(store, did)].count("turn_started") == 2


def test_failed_turns_skip_the_agent_and_the_discussion_goes_on(settings, store, platform):
    base, _ = platform
    rt = runtime(tuned(settings, agent_max_retries=1), store)
    did = create(rt, {"topic": "Faults", "max_rounds": 3, "agents": [
        ep_agent("Flaky", faults={"fail_first": 100, "error_mode": "503"}),
        ep_agent("Steady")]})
    run_to_end(rt, did)
    state = store.state(did)
    assert state.status == "completed" and state.stop_reason == "max_rounds"
    messages, total = store.messages(did, 0, 10)
    assert total == 3 and {m.participant_name for m in messages} == {"Steady"}
    failed = [e.data for e in _events(store, did) if e.type == "turn_failed"]
    assert [f["turn"] for f in failed] == [0, 2, 4]
    assert all(f["transient"] and f["attempts"] == 2 and f["consecutive_failures"] == 1
               for f in failed)
    usage = store.usage(did)
    flaky = next(p for p in store.snapshot(did, 1).participants if p.name == "Flaky")
    assert usage.participants[flaky.participant_id].failures == 3
    assert usage.participants[flaky.participant_id].calls == 6  # 3 turns x 2 attempts
    assert calls(base, flaky.instance_id, 2) == 2


def test_three_consecutive_failures_fail_the_discussion_with_the_reason(settings, store,
                                                                        platform):
    rt = runtime(tuned(settings, agent_max_retries=0), store)
    did = create(rt, {"topic": "Down", "max_rounds": 5, "agents": [
        ep_agent("A", faults={"fail_first": 100, "error_mode": "500"}),
        ep_agent("B", faults={"fail_first": 100, "error_mode": "malformed"})]})
    run_to_end(rt, did)
    state = store.state(did)
    assert state.status == "failed" and state.stop_reason == "agent_failures"
    assert "3 consecutive agent failures" in (state.error or "")
    assert did not in store.active_ids()
    assert [e.type for e in _events(store, did)].count("turn_failed") == 3


def test_accounting_totals_match_the_messages(settings, store, platform):
    s = tuned(settings, model_prices={"ref-model": {"prompt": 1000.0, "completion": 2000.0},
                                      "gpt-4o-mini": {"prompt": 0.15, "completion": 0.6}})
    rt = runtime(s, store)
    did = create(rt, {"topic": "Costs", "max_rounds": 2, "agents": [
        ep_agent("Retrying", faults={"fail_first": 1, "error_mode": "429", "retry_after_s": 0.05}),
        openai_agent("Chatty"), {"persona": "Sim", "provider": "simulated"}]})
    run_to_end(rt, did)
    messages, total = store.messages(did, 0, 10)
    assert total == 6
    usage = store.usage(did)
    for field in ("prompt_tokens", "completion_tokens"):
        assert getattr(usage.total, field) == sum(m.metadata[field] for m in messages) > 0
    assert abs(usage.total.cost_usd - sum(m.metadata["cost_usd"] for m in messages)) < 1e-6
    retrying = [m for m in messages if m.participant_name == "Retrying"]
    # Priced from the table: 1000 / 2000 USD per million tokens.
    m0 = retrying[0].metadata
    assert abs(m0["cost_usd"] - (m0["prompt_tokens"] * 1000 + m0["completion_tokens"] * 2000)
               / 1e6) < 1e-6
    assert m0["attempts"] == 2 and m0["retries"] == 1 and m0["latency_ms"] > 0
    per = usage.participants[retrying[0].participant_id]
    assert per.messages == 2 and per.calls == 4 and per.retries == 2
    assert usage.total.messages == 6 and usage.total.retries == 2
    assert sum(p.completion_tokens for p in usage.participants.values()) == \
        usage.total.completion_tokens
    session = store.session(did)
    assert session.usage == usage


def test_orchestration_calls_are_counted_through_the_commit(settings, store, platform):
    from core.agents import AgentReply
    from core.storage.store import Commit
    from workers import accounting

    rt = runtime(settings, store)
    did = create(rt, {"topic": "Selector", "agents": [{"persona": "A"}], "max_rounds": 1})
    reply = AgentReply(content="B speaks next", prompt_tokens=30, completion_tokens=3,
                       cost_usd=0.001, attempts=2)
    store.commit(did, Commit(increments=accounting.increments("orchestration", reply=reply)))
    usage = store.usage(did)
    assert usage.orchestration.prompt_tokens == 30 and usage.orchestration.calls == 2
    assert usage.total.cost_usd == 0.001 and usage.participants == {}


def test_streaming_agent_sends_deltas_and_commits_once(settings, store, platform):
    rt = runtime(tuned(settings, stream_delta_interval_s=0), store)
    did = create(rt, {"topic": "Streams", "max_rounds": 1, "agents": [
        ep_agent("Streamer", stream=True), openai_agent("Chat", stream=True)]})
    run_to_end(rt, did)
    messages, total = store.messages(did, 0, 10)
    assert total == 2
    events = _events(store, did)
    for message in messages:
        deltas = [e for e in events if e.type == "message_delta"
                  and e.data["turn"] == message.turn]
        assert len(deltas) > 3
        assert [d.data["index"] for d in deltas] == list(range(len(deltas)))
        assert "".join(d.data["delta"] for d in deltas) == message.content
        committed = [e for e in events if e.type == "message"
                     and json.loads(json.dumps(e.data))["turn"] == message.turn]
        assert len(committed) == 1
        # Every delta of the turn comes before its one committed message.
        ids = [e.id for e in events]
        assert max(ids.index(d.id) for d in deltas) < ids.index(committed[0].id)


def test_a_backend_bug_fails_the_turn_instead_of_stranding_the_discussion(settings, store):
    from core.agents import Backends
    from core.agents.simulated import SimulatedBackend

    class Buggy(SimulatedBackend):
        name = "buggy"

        def generate(self, request):
            raise KeyError("oops")

    rt = runtime(settings, store)
    rt.backends = Backends(settings, extra={"buggy": Buggy()})
    did = create(rt, {"topic": "Bugs", "max_rounds": 2,
                      "agents": [{"persona": "Bug", "provider": "buggy"},
                                 {"persona": "Fine", "provider": "simulated"}]})
    run_to_end(rt, did)
    assert store.state(did).status == "completed"
    failed = [e.data for e in _events(store, did) if e.type == "turn_failed"]
    assert len(failed) == 2 and "KeyError" in failed[0]["error"]
