"""WebSocket `/v1/discussions/{id}/stream`: an `init` frame, then every event, live.

Frames out: `{"id", "type", "data"}` with `id` the event's Redis Stream id. Frames in:
`{"type": "ping"}` (answered `{"type": "pong"}`). Resume with `?last_event_id=<id>`: every event
after it is sent before the live ones, or `resync_required` when it is older than what is kept.
Close codes: 4404 unknown discussion, 4410 deleted, 4008 too slow (reconnect with the last id),
1011 internal error.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

import redis
from flask import request
from flask_sock import Sock
from simple_websocket import ConnectionClosed

from api.extension import Orchestrator, ext
from api.hub import Subscription
from core import metrics
from core.models import Event
from core.store import stream_id_key

log = logging.getLogger(__name__)

INIT_HISTORY = 500
CLOSE_NOT_FOUND, CLOSE_GONE, CLOSE_SLOW, CLOSE_ERROR = 4404, 4410, 4008, 1011


class Viewer:
    """One WebSocket viewer of one discussion."""

    def __init__(self, ws: Any, orch: Orchestrator, discussion_id: str) -> None:
        self.ws = ws
        self.orch = orch
        self.did = discussion_id
        self.send_lock = threading.Lock()
        self.last_sent = (0, 0)
        self.sub: Subscription | None = None

    def send(self, frame: dict[str, Any]) -> None:
        with self.send_lock:
            self.ws.send(json.dumps(frame, separators=(",", ":"), ensure_ascii=False))
        metrics.ws_frame("out")

    def send_event(self, event: Event) -> None:
        key = stream_id_key(event.id)
        if key <= self.last_sent:
            return  # already sent in the backlog
        text = self.orch.hub.frame(event)
        with self.send_lock:
            self.ws.send(text)
        self.last_sent = key

    def run(self, last_event_id: str | None) -> None:
        store = self.orch.store
        if not store.exists(self.did):
            self.ws.close(CLOSE_NOT_FOUND, "discussion not found")
            return
        self.sub = self.orch.hub.subscribe(self.did, self.orch.redis)
        try:
            if last_event_id:
                self._resume(last_event_id)
            else:
                session, cursor = store.session_with_cursor(self.did, INIT_HISTORY)
                data = session.model_dump(mode="json")
                messages = data.pop("messages")
                self.send({"id": cursor, "type": "init",
                           "data": {"session": data, "messages": messages,
                                    "last_event_id": cursor}})
                self.last_sent = stream_id_key(cursor)
            reader = threading.Thread(target=self._read_frames, daemon=True)
            reader.start()
            self._pump()
        finally:
            self.orch.hub.unsubscribe(self.sub)

    def _resume(self, last_event_id: str) -> None:
        try:
            wanted = stream_id_key(last_event_id)
        except ValueError:
            self.send({"type": "error", "data": {"message": "last_event_id is malformed"}})
            wanted = (0, 0)
        store = self.orch.store
        first = store.first_event_id(self.did)
        # The event right after `last_event_id` must still be retained, else something is gone.
        if first is not None and wanted != (0, 0) and stream_id_key(first) > wanted and \
                not _is_successor(wanted, stream_id_key(first)):
            self.send({"type": "resync_required",
                       "data": {"reason": "events after last_event_id are no longer retained",
                                "first_retained_id": first}})
            wanted = (0, 0)
        self.last_sent = wanted
        after = f"{wanted[0]}-{wanted[1]}"
        while True:
            batch = store.events_after(self.did, after, count=1000)
            for event in batch:
                self.send_event(event)
            if len(batch) < 1000:
                break
            after = batch[-1].id

    def _pump(self) -> None:
        assert self.sub is not None
        while True:
            item = self.sub.queue.get()
            if self.sub.overflowed:
                self.ws.close(CLOSE_SLOW, "viewer too slow; reconnect with last_event_id")
                return
            if item is None:
                if self.sub.gone:
                    self.ws.close(CLOSE_GONE, "discussion deleted")
                return  # the reader saw the socket close
            self.send_event(item)

    def _read_frames(self) -> None:
        assert self.sub is not None
        try:
            while True:
                raw = self.ws.receive()
                if raw is None:
                    continue
                metrics.ws_frame("in")
                self._handle(raw)
        except ConnectionClosed:
            pass
        except Exception:  # noqa: BLE001 - a bad frame must not leave the socket half-alive
            log.exception("viewer frame handling failed")
        finally:
            self.sub.queue.put(None)  # wake the pump so it ends too

    def _handle(self, raw: str | bytes) -> None:
        try:
            frame = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            self.send({"type": "error", "data": {"message": "frames must be JSON objects"}})
            return
        if not isinstance(frame, dict):
            self.send({"type": "error", "data": {"message": "frames must be JSON objects"}})
            return
        kind = frame.get("type")
        if kind == "ping":
            self.send({"type": "pong"})
        else:
            self.send({"type": "error", "data": {"message": f"unknown frame type {kind!r}"}})


def _is_successor(a: tuple[int, int], b: tuple[int, int]) -> bool:
    """Whether no stream id can lie strictly between a and b."""
    return b == (a[0], a[1] + 1) or (b[0] == a[0] + 1 and b[1] == 0)


def register(sock: Sock) -> None:
    """Add the stream route to the app behind `sock`."""

    @sock.route("/v1/discussions/<discussion_id>/stream")
    def stream(ws: Any, discussion_id: str) -> None:
        orch = ext()
        viewer = Viewer(ws, orch, discussion_id)
        metrics.ws_opened()
        try:
            viewer.run(request.args.get("last_event_id"))
        except ConnectionClosed:
            pass
        except (redis.ConnectionError, redis.TimeoutError):
            log.warning("stream of %s closed: Redis unavailable", discussion_id)
            _close(ws, CLOSE_ERROR, "state store unavailable")
        except Exception:  # noqa: BLE001 - never leak a trace to a viewer
            log.exception("stream of %s failed", discussion_id)
            _close(ws, CLOSE_ERROR, "internal error")
        finally:
            metrics.ws_closed()


def _close(ws: Any, code: int, reason: str) -> None:
    try:
        ws.close(code, reason)
    except Exception:  # noqa: BLE001 - already closed
        pass
