"""Text for the terminal: messages, the status line and tables. Pure."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import click

TERMINAL = {"completed", "cancelled", "failed"}
STATUS_COLORS = {"active": "blue", "waiting_for_human": "yellow", "paused": "magenta",
                 "completed": "green", "cancelled": "red", "failed": "red", "pending": "white"}
_SPEAKER_COLORS = ("cyan", "magenta", "blue", "yellow", "green", "bright_cyan",
                   "bright_magenta", "bright_blue")


def local_time(iso: str | None, *, with_date: bool = False) -> str:
    """A UTC ISO 8601 timestamp in this machine's local time (`14:03:22`), or as given when it
    cannot be read."""
    if not iso:
        return ""
    try:
        at = datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone()
    except ValueError:
        return iso
    return at.strftime("%Y-%m-%d %H:%M:%S %Z" if with_date else "%H:%M:%S")


def countdown(iso: str, now: float | None = None) -> str:
    """What is left until `iso`: `4:32 left`, `1:02:05 left`, or `passed`."""
    try:
        at = datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return ""
    left = int(-(-(at - (time.time() if now is None else now)) // 1))  # whole seconds, up
    if left <= 0:
        return "passed"
    h, m, sec = left // 3600, left % 3600 // 60, left % 60
    return (f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}") + " left"


def deadline(iso: str, now: float | None = None) -> str:
    """`until 14:03:22 (4:32 left)`, in local time."""
    return f"until {local_time(iso)} ({countdown(iso, now)})"


def kind(participant_type: str | None) -> str:
    return "person" if participant_type == "human" else "agent"


def speaker_color(pid: str, order: list[str]) -> str:
    index = order.index(pid) if pid in order else sum(map(ord, pid))
    return _SPEAKER_COLORS[index % len(_SPEAKER_COLORS)]


def message(m: dict[str, Any], people: dict[str, dict[str, Any]]) -> str:
    """`#seq Name (agent, role) [round]: text`, styled."""
    p = people.get(m["participant_id"], {})
    tags = [kind(m.get("participant_type") or p.get("participant_type"))]
    if p.get("role"):
        tags.append(p["role"])
    head = click.style(f"#{m['seq']} ", dim=True) + click.style(
        m.get("participant_name") or p.get("name") or m["participant_id"], bold=True,
        fg=speaker_color(m["participant_id"], list(people)))
    head += click.style(f" ({', '.join(tags)})", dim=True)
    if m.get("message_type") not in (None, "text"):
        head += click.style(f" [{m['message_type']}]", fg="yellow")
    return f"{head}: {m['content']}"


def status_line(s: dict[str, Any], people: dict[str, dict[str, Any]],
                speaking: str | None = None, conn: str = "live", draft: str = "",
                now: float | None = None) -> str:
    """One line: status, round, message count, who is awaited, connection."""
    status = s.get("status", "?")
    parts = [click.style(status.replace("_", " "), fg=STATUS_COLORS.get(status, "white"),
                         bold=True),
             f"round {s.get('current_round') or 0}/{s.get('max_rounds', '?')}",
             f"{s.get('message_count', 0)} messages"]
    if status == "waiting_for_human" and s.get("waiting_for"):
        who = people.get(s["waiting_for"], {}).get("name", s["waiting_for"])
        until = s.get("wait_deadline") or s.get("deadline")
        parts.append(f"waiting for {who}" + (f" {deadline(until, now)}" if until else ""))
    elif speaking and status == "active":
        parts.append(f"{speaking}: …{draft}" if draft else f"{speaking} is speaking")
    if status in TERMINAL and s.get("stop_reason"):
        parts.append(f"stop: {s['stop_reason']}")
    if s.get("outcome"):
        parts.append(f"outcome: {s['outcome']}")
    if conn:
        parts.append(click.style(conn, dim=True))
    return " | ".join(parts)


def summary(s: dict[str, Any]) -> str:
    """The `show` view of a session."""
    lines = [click.style(s["topic"], bold=True),
             f"id: {s['id']}   protocol: {s['protocol']}   "
             f"created: {local_time(s['created_at'], with_date=True)}",
             "status: " + status_line(s, {p["participant_id"]: p for p in s["participants"]},
                                      conn=""),
             "participants:"]
    for p in s["participants"]:
        extra = f", {p['role']}" if p.get("role") else ""
        perms = f" [{', '.join(p.get('permissions') or [])}]" if p["participant_type"] == \
            "human" else ""
        lines.append(f"  {p['participant_id']}  {p['name']} ({kind(p['participant_type'])}"
                     f"{extra}){perms}")
    if s.get("error"):
        lines.append(f"error: {s['error']}")
    return "\n".join(lines)


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([click.style(fmt.format(*header), bold=True),
                      *(fmt.format(*map(str, r)) for r in rows)])
