"""WebSocket `/v1/discussions/{id}/stream`: an `init` frame, then every event, live.

Frames out: `{"id", "type", "data"}` with `id` the event's Redis Stream id. Frames in:
`{"type": "ping"}` (answered `{"type": "pong"}`), `{"type": "resume", "last_event_id": id}` and
`{"type": "post", "participant_id", "content", ...}` (needs `write`; answered `posted` or
`error`). Resume with `?last_event_id=<id>` on connect, or the `resume` frame on an open socket:
every event after it is sent, in order, before the live ones (nothing falls between: the socket
is subscribed before the backlog is read and live events already sent are skipped by id). When
some event after that id is no longer retained the viewer gets `resync_required` and a fresh
`init`.

Security (docs/security.md): the upgrade is authenticated and its Origin checked before it is
accepted (api/auth.py); read permission is checked before the first frame, the permission in
FRAME_PERMISSIONS before every frame that acts; frames are capped in size and rate.
Close codes: 4404 unknown discussion or no access, 4410 deleted, 4008 too slow (reconnect with
the last id), 4401 credentials expired or revoked, 4429 too many frames or sockets, 1009 frame
too big, 1011 internal error; 1008 from the WebSocket layer when a ping goes unanswered.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from typing import Any

import redis
from flask import request
from flask_sock import Sock
from pydantic import ValidationError
from simple_websocket import ConnectionClosed

from api.auth import current
from api.extension import Orchestrator, ext
from api.hub import Subscription
from core.ground import metrics
from core.ground.errors import DiscussionNotFound, OrchestratorError
from core.ground.ids import new_id
from core.ground.models import Event, Permission, PostMessage
from core.services import access
from core.services import discussions as service
from core.services.auth import Principal
from core.storage import keys, quotas
from core.storage.store import stream_id_key

log = logging.getLogger(__name__)

INIT_HISTORY = 500
CLOSE_NOT_FOUND, CLOSE_GONE, CLOSE_SLOW, CLOSE_ERROR = 4404, 4410, 4008, 1011
CLOSE_UNAUTHENTICATED, CLOSE_RATE = 4401, 4429
RENEW_EVERY_S = quotas.SOCKET_TTL_S / 3
# What each inbound frame type needs; a type not listed is refused. None: no permission needed.
FRAME_PERMISSIONS: dict[str, Permission | None] = {
    "ping": None,
    "resume": None,
    "post": Permission.WRITE,
}
EXPIRY_CHECK_S = 5.0


class FrameRate:
    """A token bucket: `rate` frames a second on average, bursts up to `burst`."""

    def __init__(self, rate: float, burst: int, clock: Any = time.monotonic) -> None:
        self.rate, self.burst, self.clock = rate, float(burst), clock
        self.tokens, self.at = float(burst), clock()

    def allow(self) -> bool:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True


class Viewer:
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
        try:
            access.authorize(store, self.did, self.principal)  # unknown and forbidden look alike
        except DiscussionNotFound:
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

    conn_id: str | None = None
    _renewed_at = 0.0

    def _renew(self) -> None:
        """Keep this socket counted in the user's open-socket quota while it lives."""
        if self.conn_id is None or time.monotonic() - self._renewed_at < RENEW_EVERY_S:
            return
        self._renewed_at = time.monotonic()
        quotas.renew_socket(self.orch.redis, self.principal.user_id, self.conn_id)

    def _expired(self) -> bool:
        exp = self.principal.expires_at
        return exp is not None and time.time() > exp + self.orch.settings.jwt_leeway_s

    def _revoked(self) -> bool:
        key_id = self.principal.key_id
        return key_id is not None and not self.orch.redis.exists(keys.api_key(key_id))

    def _error(self, message: str, code: str = "bad_request", ref: Any = None,
               **extra: Any) -> None:
        frame: dict[str, Any] = {"type": "error",
                                 "data": {"code": code, "message": message, **extra}}
        if ref is not None:
            frame["ref"] = ref
        self.send(frame)

    def _handle(self, raw: str | bytes) -> None:
        if not self.rate.allow():
            self.ws.close(CLOSE_RATE, "too many frames; slow down")
            raise ConnectionClosed(CLOSE_RATE, "too many frames")
        if self._expired():
            self.ws.close(CLOSE_UNAUTHENTICATED, "credentials expired")
            raise ConnectionClosed(CLOSE_UNAUTHENTICATED, "credentials expired")
        try:
            frame = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            self._error("frames must be JSON objects")
            return
        if not isinstance(frame, dict):
            self._error("frames must be JSON objects")
            return
        kind, ref = frame.get("type"), frame.get("ref")
        if not isinstance(kind, str) or kind not in FRAME_PERMISSIONS:
            self._error(f"unknown frame type {kind!r}", ref=ref)
            return
        needed = FRAME_PERMISSIONS[kind]
        if needed is not None:
            if self._revoked():
                self.ws.close(CLOSE_UNAUTHENTICATED, "credentials revoked")
                raise ConnectionClosed(CLOSE_UNAUTHENTICATED, "credentials revoked")
            try:  # permissions are read afresh for every frame that acts
                access.authorize(self.orch.store, self.did, self.principal, needed)
            except OrchestratorError as exc:
                self._error(exc.message, exc.code, ref=ref, status=exc.status)
                return
        if kind == "ping":
            self.send({"type": "pong"})
        elif kind == "resume":
            last_event_id = frame.get("last_event_id")
            if not isinstance(last_event_id, str) or not _valid_id(last_event_id):
                self._error("resume needs last_event_id, a stream id such as 1700000000000-0",
                            ref=ref)
                return
            self._resume(last_event_id)
        elif kind == "post":
            self._post(frame, ref)

    def _post(self, frame: dict[str, Any], ref: Any) -> None:
        key = frame.get("idempotency_key")
        fields = {k: v for k, v in frame.items() if k not in ("type", "ref", "idempotency_key")}
        try:
            if key is not None and (not isinstance(key, str) or not 1 <= len(key) <= 128):
                raise ValueError("idempotency_key must be 1 to 128 characters")
            body = PostMessage.model_validate(fields)
            result = service.post_message(self.orch.services(), self.did, body, key,
                                          self.principal)
        except ValidationError as exc:
            first = exc.errors(include_url=False, include_input=False)[0]
            where = ".".join(str(p) for p in first["loc"]) or "frame"
            self._error(f"{where}: {first['msg']}", "validation_error", ref=ref, status=422)
            return
        except ValueError as exc:
            self._error(str(exc), "validation_error", ref=ref, status=422)
            return
        except OrchestratorError as exc:
            self._error(exc.message, exc.code, ref=ref, status=exc.status)
            return
        data: dict[str, Any] = {"message_id": result.message.message_id,
                                "seq": result.message.seq, "replayed": result.replayed}
        if result.held_id:  # a moderated discussion holds it for approval
            data.update(held_id=result.held_id, status="held")
        out: dict[str, Any] = {"type": "posted", "data": data}
        if ref is not None:
            out["ref"] = ref
        self.send(out)


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
        principal = current()
        viewer = Viewer(ws, orch, discussion_id, principal)
        admitted = False
        metrics.ws_opened()
        try:
            if not principal.unrestricted:  # open sockets per user, counted across processes
                viewer.conn_id = new_id("ws")
                viewer._renewed_at = time.monotonic()
                if not quotas.admit_socket(orch.redis, orch.settings, principal.user_id,
                                           viewer.conn_id):
                    _close(ws, CLOSE_RATE, "too many open connections")
                    return
                admitted = True
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
            if admitted and viewer.conn_id:
                try:
                    quotas.release_socket(orch.redis, principal.user_id, viewer.conn_id)
                except redis.RedisError:  # the entry expires by itself
                    log.warning("could not release socket %s", viewer.conn_id)


def _close(ws: Any, code: int, reason: str) -> None:
    try:
        ws.close(code, reason)
    except Exception:  # noqa: BLE001 - already closed
        pass
