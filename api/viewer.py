"""One WebSocket viewer of one discussion: the init or resume, then every live event from the
process's stream hub, while a reader thread handles the viewer's frames (api.frames)."""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from typing import Any

from simple_websocket import ConnectionClosed

from api.extension import Orchestrator
from api.frames import CLOSE_UNAUTHENTICATED, FrameHandler, FrameRate
from api.hub import REWOUND, Subscription
from core.ground import metrics
from core.ground.errors import DiscussionNotFound
from core.ground.models import Event
from core.services import access
from core.services.auth import Principal
from core.storage import quotas
from core.storage.events import stream_id_key

log = logging.getLogger(__name__)

INIT_HISTORY = 500
CLOSE_NOT_FOUND, CLOSE_GONE = 4404, 4410
RENEW_EVERY_S = quotas.SOCKET_TTL_S / 3
EXPIRY_CHECK_S = 5.0


class Viewer(FrameHandler):
    """One WebSocket viewer of one discussion."""

    def __init__(self, ws: Any, orch: Orchestrator, discussion_id: str,
                 principal: Principal) -> None:
        self.ws = ws
        self.orch = orch
        self.did = discussion_id
        self.principal = principal
        # Re-entrant: a replay holds it across many sends so live events wait behind it.
        self.send_lock = threading.RLock()
        self.last_sent = (0, 0)
        self.sub: Subscription | None = None
        settings = orch.settings
        self.rate = FrameRate(settings.ws_max_messages_per_s, settings.ws_message_burst)

    def send(self, frame: dict[str, Any]) -> None:
        text = json.dumps(frame, separators=(",", ":"), ensure_ascii=False)
        with self.send_lock:
            try:
                self.ws.send(text)
            except (TimeoutError, BrokenPipeError):
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
            except (TimeoutError, BrokenPipeError):
                raise SlowViewer() from None
            metrics.ws_frame("out")
            self.last_sent = key

    def run(self, last_event_id: str | None) -> None:
        store = self.orch.store
        try:
            access.authorize(store, self.did, self.principal)  # unknown and forbidden look alike
        except DiscussionNotFound:
            self.ws.close(CLOSE_NOT_FOUND, "discussion not found")
            return
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
            if wanted != (0, 0) and store.event_lost(self.did, after):
                # The viewer saw an event this stream no longer has: a failover lost it.
                return self._resync("last_event_id was lost (Redis failover)", after,
                                    store.last_event_id(self.did))
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
            self._renew()
            try:
                item = self.sub.queue.get(timeout=EXPIRY_CHECK_S)
            except queue.Empty:
                if self._expired():
                    self.ws.close(CLOSE_UNAUTHENTICATED, "credentials expired")
                    return
                continue
            if self.sub.overflowed:
                raise SlowViewer()
            if item is None:
                if self.sub.gone:
                    self.ws.close(CLOSE_GONE, "discussion deleted")
                return  # the reader saw the socket close
            if item is REWOUND:
                with self.send_lock:
                    self._resync("events already sent were lost (Redis failover)",
                                 f"{self.last_sent[0]}-{self.last_sent[1]}",
                                 self.orch.store.last_event_id(self.did))
                continue
            self.send_event(item)

    def _resync(self, reason: str, last_event_id: str, stream_end: str) -> None:
        """Tell the viewer its history is no longer the server's, then a fresh init (the
        caller holds `send_lock`)."""
        self.send({"type": "resync_required",
                   "data": {"reason": reason, "last_event_id": last_event_id,
                            "stream_end_id": stream_end}})
        self._init()

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

    conn_id: str | None = None
    _renewed_at = 0.0

    def _renew(self) -> None:
        """Keep this socket counted in the user's open-socket quota while it lives."""
        if self.conn_id is None or time.monotonic() - self._renewed_at < RENEW_EVERY_S:
            return
        self._renewed_at = time.monotonic()
        quotas.renew_socket(self.orch.redis, self.principal.user_id, self.conn_id)

class SlowViewer(Exception):
    """The viewer fell too far behind (its queue overflowed or a send timed out)."""
