"""The step engine: run a discussion's turns while holding its lease, for one time slice.

One step = acquire the fenced lease, read a snapshot, then loop: ask the protocol, call the
agent, commit the message atomically (the commit also renews the lease), until the protocol
stops, a person must answer, or the slice is used up. Running several turns per task keeps the
per-turn cost at one Redis round trip for fast agents; the slice bounds how long one discussion
holds a worker. A crash loses at most the one uncommitted turn, which the next step re-runs
(reusing a cached reply for costly backends).
"""

from __future__ import annotations

import dataclasses
import logging
from enum import StrEnum

import redis
from celery.exceptions import SoftTimeLimitExceeded

from core.ground.errors import AttemptsExhausted, Conflict, DiscussionNotFound, StaleLease
from core.ground.models import Status, StopReason
from core.storage import audit, quotas
from core.storage.records import status_change
from core.storage.store import Commit, CommitResult
from protocols import (
    Choose,
    Finish,
    Idle,
    Speak,
    SpeakAll,
    WaitForHuman,
    get_protocol,
)
from workers import human_turns, orchestration, parallel
from workers import turns as turns_mod
from workers.runtime import BegunTurn, Runtime, StepContext

log = logging.getLogger(__name__)

MAX_CONSECUTIVE_FAILURES = turns_mod.MAX_CONSECUTIVE_FAILURES


class Outcome(StrEnum):
    IDLE = "idle"  # nothing more to do until something happens
    MORE = "more"  # the slice ran out with work left: schedule another step
    BUSY = "busy"  # another step holds the lease; it will carry on
    GONE = "gone"  # the discussion was deleted
    STALE = "stale"  # our lease was taken over; the newer step carries on


def run_step(rt: Runtime, discussion_id: str) -> Outcome:
    """Run one step of a discussion; see the module docstring."""
    settings, store = rt.settings, rt.store
    try:
        token = store.acquire(discussion_id, settings.lease_ttl_ms, owner=rt.owner())
    except DiscussionNotFound:
        return Outcome.GONE
    if token is None:
        return Outcome.BUSY
    # Renewed (fenced) while the step works, agent calls included: see workers.leases.
    lease = rt.leases.hold(discussion_id, token) if rt.leases is not None else None
    outcome = Outcome.IDLE
    seen_seq = -1
    park = False
    try:
        snap = store.snapshot(discussion_id, settings.context_window_messages)
        seen_seq = snap.state.seq
        step = StepContext(rt, discussion_id, token, snap,
                           get_protocol(snap.config.protocol))
        outcome = _run_slice(step)
        seen_seq = snap.state.seq
        # Park only after a slice that ended normally with nothing to do: a step cut short by
        # an exception or a time limit must stay visible to the reconciler.
        park = outcome == Outcome.IDLE
    except StaleLease:
        log.info("step for %s lost its lease; a newer step carries on", discussion_id)
        outcome = Outcome.STALE
    except Conflict as exc:
        # Paused, cancelled or ended by someone else while we ran: stop here.
        log.info("step for %s stopped: %s", discussion_id, exc.message)
        outcome = Outcome.IDLE
    except DiscussionNotFound:
        outcome = Outcome.GONE
    except (redis.ConnectionError, redis.TimeoutError, SoftTimeLimitExceeded):
        # Transient or a timeout: the task retries or re-enqueues; a turn that keeps failing
        # this way is stopped by the attempts cap in begin_turn.
        raise
    except Exception as exc:
        # A bug or corrupt state: record it on the discussion (fenced, while the lease is
        # still ours) so it fails visibly instead of stalling or crashing workers forever.
        # Clients see the code only; the log and the audit keep what was raised.
        log.exception("step of %s failed", discussion_id)
        _record_failure(rt, discussion_id, token, StopReason.INTERNAL_ERROR,
                        StopReason.INTERNAL_ERROR.value)
        try:
            audit.record(store.r, discussion_id, actor="system", action="discussion.failed",
                         details={"reason": StopReason.INTERNAL_ERROR.value,
                                  "exception": f"{type(exc).__name__}: {exc}"[:500]})
        except redis.RedisError:
            log.warning("could not audit the failure of %s", discussion_id)
        outcome = Outcome.IDLE
    finally:
        if lease is not None:
            rt.leases.drop(lease)  # type: ignore[union-attr]
        try:
            seq, status = store.release(
                discussion_id, token,
                park_at_seq=seen_seq if park else None,
            )
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            # Redis is away: give the lease back (and re-enqueue) as soon as it answers,
            # rather than leave the discussion waiting for the lease to expire.
            log.warning("releasing the lease of %s failed (%s); released when Redis answers",
                        discussion_id, exc)
            if rt.leases is not None:
                rt.leases.release_later(discussion_id, token)
            seq, status = seen_seq, None
        except Exception:  # noqa: BLE001 - the lease expires by itself; log and go on
            log.exception("releasing the lease of %s failed", discussion_id)
            seq, status = seen_seq, None
    # A message posted while we held the lease may need an answer that we did not see.
    if outcome == Outcome.IDLE and seq != seen_seq and status == Status.ACTIVE:
        outcome = Outcome.MORE
    return outcome


def _record_failure(rt: Runtime, did: str, token: int, reason: StopReason, error: str) -> None:
    """Fail the discussion with `reason` and `error`, fenced by our lease."""
    try:
        try:
            previous: Status | None = rt.store.state(did).status
        except (ValueError, TypeError):  # the state itself may be what is corrupt
            previous = None
        rt.store.commit(
            did,
            Commit(updates={"status": Status.FAILED.value, "stop_reason": reason.value,
                            "error": error},
                   events=[status_change(Status.FAILED, previous, reason.value, error=error)]),
            token=token, lease_ttl_ms=rt.settings.lease_ttl_ms,
        )
    except (StaleLease, Conflict, DiscussionNotFound):
        pass  # a newer step, a terminal status or a deletion already settled it


def _run_slice(step: StepContext) -> Outcome:
    rt, did, snap, protocol = step.rt, step.did, step.snap, step.protocol
    settings, store = rt.settings, rt.store
    # A turn the previous commit already announced (one round trip per turn): see turns.speak.
    begun: BegunTurn | None = None
    # Protocols that re-read the discussion every turn (moderators) cannot be predicted.
    predict = not protocol.reads_every_turn
    if snap.state.status == Status.PENDING:
        begun = _start(step, predict)
    ends = rt.clock() + settings.step_slice_s
    turns = 0
    owner = snap.config.owner
    lease = rt.leases.get(did) if rt.leases is not None else None
    while snap.state.status == Status.ACTIVE:
        if lease is not None:
            lease.check()  # a renewal found the lease taken over: stop before another turn
        if protocol.reads_every_turn and turns:
            # Moderators act between turns (floor, mute): see their latest word.
            fresh = store.snapshot(did, settings.context_window_messages)
            snap.recent, snap.state, snap.muted = fresh.recent, fresh.state, fresh.muted
            if snap.state.status != Status.ACTIVE:
                break
        action = protocol.next_action(turns_mod.view_of(rt, snap))
        if isinstance(action, Finish):
            _finish(step, action)
            return Outcome.IDLE
        if isinstance(action, Idle):
            return Outcome.IDLE
        proxy_for = None
        if isinstance(action, WaitForHuman):
            proxy = human_turns.proxy_agent(snap, action)
            if proxy is None:
                human_turns.begin_wait(step, action)
                return Outcome.IDLE
            proxy_for = snap.participant(action.participant_id)
            action = Speak(proxy.participant_id, action.round)
        if turns >= settings.step_max_turns or rt.clock() >= ends:
            return Outcome.MORE
        # Every action below stores a message: not once the discussion holds its byte cap.
        cap = settings.max_discussion_bytes
        if cap and snap.state.stored_bytes >= cap:
            _finish(step, Finish(reason=StopReason.STORAGE_LIMIT.value, outcome={"limit": cap}))
            return Outcome.IDLE
        # Every action below calls an agent: not once the owner's daily budget is spent.
        over_budget = owner and quotas.spend_exhausted(store.r, settings, owner)
        if over_budget:
            _finish(step, Finish(reason=StopReason.SPEND_QUOTA.value,
                                 outcome={"detail": over_budget}))
            return Outcome.IDLE
        if isinstance(action, SpeakAll):
            done = parallel.speak_all(step, action)
            if done == parallel.DEFERRED:
                return Outcome.IDLE  # the agents answer in their own tasks
            turns += done
            continue
        if isinstance(action, Choose):
            orchestration.choose(step, action)
            turns += 1
            continue
        assert isinstance(action, Speak)
        speaker = snap.participant(action.participant_id)
        if speaker is None:  # a protocol bug: never let it spin
            raise StaleLease(f"protocol chose unknown participant {action.participant_id}")
        try:
            begun = turns_mod.speak(
                step, speaker, action, proxy_for, begun=begun,
                predict=predict and turns + 1 < settings.step_max_turns and rt.clock() < ends)
        except AttemptsExhausted as exc:
            _record_failure(rt, did, step.token, StopReason.STEP_ATTEMPTS,
                            f"turn {snap.state.turn} ({speaker.name}) was attempted "
                            f"{exc.details['attempts']} times without completing: each "
                            "attempt's worker crashed or timed out")
            return Outcome.IDLE
        turns += 1
    return Outcome.IDLE


def _start(step: StepContext, predict: bool) -> BegunTurn | None:
    """Make a pending discussion active; the same commit announces the first turn when an
    agent opens it (what `begun` means in the slice loop)."""
    rt, snap, protocol = step.rt, step.snap, step.protocol
    started = None
    if predict:
        active = snap.state.model_copy(update={"status": Status.ACTIVE})
        view = dataclasses.replace(turns_mod.view_of(rt, snap), state=active)
        action = protocol.next_action(view)
        speaker = snap.participant(action.participant_id) if type(action) is Speak else None
        if speaker is not None:
            started = (action, turns_mod.started_data(snap.state.turn, action.round, speaker))
    result = set_status(step, Status.ACTIVE, reason="started",
                        begin_next=started[1] if started else None, expect_seq=snap.state.seq)
    if started is None or not result.next_begun:
        return None
    return BegunTurn(snap.state.turn, started[0], result.next_cached)


def set_status(step: StepContext, status: Status, *,
               reason: str, extra: dict | None = None, begin_next: dict | None = None,
               expect_seq: int | None = None) -> CommitResult:
    rt, snap = step.rt, step.snap
    previous = snap.state.status
    updates = {"status": status.value, **(extra or {})}
    result = rt.store.commit(
        step.did,
        Commit(updates=updates,
               events=[status_change(status, previous, reason, **(extra or {}))]),
        token=step.token, turn=snap.state.turn, lease_ttl_ms=rt.settings.lease_ttl_ms,
        begin_next=begin_next, expect_seq=expect_seq,
    )
    snap.state.status = status
    return result


def _finish(step: StepContext, action: Finish) -> None:
    reason = action.reason
    extra: dict = {"stop_reason": reason}
    if action.outcome:
        extra["outcome"] = action.outcome
    st = step.snap.state
    if reason != StopReason.AGENT_FAILURES and st.turn > 0 and st.failures >= st.turn:
        # Every turn so far failed (the run of failures is as long as the discussion): a
        # transcript with nothing in it is a failure, whatever limit ended it.
        reason = StopReason.AGENT_FAILURES.value
        extra.update(stop_reason=reason, error=f"every agent turn failed ({st.turn} of "
                                                f"{st.turn}); the limit was {action.reason}")
    status = Status.FAILED if reason == StopReason.AGENT_FAILURES else Status.COMPLETED
    set_status(step, status, reason=reason, extra=extra)
