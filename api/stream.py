"""WebSocket `/v1/discussions/{id}/stream`: an `init` frame, then every event, live.

Frames out: `{"id", "type", "data"}` with `id` the event's Redis Stream id. Frames in:
`{"type": "ping"}` (answered `{"type": "pong"}`) and `{"type": "resume", "last_event_id": id}`.
Resume with `?last_event_id=<id>` on connect, or the `resume` frame on an open socket: every
event after it is sent, in order, before the live ones (nothing falls between: the socket is
subscribed before the backlog is read and live events already sent are skipped by id). When
some event after that id is no longer retained the viewer gets `resync_required` and a fresh
`init`. Close codes: 4404 unknown discussion, 4410 deleted, 4008 too slow (reconnect with the
last id), 1011 internal error; 1008 from the WebSocket layer when a ping goes unanswered.
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
        # Re-entrant: a replay holds it across many sends so live events wait behind it.
        self.send_lock = threading.RLock()
        self.last_sent = (0, 0)
        self.sub: Subscription | None = None

    def send(self, frame: dict[str, Any]) -> None:
        text = json.dumps(frame, separators=(",", ":"), ensure_ascii=False)
        with self.send_lock:
            try:
                self.ws.send(text)
            except TimeoutError:
                # The viewer stopped reading and the socket buffer stayed full: drop it.
                raise SlowViewer() from None
        metrics.ws_frame("out")

    def send_event(self, event: Event) -> None:
        with self.send_lock:
            key = stream_id_key(event.id)
            if key <= self.last_sent:
                return  # already sent in the backlog
            try:
                self.ws.send(self.orch.hub.frame(event))  # encoded once per process
            except TimeoutError:
                raise SlowViewer() from None
            metrics.ws_frame("out")
            self.last_sent = key

    def run(self, last_event_id: str | None) -> None:
        store = self.orch.store
        if not store.exists(self.did):
            self.ws.close(CLOSE_NOT_FOUND, "discussion not found")
            return
        _bound_sends(self.ws, self.orch.settings.ws_send_timeout_s)
        self.sub = self.orch.hub.subscribe(self.did, self.orch.redis)
        try:
            if last_event_id:
                self._resume(last_event_id)
            else:
                self._init()
            reader = threading.Thread(target=self._read_frames, daemon=True)
            reader.start()
            self._pump()
        finally:
            self.orch.hub.unsubscribe(self.sub)

    def _init(self) -> None:
        """The session, its latest messages, and the id of the last event they cover."""
        with self.send_lock:
            session, cursor = self.orch.store.session_with_cursor(self.did, INIT_HISTORY)
            data = session.model_dump(mode="json")
            messages = data.pop("messages")
            self.send({"id": cursor, "type": "init",
                       "data": {"session": data, "messages": messages,
                                "last_event_id": cursor}})
            self.last_sent = stream_id_key(cursor)

    def _resume(self, last_event_id: str) -> None:
        """Send every event after `last_event_id`, or `resync_required` and a fresh init."""
        try:
            wanted = stream_id_key(last_event_id)
        except ValueError:
            self.send({"type": "error", "data": {"message": "last_event_id is malformed"}})
            return self._init()
        store = self.orch.store
        after = f"{wanted[0]}-{wanted[1]}"
        with self.send_lock:
            first = store.events_trimmed_after(self.did, after)
            if first is not None:
                self.send({"type": "resync_required",
                           "data": {"reason": "events after last_event_id are no longer "
                                              "retained", "last_event_id": after,
                                    "first_retained_id": first}})
                return self._init()
            self.last_sent = wanted
            while True:
                batch = store.events_after(self.did, after, count=1000)
                for event in batch:
                    self.send_event(event)
                if len(batch) < 1000:
                    break
                after = batch[-1].id
        return None

    def _pump(self) -> None:
        assert self.sub is not None
        while True:
            item = self.sub.queue.get()
            if self.sub.overflowed:
                raise SlowViewer()
            if item is None:
                if self.sub.gone:
                    self.ws.close(CLOSE_GONE, "discussion deleted")
                return  # the reader saw the socket close
            self.send_event(item)

    def _read_frames(self) -> None:
        assert self.sub is not None
        try:
            while True:
                # A timeout, because simple-websocket can miss the wake-up when it closes the
                # socket itself (frame too big, ping unanswered) and leave receive() waiting.
                raw = self.ws.receive(timeout=1.0)
                if raw is None:
                    if not getattr(self.ws, "connected", True):
                        return
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
        elif kind == "resume":
            last_event_id = frame.get("last_event_id")
            if not isinstance(last_event_id, str) or not _valid_id(last_event_id):
                self.send({"type": "error",
                           "data": {"message": "resume needs last_event_id, a stream id "
                                               "such as 1700000000000-0"}})
                return
            self._resume(last_event_id)
        else:
            self.send({"type": "error", "data": {"message": f"unknown frame type {kind!r}"}})


class SlowViewer(Exception):
    """The viewer fell too far behind (its queue overflowed or a send timed out)."""


def _valid_id(event_id: str) -> bool:
    try:
        stream_id_key(event_id)
    except ValueError:
        return False
    return len(event_id) <= 41


def _bound_sends(ws: Any, timeout_s: float) -> None:
    """Make a send to a viewer that stopped reading fail after `timeout_s` instead of hanging.

    The WebSocket layer's reader waits with a selector before each recv, so a socket timeout
    only ever fires on sends.
    """
    sock = getattr(ws, "sock", None)
    if sock is not None:
        sock.settimeout(timeout_s)


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
        except SlowViewer:
            log.info("viewer of %s too slow; closed", discussion_id)
            _close(ws, CLOSE_SLOW, "viewer too slow; reconnect with last_event_id")
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
