"""Running turns inside a step: one agent, several at once (`parallel_rounds`), or a moderator
agent's choice of the next speaker. Every result is committed fenced by lease and turn."""

from __future__ import annotations

import dataclasses
import logging
import time
from contextlib import nullcontext

from core.agents import AgentReply, TurnRequest
from core.agents.context import bounded_window, build_messages
from core.ground.clock import iso
from core.ground.errors import AgentError, Conflict, StaleLease
from core.ground.ids import new_id
from core.ground.models import Message, Participant, ParticipantType, Status, StopReason
from core.storage import quotas
from core.storage.records import status_change
from core.storage.store import Commit, Snapshot
from protocols import Speak, View
from workers import accounting
from workers.deltas import DeltaPublisher
from workers.runtime import BegunTurn, Runtime, StepContext

log = logging.getLogger(__name__)

MAX_CONSECUTIVE_FAILURES = 3


def view_of(rt: Runtime, snap: Snapshot) -> View:
    """The protocol's view of a snapshot, with the wall clock for deadline checks."""
    return View(config=snap.config, participants=snap.participants, state=snap.state,
                recent=snap.recent, muted=snap.muted, now=rt.wall_clock(),
                agent_turns_per_post=rt.settings.free_form_agent_turns_per_post)


def call_agent(step: StepContext, speaker: Participant, round_no: int, instructions: str, *,
               turn: int | None = None, task: dict | None = None,
               stream: bool = True) -> AgentReply:
    """One agent call under the turn's deadline with the snapshot's context; a costly reply
    is cached before it commits."""
    rt, did, token, snap = step.rt, step.did, step.token, step.snap
    settings = rt.settings
    turn = snap.state.turn if turn is None else turn
    provider = speaker.provider or settings.default_provider
    backend = rt.backends.get(provider)
    window = bounded_window(snap.recent, settings.context_window_messages,
                            settings.context_window_tokens)
    deltas = DeltaPublisher(
        lambda data: rt.store.publish_fenced(did, token, "message_delta", data),
        {"turn": turn, "round": round_no, "participant_id": speaker.participant_id,
         "participant_name": speaker.name},
        interval_s=settings.stream_delta_interval_s,
    ) if stream else None
    request = TurnRequest(
        discussion_id=did,
        turn=turn,
        round=round_no,
        agent=speaker,
        topic=snap.config.topic,
        instructions=instructions,
        messages=build_messages(agent=speaker, topic=snap.config.topic,
                                instructions=instructions, window=window),
        transcript=window,
        deadline_s=settings.turn_deadline_s,
        on_delta=deltas,
        task=task or {},
    )
    started = time.perf_counter()
    lease = rt.leases.get(did) if rt.leases is not None else None
    try:
        # A renewal that finds the lease taken over ends the wait at once (StaleLease).
        with lease.interruptible() if lease is not None else nullcontext():
            reply = backend.generate(request)
    except (AgentError, StaleLease):
        raise
    except Exception as exc:
        # A backend bug must fail the turn (recorded, skipped), not strand the discussion.
        log.exception("backend %s raised unexpectedly on %s turn %s", provider, did, turn)
        raise AgentError(f"{provider} backend error ({type(exc).__name__})") from exc
    if deltas is not None:
        deltas.flush()
    if not reply.latency_ms:
        reply.latency_ms = (time.perf_counter() - started) * 1000
    if not reply.content.strip():
        raise AgentError("agent returned an empty reply", attempts=reply.attempts)
    accounting.settle(settings, reply, speaker.model)
    if snap.config.owner:  # the owner's daily agent budget, charged once per obtained reply
        quotas.charge(rt.store.r, settings, snap.config.owner, reply.cost_usd,
                      reply.prompt_tokens + reply.completion_tokens)
    if backend.costly:
        rt.store.cache_reply(did, turn, reply.to_json())
    return reply


def failure_of(marker: dict) -> AgentError:
    """The AgentError a cached failure marker (`{"error": ...}`) stands for."""
    return AgentError(str(marker.get("error")), transient=bool(marker.get("transient")),
                      attempts=int(marker.get("attempts") or 1))


def failure_marker(exc: AgentError) -> dict:
    """A failed call, cached under its turn like a reply (parallel rounds)."""
    return {"error": exc.message, "transient": exc.transient,
            "attempts": exc.details.get("attempts", 1)}


def started_data(turn: int, round_no: int, speaker: Participant,
                 proxy_for: Participant | None = None) -> dict:
    """The `turn_started` event data."""
    return {"turn": turn, "round": round_no, "participant_id": speaker.participant_id,
            "participant_name": speaker.name,
            **({"proxy_for": proxy_for.participant_id} if proxy_for else {})}


def speak(step: StepContext, speaker: Participant, action: Speak,
          proxy_for: Participant | None = None, *, begun: BegunTurn | None = None,
          predict: bool = False) -> BegunTurn | None:
    """One agent turn: announce, call (or reuse the cached reply), commit.

    `begun` is the previous commit's announcement of this very turn (no `begin_turn` then);
    with `predict` the commit also announces the next turn when that is exact (see
    `commit_reply`), and what it began is returned."""
    rt, did, snap, protocol = step.rt, step.did, step.snap, step.protocol
    turn = snap.state.turn
    if (begun is not None and begun.turn == turn and begun.action == action
            and proxy_for is None):
        cached = begun.cached
    else:
        cached = rt.store.begin_turn(did, step.token, turn,
                                     started_data(turn, action.round, speaker, proxy_for),
                                     max_attempts=rt.settings.step_max_attempts)
    view = view_of(rt, snap)
    instructions = protocol.instructions(view, proxy_for or speaker)
    if proxy_for is not None:
        instructions += (f"\n\nYou answer this turn in place of {proxy_for.name}, who did not "
                         "answer in time; say so briefly, and speak as a stand-in.")
    try:
        if cached and "error" in cached:
            raise failure_of(cached)
        reply = AgentReply.from_json(cached) if cached else call_agent(
            step, speaker, action.round, instructions,
            task=protocol.task(view, proxy_for or speaker))
    except AgentError as exc:
        turn_failed(step, speaker, action.round, exc)
        return None
    return commit_reply(step, speaker, action.round, reply,
                        cached=bool(cached), proxy_for=proxy_for, predict=predict)


def _predict_next(step: StepContext, message: Message,
                  updates: dict) -> tuple[Speak, dict] | None:
    """The next Speak and its `turn_started` data, as the view will be once `message`
    commits with `updates` and nothing else in between; None unless an agent speaks next."""
    rt, snap = step.rt, step.snap
    seq = snap.state.seq + 1
    state = snap.state.model_copy(update={
        "turn": snap.state.turn + 1, "seq": seq, "current_round": updates["current_round"],
        "pstate": updates["pstate"], "tokens_used": updates["tokens_used"]})
    recent = [*snap.recent, message.model_copy(update={"seq": seq})]
    recent = recent[-rt.settings.context_window_messages:]
    action = step.protocol.next_action(dataclasses.replace(view_of(rt, snap), state=state,
                                                           recent=recent))
    if type(action) is not Speak:
        return None
    speaker = snap.participant(action.participant_id)
    if speaker is None:
        return None
    return action, started_data(state.turn, action.round, speaker)


def commit_reply(step: StepContext, speaker: Participant, round_no: int, reply: AgentReply, *,
                 cached: bool, proxy_for: Participant | None = None,
                 predict: bool = False) -> BegunTurn | None:
    """Commit an agent's reply as the current turn's message and advance the snapshot.

    With `predict`, the protocol is asked now what comes after this message, and the commit
    also begins that turn (one round trip per turn instead of two) provided the discussion is
    still active and its seq is exactly the predicted one, i.e. nobody posted in between so the
    prediction is exact; the turn begun is returned."""
    rt, did, snap, protocol = step.rt, step.did, step.snap, step.protocol
    settings, store = rt.settings, rt.store
    turn = snap.state.turn
    view = view_of(rt, snap)
    metadata = {
        **accounting.message_metadata(speaker, reply, cached=cached),
        **protocol.message_metadata(view, proxy_for or speaker, reply.content,
                                    reply.metadata.get("decision_data")),
        **({"proxy_for": proxy_for.participant_id, "proxy_for_name": proxy_for.name}
           if proxy_for else {}),
    }
    message = Message(
        message_id=new_id("msg"),
        participant_id=speaker.participant_id,
        participant_name=speaker.name,
        participant_type=ParticipantType.AGENT,
        content=reply.content,
        timestamp=iso(),
        round=round_no,
        turn=turn,
        metadata=metadata,
    )
    pstate = protocol.after_message(view, message)
    tokens = snap.state.tokens_used + reply.prompt_tokens + reply.completion_tokens
    # A reply ends any run of failed turns (the engine's own count, kept beside pstate).
    updates = {"current_round": round_no, "pstate": pstate, "tokens_used": tokens,
               "failures": 0}
    if proxy_for is not None:
        updates["proxy_turn"] = ""
    # A stand-in's turn also clears `proxy_turn`; keep the prediction to plain turns.
    nxt = (_predict_next(step, message, updates)
           if predict and proxy_for is None else None)
    try:
        result = store.commit(
            did, Commit(message=message, advance_turn=True, updates=updates,
                        allowed_statuses=(Status.ACTIVE,),
                        increments=accounting.increments(speaker.participant_id, reply=reply,
                                                         message=True)),
            token=step.token, turn=turn, lease_ttl_ms=settings.lease_ttl_ms,
            begin_next=nxt[1] if nxt else None, expect_seq=snap.state.seq + 1,
        )
    except Conflict:
        # Paused or ended while the agent was thinking: keep the reply for this turn, so a
        # resumed discussion commits it without calling the agent again.
        store.cache_reply(did, turn, reply.to_json())
        raise
    committed = result.message or message
    if rt.on_turn:
        rt.on_turn(did, committed)
    expected_seq = snap.state.seq + 1
    snap.state.turn = result.turn
    snap.state.seq = result.seq
    snap.state.current_round = round_no
    snap.state.pstate = pstate
    snap.state.failures = 0
    snap.state.tokens_used = tokens
    snap.state.stored_bytes = result.stored_bytes or snap.state.stored_bytes
    snap.state.proxy_turn = None if proxy_for is not None else snap.state.proxy_turn
    if result.seq != expected_seq:
        # Someone posted while the agent was thinking: re-read so the protocol sees it.
        fresh = store.snapshot(did, settings.context_window_messages)
        snap.recent, snap.state, snap.muted = fresh.recent, fresh.state, fresh.muted
    else:
        snap.recent.append(committed)
        if len(snap.recent) > settings.context_window_messages:
            del snap.recent[0]
    if nxt is not None and result.next_begun:
        return BegunTurn(result.turn, nxt[0], result.next_cached)
    return None


def turn_failed(step: StepContext, speaker: Participant, round_no: int,
                exc: AgentError) -> None:
    """Record a failed turn; skip the agent, or fail the discussion after repeated failures.

    The protocol records the skipped turn like a spoken one (e.g. `last_spoke`), so a broken
    agent does not get every next turn."""
    rt, did, snap = step.rt, step.did, step.snap
    failures = snap.state.failures + 1
    log.warning("turn %s of %s failed: %s", snap.state.turn, did, exc.message)
    events: list[tuple[str, dict]] = [("turn_failed", {
        "turn": snap.state.turn, "round": round_no,
        "participant_id": speaker.participant_id, "error": exc.message,
        "consecutive_failures": failures, "transient": exc.transient,
        "attempts": exc.details.get("attempts", 1),
    })]
    pstate = step.protocol.after_skip(view_of(rt, snap), speaker.participant_id)
    updates: dict = {"pstate": pstate, "failures": failures}
    if failures >= MAX_CONSECUTIVE_FAILURES:
        reason = f"{failures} consecutive agent failures; last: {exc.message}"
        updates.update(status=Status.FAILED.value, stop_reason=StopReason.AGENT_FAILURES.value,
                       error=reason)
        events.append(status_change(Status.FAILED, snap.state.status,
                                    StopReason.AGENT_FAILURES.value, error=reason))
    attempts = exc.details.get("attempts")
    result = rt.store.commit(
        did, Commit(updates=updates, events=events, advance_turn=True,
                    allowed_statuses=(Status.ACTIVE,),
                    increments=accounting.increments(
                        speaker.participant_id, failed=True,
                        attempts=attempts if isinstance(attempts, int) else 1)),
        token=step.token, turn=snap.state.turn, lease_ttl_ms=rt.settings.lease_ttl_ms,
    )
    snap.state.turn = result.turn
    snap.state.pstate = pstate
    snap.state.failures = failures
    if failures >= MAX_CONSECUTIVE_FAILURES:
        snap.state.status = Status.FAILED
