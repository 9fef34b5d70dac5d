"""Simultaneous rounds (`parallel_rounds`): the agents of a round answer at once, as parallel
Celery tasks, from the same context; their replies join the transcript together, in listed order.

The step that meets a SpeakAll records the batch in the state's `parallel` field (its first
turn, round and the transcript length it answers, `context_seq`), announces the turns and enqueues
one `discussion.parallel_turn` task per agent, then releases the lease: no worker waits. Each task
calls its agent with the transcript up to `context_seq` only (so nobody sees another's answer of
the same round), caches the reply (or a failure marker) under its turn, and the task that
completes the batch enqueues a step. That step commits the cached replies one by one, fenced by
turn, in listed order. A crash re-runs only what is not cached; a lost task is re-sent by a later
step once the batch is older than two turn deadlines. Without a task dispatcher (tests, tools),
the step calls the agents itself on a thread pool.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from core.agents import AgentReply
from core.ground.errors import AgentError, DiscussionNotFound, StaleLease
from core.ground.models import Participant, Status
from core.storage.store import Commit, Snapshot
from protocols import SpeakAll, get_protocol
from workers.runtime import Runtime, StepContext
from workers.turns import (
    call_agent,
    commit_reply,
    failure_marker,
    failure_of,
    turn_failed,
    view_of,
)

log = logging.getLogger(__name__)

DEFERRED = -1  # speak_all's answer when the replies are being produced by tasks


def _batch(snap: Snapshot, action: SpeakAll) -> dict[int, Participant]:
    base = snap.state.turn
    speakers = [snap.participant(pid) for pid in action.participant_ids]
    if any(p is None for p in speakers):
        raise StaleLease("protocol chose an unknown participant")
    return {base + i: p for i, p in enumerate(speakers) if p is not None}


def speak_all(step: StepContext, action: SpeakAll) -> int:
    """Commit the batch if every reply is in; else have them produced. Turns committed, or
    DEFERRED when tasks are producing the replies (the last one wakes a step)."""
    rt, did, snap = step.rt, step.did, step.snap
    turns = _batch(snap, action)
    base = snap.state.turn
    cached = rt.store.cached_replies(did, list(turns))
    missing = [t for t in turns if t not in cached]
    if missing:
        mark = snap.state.parallel or {}
        fresh = (mark.get("base") == base
                 and rt.wall_clock() - float(mark.get("at", 0))
                 < 2 * rt.settings.turn_deadline_s + rt.settings.lease_ttl_s)
        if rt.dispatch_parallel is not None and fresh:
            return DEFERRED  # already sent; the last task to finish wakes a step
        mark = {"base": base, "round": action.round, "context_seq": snap.state.seq,
                "at": rt.wall_clock()}
        rt.store.commit(did, Commit(
            updates={"parallel": mark},
            events=[("turn_started", {"turn": t, "round": action.round,
                                      "participant_id": turns[t].participant_id,
                                      "participant_name": turns[t].name, "parallel": True})
                    for t in missing],
            allowed_statuses=(Status.ACTIVE,)),
            token=step.token, turn=base, lease_ttl_ms=rt.settings.lease_ttl_ms)
        snap.state.parallel = mark
        if rt.dispatch_parallel is not None:
            for t in missing:
                rt.dispatch_parallel(did, t, turns[t].participant_id)
            return DEFERRED
        cached.update(_run_here(step, action, {t: turns[t] for t in missing}))
    for t, p in turns.items():
        if snap.state.status != Status.ACTIVE:
            break
        res = cached[t]
        if "error" in res:
            turn_failed(step, p, action.round, failure_of(res))
        else:
            commit_reply(step, p, action.round, AgentReply.from_json(res), cached=True)
    return len(turns)


def _answer(step: StepContext, round_no: int, turn: int, agent: Participant) -> dict:
    """One agent's answer of the batch, cached under its turn: a reply or a failure marker."""
    view = view_of(step.rt, step.snap)
    # Parallel answers write only their cached reply, never under the lease: no token, and
    # no streamed deltas (they are revealed together, at commit).
    unfenced = StepContext(step.rt, step.did, 0, step.snap, step.protocol)
    try:
        reply = call_agent(unfenced, agent, round_no, step.protocol.instructions(view, agent),
                           turn=turn, task=step.protocol.task(view, agent), stream=False)
        result = reply.to_json()
    except AgentError as exc:
        result = failure_marker(exc)
    step.rt.store.cache_reply(step.did, turn, result)
    return result


def _run_here(step: StepContext, action: SpeakAll,
              missing: dict[int, Participant]) -> dict[int, dict]:
    with ThreadPoolExecutor(max_workers=min(len(missing), 16)) as pool:
        futures = {t: pool.submit(_answer, step, action.round, t, p)
                   for t, p in missing.items()}
        return {t: f.result() for t, f in futures.items()}


def run_parallel_turn(rt: Runtime, did: str, turn: int, participant_id: str) -> str:
    """The `discussion.parallel_turn` task: one agent's answer of a simultaneous round."""
    try:
        snap = rt.store.snapshot(did, rt.settings.context_window_messages)
    except DiscussionNotFound:
        return "gone"
    mark = snap.state.parallel or {}
    base = int(mark.get("base", -1))
    agent = snap.participant(participant_id)
    if (snap.state.status != Status.ACTIVE or agent is None or turn < snap.state.turn
            or not base <= turn):
        return "stale"
    if rt.store.cached_replies(did, [turn]):
        return "done"  # a redelivered task: the answer is already in
    # The context the whole batch answers: the transcript as it was when the round began.
    context_seq = int(mark.get("context_seq", snap.state.seq))
    snap.recent = [m for m in snap.recent if m.seq <= context_seq]
    protocol = get_protocol(snap.config.protocol)
    _answer(StepContext(rt, did, 0, snap, protocol), int(mark.get("round", 1)), turn, agent)
    batch = protocol.next_action(view_of(rt, snap))
    size = len(batch.participant_ids) if isinstance(batch, SpeakAll) else 0
    turns = list(range(base, base + size)) or [turn]
    if len(rt.store.cached_replies(did, turns)) == len(turns):
        rt.enqueue(did)  # the batch is complete: a step commits it
    return "answered"
