"""The step engine: run a discussion's turns while holding its lease, for one time slice.

One step = acquire the fenced lease, read a snapshot, then loop: ask the protocol, call the
agent, commit the message atomically (the commit also renews the lease), until the protocol
stops, a person must answer, or the slice is used up. Running several turns per task keeps the
per-turn cost at one Redis round trip for fast agents; the slice bounds how long one discussion
holds a worker. A crash loses at most the one uncommitted turn, which the next step re-runs
(reusing a cached reply for costly backends).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from core import quotas
from core.clock import iso
from core.errors import AgentError, DiscussionNotFound, StaleLease
from core.ids import new_id
from core.models import Message, Participant, ParticipantType, Status, StopReason
from core.settings import Settings
from core.store import Commit, Snapshot, Store
from protocols import Finish, Idle, Speak, View, WaitForHuman, get_protocol
from workers import accounting
from workers.backends import AgentReply, Backends, TurnRequest
from workers.context import bounded_window, build_messages
from workers.deltas import DeltaPublisher

log = logging.getLogger(__name__)

MAX_CONSECUTIVE_FAILURES = 3


class Outcome(StrEnum):
    IDLE = "idle"  # nothing more to do until something happens
    MORE = "more"  # the slice ran out with work left: schedule another step
    BUSY = "busy"  # another step holds the lease; it will carry on
    GONE = "gone"  # the discussion was deleted
    STALE = "stale"  # our lease was taken over; the newer step carries on


@dataclass
class Runtime:
    """The I/O a step uses, passed in so tests can hand in real or fake parts."""

    settings: Settings
    store: Store
    backends: Backends
    enqueue: Callable[[str], None]
    clock: Callable[[], float] = time.monotonic
    on_turn: Callable[[str, Message], None] | None = field(default=None)


def _view(snap: Snapshot) -> View:
    return View(config=snap.config, participants=snap.participants, state=snap.state,
                recent=snap.recent)


def run_step(rt: Runtime, discussion_id: str) -> Outcome:
    """Run one step of a discussion; see the module docstring."""
    settings, store = rt.settings, rt.store
    try:
        token = store.acquire(discussion_id, settings.lease_ttl_ms)
    except DiscussionNotFound:
        return Outcome.GONE
    if token is None:
        return Outcome.BUSY
    outcome = Outcome.IDLE
    seen_seq = -1
    try:
        snap = store.snapshot(discussion_id, settings.context_window_messages)
        seen_seq = snap.state.seq
        outcome = _run_slice(rt, discussion_id, token, snap)
        seen_seq = snap.state.seq
    except StaleLease:
        log.info("step for %s lost its lease; a newer step carries on", discussion_id)
        return Outcome.STALE
    except DiscussionNotFound:
        return Outcome.GONE
    finally:
        try:
            seq, status = store.release(discussion_id, token)
        except Exception:  # noqa: BLE001 - the lease expires by itself; log and go on
            log.exception("releasing the lease of %s failed", discussion_id)
            seq, status = seen_seq, None
    # A message posted while we held the lease may need an answer that we did not see.
    if outcome == Outcome.IDLE and seq != seen_seq and status == Status.ACTIVE:
        outcome = Outcome.MORE
    return outcome


def _run_slice(rt: Runtime, did: str, token: int, snap: Snapshot) -> Outcome:
    settings, store = rt.settings, rt.store
    protocol = get_protocol(snap.config.protocol)
    ttl = settings.lease_ttl_ms
    if snap.state.status == Status.PENDING:
        _set_status(rt, did, token, snap, Status.ACTIVE, reason="started")
    ends = rt.clock() + settings.step_slice_s
    turns = 0
    owner = snap.config.owner
    # The owner's daily agent budget: read once per slice, then tracked from each charge.
    over_budget = quotas.spend_exhausted(store.r, settings, owner) if owner else None
    while snap.state.status == Status.ACTIVE:
        action = protocol.next_action(_view(snap))
        if isinstance(action, Finish):
            _finish(rt, did, token, snap, action)
            return Outcome.IDLE
        if isinstance(action, Idle):
            return Outcome.IDLE
        if isinstance(action, WaitForHuman):
            _wait_for_human(rt, did, token, snap, action)
            return Outcome.IDLE
        assert isinstance(action, Speak)
        if turns >= settings.step_max_turns or rt.clock() >= ends:
            return Outcome.MORE
        if over_budget:
            _finish(rt, did, token, snap,
                    Finish(reason=StopReason.SPEND_QUOTA.value, outcome={"detail": over_budget}))
            return Outcome.IDLE
        speaker = snap.participant(action.participant_id)
        if speaker is None:  # a protocol bug: never let it spin
            raise StaleLease(f"protocol chose unknown participant {action.participant_id}")
        turn = snap.state.turn
        cached = store.begin_turn(
            did, token, turn,
            {"turn": turn, "round": action.round, "participant_id": speaker.participant_id,
             "participant_name": speaker.name},
        )
        try:
            reply = AgentReply.from_json(cached) if cached else _call_agent(
                rt, did, token, snap, speaker, action,
                protocol.instructions(_view(snap), speaker),
            )
        except AgentError as exc:
            _turn_failed(rt, did, token, snap, speaker, action, exc)
            turns += 1
            continue
        if owner and not cached:  # charged once, when the reply is first obtained
            over_budget = quotas.charge(store.r, settings, owner, reply.cost_usd,
                                        reply.prompt_tokens + reply.completion_tokens)
        message = Message(
            message_id=new_id("msg"),
            participant_id=speaker.participant_id,
            participant_name=speaker.name,
            participant_type=ParticipantType.AGENT,
            content=reply.content,
            timestamp=iso(),
            round=action.round,
            turn=turn,
            metadata=accounting.message_metadata(speaker, reply, cached=bool(cached)),
        )
        view = _view(snap)
        pstate = {k: v for k, v in protocol.after_message(view, message).items()
                  if k != "_failures"}
        result = store.commit(
            did,
            Commit(message=message, advance_turn=True,
                   updates={"current_round": action.round, "pstate": pstate},
                   allowed_statuses=(Status.ACTIVE,),
                   increments=accounting.increments(speaker.participant_id, reply=reply,
                                                    message=True)),
            token=token, turn=turn, lease_ttl_ms=ttl,
        )
        committed = result.message or message
        if rt.on_turn:
            rt.on_turn(did, committed)
        expected_seq = snap.state.seq + 1
        snap.state.turn = result.turn
        snap.state.seq = result.seq
        snap.state.current_round = action.round
        snap.state.pstate = pstate
        if result.seq != expected_seq:
            # Someone posted while the agent was thinking: re-read so the protocol sees it.
            fresh = store.snapshot(did, settings.context_window_messages)
            snap.recent, snap.state = fresh.recent, fresh.state
        else:
            snap.recent.append(committed)
            if len(snap.recent) > settings.context_window_messages:
                del snap.recent[0]
        turns += 1
    return Outcome.IDLE


def _call_agent(rt: Runtime, did: str, token: int, snap: Snapshot, speaker: Participant,
                action: Speak, instructions: str) -> AgentReply:
    """One agent call under the turn's deadline; a costly reply is cached before it commits."""
    settings = rt.settings
    provider = speaker.provider or settings.default_provider
    backend = rt.backends.get(provider)
    turn = snap.state.turn
    window = bounded_window(snap.recent, settings.context_window_messages,
                            settings.context_window_tokens)
    deltas = DeltaPublisher(
        lambda data: rt.store.publish_fenced(did, token, "message_delta", data),
        {"turn": turn, "round": action.round, "participant_id": speaker.participant_id,
         "participant_name": speaker.name},
        interval_s=settings.stream_delta_interval_s,
    )
    request = TurnRequest(
        discussion_id=did,
        turn=turn,
        round=action.round,
        agent=speaker,
        topic=snap.config.topic,
        instructions=instructions,
        messages=build_messages(agent=speaker, topic=snap.config.topic,
                                instructions=instructions, window=window),
        transcript=window,
        deadline_s=settings.turn_deadline_s,
        on_delta=deltas,
    )
    started = time.perf_counter()
    try:
        reply = backend.generate(request)
    except AgentError:
        raise
    except Exception as exc:
        # A backend bug must fail the turn (recorded, skipped), not strand the discussion.
        log.exception("backend %s raised unexpectedly on %s turn %s", provider, did, turn)
        raise AgentError(f"{provider} backend error ({type(exc).__name__})") from exc
    deltas.flush()
    if not reply.latency_ms:
        reply.latency_ms = (time.perf_counter() - started) * 1000
    if not reply.content.strip():
        raise AgentError("agent returned an empty reply", attempts=reply.attempts)
    accounting.settle(settings, reply, speaker.model)
    if backend.costly:
        rt.store.cache_reply(did, turn, reply.to_json())
    return reply


def _set_status(rt: Runtime, did: str, token: int, snap: Snapshot, status: Status, *,
                reason: str, extra: dict | None = None) -> None:
    previous = snap.state.status
    updates = {"status": status.value, **(extra or {})}
    rt.store.commit(
        did,
        Commit(updates=updates,
               events=[("status", {"status": status.value, "previous": previous.value,
                                   "reason": reason, **(extra or {})})]),
        token=token, turn=snap.state.turn, lease_ttl_ms=rt.settings.lease_ttl_ms,
    )
    snap.state.status = status


def _finish(rt: Runtime, did: str, token: int, snap: Snapshot, action: Finish) -> None:
    extra: dict = {"stop_reason": action.reason}
    if action.outcome:
        extra["outcome"] = action.outcome
    status = Status.FAILED if action.reason == StopReason.AGENT_FAILURES else Status.COMPLETED
    _set_status(rt, did, token, snap, status, reason=action.reason, extra=extra)


def _wait_for_human(rt: Runtime, did: str, token: int, snap: Snapshot,
                    action: WaitForHuman) -> None:
    # The durable wait (deadline, policy) is the protocols issue's; the foundation records it.
    _set_status(rt, did, token, snap, Status.WAITING_FOR_HUMAN, reason="human_turn",
                extra={"waiting_for": action.participant_id})


def _turn_failed(rt: Runtime, did: str, token: int, snap: Snapshot, speaker: Participant,
                 action: Speak, exc: AgentError) -> None:
    """Record a failed turn; skip the agent, or fail the discussion after repeated failures."""
    failures = int(snap.state.pstate.get("_failures", 0)) + 1
    log.warning("turn %s of %s failed: %s", snap.state.turn, did, exc.message)
    events: list[tuple[str, dict]] = [("turn_failed", {
        "turn": snap.state.turn, "round": action.round,
        "participant_id": speaker.participant_id, "error": exc.message,
        "consecutive_failures": failures, "transient": exc.transient,
        "attempts": exc.details.get("attempts", 1),
    })]
    pstate = {**snap.state.pstate, "_failures": failures}
    updates: dict = {"pstate": pstate}
    if failures >= MAX_CONSECUTIVE_FAILURES:
        reason = f"{failures} consecutive agent failures; last: {exc.message}"
        updates.update(status=Status.FAILED.value, stop_reason=StopReason.AGENT_FAILURES.value,
                       error=reason)
        events.append(("status", {"status": Status.FAILED.value,
                                  "previous": snap.state.status.value,
                                  "reason": StopReason.AGENT_FAILURES.value, "error": reason}))
    attempts = exc.details.get("attempts")
    result = rt.store.commit(
        did, Commit(updates=updates, events=events, advance_turn=True,
                    allowed_statuses=(Status.ACTIVE,),
                    increments=accounting.increments(
                        speaker.participant_id, failed=True,
                        attempts=attempts if isinstance(attempts, int) else 1)),
        token=token, turn=snap.state.turn, lease_ttl_ms=rt.settings.lease_ttl_ms,
    )
    snap.state.turn = result.turn
    snap.state.pstate = pstate
    if failures >= MAX_CONSECUTIVE_FAILURES:
        snap.state.status = Status.FAILED
