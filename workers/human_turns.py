"""Durable human turns: a wait is state in Redis plus a scheduled check, never a held worker.

When a person's turn comes, the step records `waiting_for_human` with `waiting_for` and
`wait_deadline`, emits the event, schedules a check at the deadline and returns. A post from
that person ends the wait (core.services.discussions). At the deadline `expire_if_due` applies the
discussion's `human_turn_policy`:

- `skip`: the turn passes (the turn counter advances, no message), the discussion goes on;
- `pause`: the discussion is paused; `resume` gives the person a fresh deadline;
- `proxy`: `proxy_turn` marks the turn, and the next step lets `proxy_agent` answer in the
  person's place (its message carries `metadata.proxy_for`).

Every change is a commit fenced by the turn number and the `waiting_for_human` status, so a
check that runs twice, late, or races the person's own post changes nothing the second time.
The check is a Celery task with a countdown; because such a task can be lost with its worker,
the periodic reconciler also calls `expire_if_due` for every waiting discussion.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from core.ground.clock import epoch, iso
from core.ground.errors import Conflict, DiscussionNotFound, StaleLease
from core.ground.models import HumanTurnPolicy, Participant, Status
from core.storage.records import status_change
from core.storage.store import Commit, Snapshot
from protocols import View, WaitForHuman, get_protocol
from workers.runtime import Runtime, StepContext

log = logging.getLogger(__name__)


def proxy_agent(snap: Snapshot, action: WaitForHuman) -> Participant | None:
    """The stand-in agent when this person's turn already timed out under `proxy`."""
    if snap.state.proxy_turn is None or snap.state.proxy_turn != snap.state.turn:
        return None
    return snap.participant(snap.config.proxy_agent or "")


def begin_wait(step: StepContext, action: WaitForHuman) -> None:
    """Record the wait (fenced by lease and turn) and schedule its deadline check."""
    rt, did, snap = step.rt, step.did, step.snap
    timeout = snap.config.human_turn_timeout_s
    deadline = (iso(datetime.fromtimestamp(rt.wall_clock(), UTC) + timedelta(seconds=timeout))
                if timeout else "")
    person = snap.participant(action.participant_id)
    detail = {"participant_id": action.participant_id,
              "participant_name": person.name if person else None,
              "turn": snap.state.turn, "round": action.round,
              "deadline": deadline or None, "policy": snap.config.human_turn_policy.value}
    previous = snap.state.status
    rt.store.commit(did, Commit(
        updates={"status": Status.WAITING_FOR_HUMAN.value, "waiting_for": action.participant_id,
                 "wait_deadline": deadline, "current_round": action.round},
        events=[status_change(Status.WAITING_FOR_HUMAN, previous, "human_turn",
                              waiting_for=action.participant_id, **detail),
                ("waiting_for_human", detail)],
        allowed_statuses=(Status.ACTIVE,)),
        token=step.token, turn=snap.state.turn, lease_ttl_ms=rt.settings.lease_ttl_ms)
    snap.state.status = Status.WAITING_FOR_HUMAN
    if deadline and rt.schedule_check is not None:
        rt.schedule_check(did, deadline, max(0.0, epoch(deadline) - rt.wall_clock()))


def timed_out(status: Status, **detail: object) -> tuple[str, dict]:
    """The status event of a person's turn whose deadline passed."""
    return status_change(status, Status.WAITING_FOR_HUMAN, "human_turn_timeout", **detail)


def expire_if_due(rt: Runtime, discussion_id: str, now: float | None = None) -> bool:
    """Apply the timeout policy if the discussion waits for a person past the deadline.

    True when this call changed the discussion. Safe to call at any time, any number of
    times, from any process (the scheduled check, the reconciler after a restart).
    """
    now = rt.wall_clock() if now is None else now
    try:
        snap = rt.store.snapshot(discussion_id, rt.settings.context_window_messages)
    except DiscussionNotFound:
        return False
    st = snap.state
    if st.status != Status.WAITING_FOR_HUMAN or not st.wait_deadline:
        return False
    if now < epoch(st.wait_deadline):
        return False
    policy = snap.config.human_turn_policy
    person = st.waiting_for or ""
    base = {"policy": policy.value, "participant_id": person, "turn": st.turn}
    cleared = {"waiting_for": "", "wait_deadline": ""}
    view = View(config=snap.config, participants=snap.participants, state=st,
                recent=snap.recent, muted=snap.muted, now=now)
    if policy == HumanTurnPolicy.PAUSE:
        change = Commit(updates={"status": Status.PAUSED.value, **cleared},
                        events=[timed_out(Status.PAUSED, **base)],
                        allowed_statuses=(Status.WAITING_FOR_HUMAN,))
    elif policy == HumanTurnPolicy.PROXY:
        change = Commit(updates={"status": Status.ACTIVE.value, "proxy_turn": st.turn,
                                 **cleared},
                        events=[timed_out(Status.ACTIVE, **base,
                                          proxy_agent=snap.config.proxy_agent)],
                        allowed_statuses=(Status.WAITING_FOR_HUMAN,))
    else:
        pstate = get_protocol(snap.config.protocol).after_skip(view, person)
        change = Commit(updates={"status": Status.ACTIVE.value, "pstate": pstate, **cleared},
                        events=[timed_out(Status.ACTIVE, **base, skipped=True)],
                        advance_turn=True, allowed_statuses=(Status.WAITING_FOR_HUMAN,))
    try:
        rt.store.commit(discussion_id, change, turn=st.turn)
    except (Conflict, StaleLease, DiscussionNotFound):
        return False  # answered, paused, or handled by another check meanwhile
    log.info("human turn %s of %s timed out: %s", st.turn, discussion_id, policy.value)
    if policy != HumanTurnPolicy.PAUSE:
        rt.enqueue(discussion_id)
    return True


def check(rt: Runtime, discussion_id: str, deadline: str) -> str:
    """The scheduled check for the wait that ends at `deadline`: expire it, or reschedule a
    check that fired early; a check for an older wait does nothing."""
    if expire_if_due(rt, discussion_id):
        return "expired"
    try:
        st = rt.store.state(discussion_id)
    except DiscussionNotFound:
        return "gone"
    if st.status == Status.WAITING_FOR_HUMAN and st.wait_deadline == deadline:
        delay = max(0.05, epoch(deadline) - rt.wall_clock())
        if rt.schedule_check is not None:
            rt.schedule_check(discussion_id, deadline, delay)
        return "early"
    return "stale"
