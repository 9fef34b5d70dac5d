"""One WebSocket viewer of one discussion: the init or resume, then every live event from the
process's stream hub, while a reader thread handles the viewer's frames (api.frames).

What one request can make the server send is bounded: a replay (`?last_event_id=` or a `resume`
frame) larger than WS_MAX_REPLAY_BYTES is not sent; the viewer gets `resync_required` and a fresh
`init` instead, whose history keeps the newest messages that fit the same cap
(`history_truncated`; older ones page in over REST). The hub closes the socket (4401) when its
credentials stop holding, whether or not the viewer sends anything.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

from simple_websocket import ConnectionClosed

from api.extension import Orchestrator
from api.frames import CLOSE_UNAUTHENTICATED, FrameHandler, FrameRate
from api.hub import REWOUND
from api.livefeed import Frame, Subscription, encode
from core.ground import metrics
from core.ground.errors import DiscussionNotFound
from core.services import access
from core.services.auth import Principal
from core.storage import quotas
from core.storage.events import stream_id_key

log = logging.getLogger(__name__)

INIT_HISTORY = 500
REPLAY_BATCH = 200
CLOSE_NOT_FOUND, CLOSE_GONE = 4404, 4410
RENEW_EVERY_S = quotas.SOCKET_TTL_S / 3
EXPIRY_CHECK_S = 5.0
# Live frames to one viewer are joined into writes of about this many bytes.
WRITE_BYTES = 64 * 1024


class Viewer(FrameHandler):
    """One WebSocket viewer of one discussion."""

    def __init__(self, ws: Any, orch: Orchestrator, discussion_id: str,
                 principal: Principal, *, raw_frames: bool = False) -> None:
        self.ws = ws
        # No extension negotiated (no compression): live events go out as the hub's prebuilt
        # frame bytes, written straight to the socket, instead of wsproto framing each one.
        self.raw_frames = raw_frames and getattr(ws, "sock", None) is not None
        self.orch = orch
        self.did = discussion_id
        self.principal = principal
        # Re-entrant: a replay holds it across many sends so live events wait behind it.
        self.send_lock = threading.RLock()
        self.last_sent = (0, 0)
        self.sub: Subscription | None = None
        settings = orch.settings
        self.rate = FrameRate(settings.ws_max_messages_per_s, settings.ws_message_burst)
        self.resume_rate = FrameRate(settings.ws_resume_per_s, settings.ws_resume_burst)
        self.max_replay_bytes = settings.ws_max_replay_bytes

    def send(self, frame: dict[str, Any]) -> None:
        text = json.dumps(frame, separators=(",", ":"), ensure_ascii=False)
        with self.send_lock:
            try:
                self.ws.send(text)
            except (TimeoutError, BrokenPipeError):
                # The viewer stopped reading and the socket buffer stayed full: drop it.
                raise SlowViewer() from None
        metrics.ws_frame("out")

    def send_frames(self, frames: list[Frame]) -> None:
        """Send the frames not already sent (in the backlog), in order. Without extensions
        their prebuilt bytes go out in as few writes as WRITE_BYTES allows, each whole or not
        at all within the send timeout (api/wsframes.py), as a lone frame's write was."""
        with self.send_lock:
            fresh = [f for f in frames if f.key > self.last_sent]
            if not fresh:
                return  # already sent in the backlog
            try:
                if self.raw_frames:
                    if not self.ws.connected:
                        raise ConnectionClosed(self.ws.close_reason, self.ws.close_message)
                    for chunk in _chunks(fresh):
                        self.ws.sock.sendall(chunk)
                else:
                    for f in fresh:
                        self.ws.send(f.text)
                        self.last_sent = f.key
            except (TimeoutError, BrokenPipeError):
                raise SlowViewer() from None
            metrics.ws_frame("out", len(fresh))
            self.last_sent = fresh[-1].key

    def run(self, last_event_id: str | None) -> None:
        store = self.orch.store
        try:
            access.authorize(store, self.did, self.principal)  # unknown and forbidden look alike
        except DiscussionNotFound:
            self.ws.close(CLOSE_NOT_FOUND, "discussion not found")
            return
        self.sub = self.orch.hub.subscribe(self.did, self.orch.redis,
                                           key_id=self.principal.key_id,
                                           expires_at=self.principal.expires_at)
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
            frame = {"id": cursor, "type": "init",
                     "data": {"session": data, "messages": messages, "last_event_id": cursor}}
            text = json.dumps(frame, separators=(",", ":"), ensure_ascii=False)
            if len(text.encode()) > self.max_replay_bytes:
                frame["data"]["messages"] = _newest_that_fit(
                    messages, self.max_replay_bytes - (len(text.encode()) - _size(messages)))
                frame["data"]["history_truncated"] = True
                text = json.dumps(frame, separators=(",", ":"), ensure_ascii=False)
            self._send_text(text)
            self.last_sent = stream_id_key(cursor)

    def _send_text(self, text: str) -> None:
        with self.send_lock:
            try:
                self.ws.send(text)
            except TimeoutError:
                raise SlowViewer() from None
        metrics.ws_frame("out")

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
            # Read the whole backlog first (at most the cap's worth is held): a replay over the
            # cap is never sent, the viewer starts afresh from a bounded init instead.
            backlog: list[Frame] = []
            size, cursor = 0, after
            while True:
                batch = store.events_after(self.did, cursor, count=REPLAY_BATCH)
                for event in batch:
                    frame = encode(event)
                    size += len(frame.text.encode())
                    if size > self.max_replay_bytes:
                        self.send({"type": "resync_required",
                                   "data": {"reason": "the events after last_event_id exceed "
                                                      "WS_MAX_REPLAY_BYTES",
                                            "last_event_id": after,
                                            "max_replay_bytes": self.max_replay_bytes}})
                        return self._init()
                    backlog.append(frame)
                if len(batch) < REPLAY_BATCH:
                    break
                cursor = batch[-1].id
            self.last_sent = wanted
            self.send_frames(backlog)
        return None

    def _pump(self) -> None:
        sub = self.sub
        assert sub is not None
        while True:
            self._renew()
            items = sub.take(EXPIRY_CHECK_S)  # [] when nothing came: only the credentials
            if sub.ended or self._expired():
                # The hub found the key revoked or the token expired (or the clock says so).
                self.ws.close(CLOSE_UNAUTHENTICATED, sub.ended or "credentials expired")
                return
            if sub.overflowed:
                raise SlowViewer()
            frames: list[Frame] = []
            for item in items:
                if isinstance(item, Frame):
                    frames.append(item)
                    continue
                if frames:  # what came before the marker goes first
                    self.send_frames(frames)
                    frames = []
                if item is None:
                    if sub.gone:
                        self.ws.close(CLOSE_GONE, "discussion deleted")
                    return  # the reader saw the socket close
                if item is REWOUND:
                    with self.send_lock:
                        self._resync("events already sent were lost (Redis failover)",
                                      f"{self.last_sent[0]}-{self.last_sent[1]}",
                                      self.orch.store.last_event_id(self.did))
            if frames:
                self.send_frames(frames)

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
            self.sub.offer(None)  # wake the pump so it ends too

    conn_id: str | None = None
    _renewed_at = 0.0

    def _renew(self) -> None:
        """Keep this socket counted in the user's open-socket quota while it lives."""
        if self.conn_id is None or time.monotonic() - self._renewed_at < RENEW_EVERY_S:
            return
        self._renewed_at = time.monotonic()
        quotas.renew_socket(self.orch.redis, self.principal.user_id, self.conn_id)

def _chunks(frames: list[Frame]) -> list[bytes]:
    """The frames' wire bytes joined into writes of whole frames, each about WRITE_BYTES or
    one frame at most (a write has the whole send timeout, as one frame's always had)."""
    chunks: list[bytes] = []
    run: list[bytes] = []
    size = 0
    for f in frames:
        if run and size + len(f.wire) > WRITE_BYTES:
            chunks.append(b"".join(run))
            run, size = [], 0
        run.append(f.wire)
        size += len(f.wire)
    chunks.append(b"".join(run))
    return chunks


def _size(messages: list[dict[str, Any]]) -> int:
    return sum(len(json.dumps(m, separators=(",", ":"), ensure_ascii=False).encode()) + 1
               for m in messages)


def _newest_that_fit(messages: list[dict[str, Any]], budget: int) -> list[dict[str, Any]]:
    """The newest messages whose encoding fits in `budget` bytes (oldest dropped first)."""
    kept: list[dict[str, Any]] = []
    for m in reversed(messages):
        budget -= len(json.dumps(m, separators=(",", ":"), ensure_ascii=False).encode()) + 1
        if budget < 0:
            break
        kept.append(m)
    kept.reverse()
    return kept


class SlowViewer(Exception):
    """The viewer fell too far behind (its queue overflowed or a send timed out)."""
