"""What a fault run left behind, read straight from Redis and from the viewers, as figures."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import redis

from tests.faults.worker_app import AGENT_CALLS, STEP_RUNS


@dataclass
class Report:
    scenario: str
    discussions: int = 0
    completed: int = 0
    unfinished: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    messages: int = 0
    missing_seq: int = 0  # gaps in 1..N in a transcript
    repeated_seq: int = 0  # a seq stored twice
    duplicate_messages: int = 0  # the same message id, or two messages for one turn
    out_of_order: int = 0  # transcripts or event streams not in seq order
    stream_mismatch: int = 0  # the events stream's messages differ from the transcript
    turns: int = 0
    turns_called_twice: int = 0  # agent called more than once for one turn
    step_messages: int = 0
    step_redeliveries: int = 0  # step messages a worker started more than once
    viewers: int = 0
    viewer_problems: int = 0  # viewers that missed, repeated or reordered a message
    extra: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not (self.unfinished or self.failed or self.missing_seq or self.repeated_seq
                    or self.duplicate_messages or self.out_of_order or self.stream_mismatch
                    or self.viewer_problems)

    def line(self) -> str:
        figures = {
            "discussions": self.discussions, "completed": self.completed,
            "unfinished": len(self.unfinished), "failed": len(self.failed),
            "messages": self.messages, "missing": self.missing_seq,
            "repeated": self.repeated_seq, "duplicated": self.duplicate_messages,
            "out_of_order": self.out_of_order, "stream_mismatch": self.stream_mismatch,
            "turns": self.turns, "turns_agent_called_twice": self.turns_called_twice,
            "step_messages": self.step_messages, "step_redeliveries": self.step_redeliveries,
            "viewers": self.viewers, "viewer_problems": self.viewer_problems,
            **self.extra, "seconds": round(self.seconds, 1),
        }
        verdict = "OK" if self.ok else "FAILED"
        return f"[{self.scenario}] {verdict} " + " ".join(f"{k}={v}" for k, v in figures.items())


def audit(r: redis.Redis, scenario: str, ids: list[str]) -> Report:
    """Check every discussion's transcript, event stream and counters."""
    rep = Report(scenario=scenario, discussions=len(ids))
    calls = r.hgetall(AGENT_CALLS)
    runs = r.hgetall(STEP_RUNS)
    rep.step_messages = len(runs)
    rep.step_redeliveries = sum(1 for v in runs.values() if int(v) > 1)
    for did in ids:
        state = r.hgetall(f"discussion:{did}:state")
        status = state.get("status", "")
        if status == "completed":
            rep.completed += 1
        elif status in ("failed", "cancelled"):
            rep.failed[did] = f"{status}: {state.get('error') or state.get('stop_reason')}"
        else:
            rep.unfinished.append(did)
        msgs = [json.loads(m) for m in r.lrange(f"discussion:{did}:messages", 0, -1)]
        rep.messages += len(msgs)
        seqs = [m["seq"] for m in msgs]
        counts = Counter(seqs)
        rep.repeated_seq += sum(c - 1 for c in counts.values())
        if seqs:
            rep.missing_seq += len(set(range(1, max(seqs) + 1)) - set(seqs))
        if int(state.get("seq") or 0) != len(msgs):
            rep.missing_seq += abs(int(state.get("seq") or 0) - len(msgs))
        if seqs != sorted(seqs):
            rep.out_of_order += 1
        ids_count = Counter(m["message_id"] for m in msgs)
        turn_count = Counter(m["turn"] for m in msgs if m.get("turn") is not None)
        rep.duplicate_messages += sum(c - 1 for c in ids_count.values())
        rep.duplicate_messages += sum(c - 1 for c in turn_count.values())
        events = r.xrange(f"discussion:{did}:events")
        streamed = [json.loads(f["data"]) for _, f in events if f.get("type") == "message"]
        if [m["message_id"] for m in streamed] != [m["message_id"] for m in msgs]:
            rep.stream_mismatch += 1
        ev_seqs = [m["seq"] for m in streamed]
        if ev_seqs != sorted(set(ev_seqs)):
            rep.out_of_order += 1
        for turn in turn_count:
            rep.turns += 1
            if int(calls.get(f"{did}:{turn}", 0)) > 1:
                rep.turns_called_twice += 1
    return rep
