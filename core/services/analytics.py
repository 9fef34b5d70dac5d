"""Per-discussion statistics and transcript export (JSON and Markdown)."""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from typing import Any

from core.ground.models import Message, Session
from core.storage.store import Store, stream_id_key

EXPORT_VERSION = 1
PAGE = 500


def all_messages(store: Store, discussion_id: str) -> Iterator[Message]:
    """Every message in `seq` order, read a page at a time."""
    offset = 0
    while True:
        page, total = store.messages(discussion_id, offset, PAGE)
        yield from page
        offset += len(page)
        if not page or offset >= total:
            return


def _summary(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return {"count": len(values), "mean": round(statistics.fmean(values), 3),
            "p50": round(statistics.median(values), 3), "p95": round(p95, 3),
            "max": round(ordered[-1], 3)}


def _turn_durations_ms(store: Store, discussion_id: str) -> list[float]:
    """Turn latency from the stream: `turn_started` to its message (event ids carry ms)."""
    started: dict[int, int] = {}
    durations: list[float] = []
    after = "0"
    while True:
        batch = store.events_after(discussion_id, after, count=1000)
        if not batch:
            break
        for ev in batch:
            ms = stream_id_key(ev.id)[0]
            turn = ev.data.get("turn")
            if ev.type == "turn_started" and isinstance(turn, int):
                started[turn] = ms
            elif ev.type == "message" and isinstance(turn, int) and turn in started:
                durations.append(float(ms - started.pop(turn)))
        after = batch[-1].id
    return durations


def stats(store: Store, discussion_id: str) -> dict[str, Any]:
    """Messages and tokens per participant, cost, latencies, rounds, stop reason, decision."""
    session = store.session(discussion_id, message_limit=1)
    per: dict[str, dict[str, Any]] = {
        p.participant_id: {"participant_id": p.participant_id, "name": p.name,
                           "type": p.participant_type.value, "messages": 0,
                           "prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0}
        for p in session.participants
    }
    agent_latencies: list[float] = []
    for m in all_messages(store, discussion_id):
        row = per.setdefault(m.participant_id, {
            "participant_id": m.participant_id, "name": m.participant_name,
            "type": m.participant_type.value, "messages": 0, "prompt_tokens": 0,
            "completion_tokens": 0, "cost_usd": 0.0})
        md = m.metadata or {}
        row["messages"] += 1
        row["prompt_tokens"] += int(md.get("prompt_tokens") or 0)
        row["completion_tokens"] += int(md.get("completion_tokens") or 0)
        row["cost_usd"] += float(md.get("cost_usd") or 0.0)
        if md.get("latency_ms") is not None and not md.get("cached_reply"):
            agent_latencies.append(float(md["latency_ms"]))
    rows = list(per.values())
    for row in rows:
        row["cost_usd"] = round(row["cost_usd"], 6)
    outcome = session.outcome or {}
    return {
        "discussion_id": discussion_id,
        "status": session.status.value,
        "protocol": session.protocol,
        "rounds": session.current_round,
        "messages": session.message_count,
        "stop_reason": session.stop_reason,
        "decision": outcome.get("decision", outcome or None),
        "participants": rows,
        "totals": {
            "prompt_tokens": sum(r["prompt_tokens"] for r in rows),
            "completion_tokens": sum(r["completion_tokens"] for r in rows),
            "cost_usd": round(sum(r["cost_usd"] for r in rows), 6),
        },
        # Every call, retries and failures included, and the orchestration's own calls.
        "usage": store.usage(discussion_id).model_dump(),
        "latency_ms": {"agent": _summary(agent_latencies),
                       "turn": _summary(_turn_durations_ms(store, discussion_id))},
        "created_at": session.created_at,
        "updated_at": session.updated_at,
    }


def export_json(store: Store, discussion_id: str) -> dict[str, Any]:
    """The whole discussion: session (without its message preview) and every message."""
    session = store.session(discussion_id, message_limit=1)
    body = session.model_dump(mode="json", exclude={"messages"})
    return {"export_version": EXPORT_VERSION, "session": body,
            "messages": [m.model_dump(mode="json") for m in all_messages(store, discussion_id)]}


def export_markdown(store: Store, discussion_id: str) -> str:
    """The transcript as Markdown: a header, the participants, then each message in order."""
    session: Session = store.session(discussion_id, message_limit=1)
    lines = [f"# {session.topic}", "",
             f"- id: `{session.id}`", f"- protocol: {session.protocol}",
             f"- status: {session.status.value}"
             + (f" ({session.stop_reason})" if session.stop_reason else ""),
             f"- created: {session.created_at}", "", "## Participants", ""]
    for p in session.participants:
        role = f", {p.role}" if p.role else ""
        lines.append(f"- **{p.name}** ({p.participant_type.value}{role})")
    lines += ["", "## Transcript", ""]
    for m in all_messages(store, discussion_id):
        where = f"round {m.round}, " if m.round else ""
        lines += [f"### {m.seq}. {m.participant_name}", f"*{where}{m.timestamp}*", "",
                  m.content, ""]
    if session.outcome:
        lines += ["## Outcome", "", "```json", _json(session.outcome), "```", ""]
    return "\n".join(lines)


def _json(value: Any) -> str:
    import json

    return json.dumps(value, indent=2, ensure_ascii=False)
