"""`watch`: follow a discussion live in the terminal, resuming after a lost connection.

The same continuity rules as the page: remember the last event id and reconnect with it; drop
events at or before it; print each message once, keyed by `seq`; fill a hole in `seq` from REST.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from simple_websocket import ConnectionClosed

from cli import render
from cli.client import Client, CliError

FATAL_CLOSES = {4404: "discussion not found", 4410: "discussion deleted",
                4401: "credentials expired or revoked", 4403: "not allowed"}


def _key(event_id: str) -> tuple[int, int]:
    a, _, b = event_id.partition("-")
    return int(a), int(b or 0)


class Watcher:
    """Prints one discussion's messages and keeps a status line until it ends."""

    def __init__(self, client: Client, did: str, echo: Callable[[str], None],
                 status: Callable[[str], None], *, follow: bool = False,
                 max_backoff_s: float = 5.0, sleep: Callable[[float], None] = time.sleep) -> None:
        self.client = client
        self.did = did
        self.echo = echo
        self.status = status
        self.follow = follow
        self.max_backoff_s = max_backoff_s
        self.sleep = sleep
        self.session: dict[str, Any] = {}
        self.people: dict[str, dict[str, Any]] = {}
        self.last_event_id: str | None = None
        self.printed: set[int] = set()
        self.pending: dict[int, dict[str, Any]] = {}
        self.speaking: str | None = None
        self.draft = ""
        self.draft_turn: int | None = None
        self.connects = 0

    @property
    def done(self) -> bool:
        return self.session.get("status") in render.TERMINAL and not self.follow

    def run(self) -> dict[str, Any]:
        """Watch until the discussion ends (or forever with `follow`); returns the session."""
        self._take_session(self.client.session(self.did))
        backoff = 0.25
        while not self.done:
            self.connects += 1
            try:
                for frame in self.client.frames(self.did, self.last_event_id):
                    backoff = 0.25
                    if frame is not None:
                        self.handle(frame)
                    self._status("live")
                    if self.done:
                        break
            except ConnectionClosed as exc:
                if exc.reason in FATAL_CLOSES:
                    raise CliError(FATAL_CLOSES[exc.reason]) from None
                self._status(f"offline, retrying in {backoff:.1f}s")
                self.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff_s)
        self._status("finished")
        return self.session

    def _take_session(self, session: dict[str, Any]) -> None:
        messages = session.pop("messages", [])
        self.session.update(session)
        for p in session.get("participants", []):
            self.people[p["participant_id"]] = p
        for m in messages:
            self._message(m)

    def handle(self, frame: dict[str, Any]) -> None:
        kind = frame.get("type")
        data = frame.get("data") or {}
        if kind == "init":
            self.last_event_id = frame.get("id") or data.get("last_event_id")
            self._take_session({**data["session"], "messages": data.get("messages", [])})
            return
        if kind == "resync_required":
            self._take_session(self.client.session(self.did))
            return
        event_id = frame.get("id")
        if not event_id:
            return  # pong, error
        if self.last_event_id and _key(event_id) <= _key(self.last_event_id):
            return  # already seen
        self.last_event_id = event_id
        s = self.session
        if kind == "message":
            self.speaking, self.draft = None, ""
            self._message(data)
        elif kind == "message_delta":
            # Streamed text shows on the status line until the committed message prints.
            if data.get("index") == 0 or self.draft_turn != data.get("turn"):
                self.draft = ""
            self.draft_turn = data.get("turn")
            self.draft += data.get("delta") or ""
            self.speaking = data.get("participant_name")
        elif kind == "turn_started":
            self.speaking = data.get("participant_name")
            s["current_round"] = max(s.get("current_round") or 0, data.get("round") or 0)
        elif kind == "turn_failed":
            self.echo(f"! {data.get('participant_id')} could not answer: {data.get('error')}")
        elif kind == "status":
            s["status"] = data.get("status", s.get("status"))
            if "waiting_for" in data:
                s["waiting_for"] = data["waiting_for"]
            elif s["status"] != "waiting_for_human":
                s["waiting_for"] = None
            if s["status"] != "waiting_for_human":
                s["wait_deadline"] = s["deadline"] = None
            for k in ("stop_reason", "outcome", "error", "wait_deadline", "deadline"):
                if k in data:
                    s[k] = data[k]
        elif kind in ("vote", "moderation", "outcome"):
            self.echo(f"* {kind}: {data}")

    def _message(self, m: dict[str, Any]) -> None:
        seq = m.get("seq")
        if not isinstance(seq, int) or seq in self.printed or seq in self.pending:
            return
        self.pending[seq] = m
        low = min(self.pending)
        expected = (max(self.printed) if self.printed else 0) + 1
        if low > expected:  # a hole: fetch what is missing from the transcript
            for fetched in self.client.all_messages(self.did, offset=expected - 1):
                if fetched["seq"] not in self.printed:
                    self.pending.setdefault(fetched["seq"], fetched)
        for seq_ in sorted(self.pending):
            if seq_ in self.printed:
                continue
            msg = self.pending[seq_]
            self.echo(render.message(msg, self.people))
            self.printed.add(seq_)
            self.session["message_count"] = max(self.session.get("message_count") or 0, seq_)
            if msg.get("round"):
                self.session["current_round"] = max(self.session.get("current_round") or 0,
                                                    msg["round"])
        self.pending.clear()

    def _status(self, conn: str) -> None:
        tail = " ".join(self.draft.split())[-50:]
        self.status(render.status_line(self.session, self.people, self.speaking, conn, tail))
