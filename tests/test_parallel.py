"""Simultaneous rounds, step by step in this thread: tasks answer, the last one wakes a step,
the step commits the batch in listed order; re-runs and duplicates change nothing."""

from __future__ import annotations

from core.storage.store import Store
from tests.agent_helpers import create, run_to_end, runtime
from workers.engine import Outcome, run_step
from workers.parallel import run_parallel_turn

BODY = {"topic": "Pick a database", "protocol": "round_robin", "max_rounds": 2,
        "parallel_rounds": True,
        "agents": [{"persona": "Security Expert"}, {"persona": "Backend Developer"},
                   {"persona": "SRE", "params": {"fail": True}}]}


def test_batch_through_tasks(settings, store: Store) -> None:
    rt = runtime(settings, store)
    sent: list[tuple[str, int, str]] = []
    rt.dispatch_parallel = lambda did, turn, pid: sent.append((did, turn, pid))
    woken: list[str] = []
    rt.enqueue = woken.append
    did = create(rt, BODY)
    assert run_step(rt, did) == Outcome.IDLE
    assert [t for _, t, _ in sent] == [0, 1, 2]
    assert store.messages(did, 0, 10)[1] == 0  # nothing joins before the whole batch
    assert run_step(rt, did) == Outcome.IDLE and len(sent) == 3  # not sent twice
    for _, turn, pid in sent[:2]:
        assert run_parallel_turn(rt, did, turn, pid) == "answered"
    assert woken == []  # the batch is not complete yet
    assert run_parallel_turn(rt, did, *sent[0][1:]) == "done"  # a redelivered task
    assert run_parallel_turn(rt, did, *sent[2][1:]) == "answered"
    assert woken == [did]
    assert run_step(rt, did) == Outcome.IDLE  # round 1 committed; round 2 sent
    messages, total = store.messages(did, 0, 10)
    assert total == 2 and [m.turn for m in messages] == [0, 1]
    failed = [e.data for e in store.events_after(did, "0") if e.type == "turn_failed"]
    assert [f["turn"] for f in failed] == [2]  # SRE's failure, recorded in its place
    assert [t for _, t, _ in sent[3:]] == [3, 4, 5]
    assert run_parallel_turn(rt, did, 1, sent[1][2]) == "stale"  # an old round's task


def test_batch_without_a_dispatcher_runs_in_the_step(settings, store: Store) -> None:
    rt = runtime(settings, store)
    did = create(rt, {**BODY, "agents": BODY["agents"][:2]})
    run_to_end(rt, did)
    messages, total = store.messages(did, 0, 10)
    assert total == 4 and store.state(did).status == "completed"
    # Round 1: both open (neither saw the other); round 2: each answers the latest message by
    # someone else in the same context (an agent never answers itself).
    first = {m.participant_name: m.participant_id for m in messages[:2]}
    assert all("replying_to" not in m.metadata for m in messages[:2])
    assert [m.metadata["replying_to"] for m in messages[2:]] == [
        first["Backend Developer"], first["Security Expert"]]
