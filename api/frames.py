"""Inbound WebSocket frames of a viewer: `ping`, `resume` and `post`, each checked against
FRAME_PERMISSIONS (read afresh for every frame that acts), the frame rate and the viewer's
credentials. Mixed into api.viewer.Viewer, which supplies the socket, the send and the resume."""

from __future__ import annotations

import json
import time
from typing import Any

from pydantic import ValidationError
from simple_websocket import ConnectionClosed

from api.extension import Orchestrator
from core.ground.errors import OrchestratorError
from core.ground.jsonlimits import BODY_MAX_DEPTH, depth
from core.ground.models import Permission, PostMessage
from core.services import access
from core.services import discussions as service
from core.services.auth import Principal
from core.storage import api_keys
from core.storage.events import stream_id_key

CLOSE_UNAUTHENTICATED, CLOSE_RATE = 4401, 4429
# What each inbound frame type needs; a type not listed is refused. None: no permission needed.
FRAME_PERMISSIONS: dict[str, Permission | None] = {
    "ping": None,
    "resume": None,
    "post": Permission.WRITE,
}


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


class FrameHandler:
    """Frame handling of a viewer."""

    ws: Any
    orch: Orchestrator
    did: str
    principal: Principal
    rate: FrameRate

    def send(self, frame: dict[str, Any]) -> None:  # pragma: no cover - Viewer defines it
        raise NotImplementedError

    def _resume(self, last_event_id: str) -> None:  # pragma: no cover - Viewer defines it
        raise NotImplementedError

    def _expired(self) -> bool:
        exp = self.principal.expires_at
        return exp is not None and time.time() > exp + self.orch.settings.jwt_leeway_s

    def _revoked(self) -> bool:
        key_id = self.principal.key_id
        return key_id is not None and not api_keys.exists(self.orch.redis, key_id)

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
        except RecursionError:
            frame = None
        if frame is not None and not isinstance(frame, dict):
            self._error("frames must be JSON objects")
            return
        ref = frame.get("ref") if frame is not None else None
        if not valid_ref(ref):
            self._error("ref must be a string of up to 64 characters or an integer",
                        "validation_error", status=422)
            return
        if frame is None or depth(frame, BODY_MAX_DEPTH) > BODY_MAX_DEPTH:
            self._error(f"frame: nested too deep: at most {BODY_MAX_DEPTH} levels",
                        "validation_error", ref=ref, status=422)
            return
        kind = frame.get("type")
        if not isinstance(kind, str) or kind not in FRAME_PERMISSIONS:
            shown = kind[:40] if isinstance(kind, str) else type(kind).__name__
            self._error(f"unknown frame type {shown!r}", ref=ref)
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
            if not isinstance(last_event_id, str) or not valid_event_id(last_event_id):
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


def valid_ref(ref: Any) -> bool:
    """A frame's `ref` is echoed back, so it must be small: a short string or an integer."""
    if ref is None:
        return True
    if isinstance(ref, str):
        return len(ref) <= 64
    return isinstance(ref, int) and not isinstance(ref, bool) and abs(ref) < 2**53


def valid_event_id(event_id: str) -> bool:
    """Whether `event_id` is a stream id such as 1700000000000-0."""
    try:
        stream_id_key(event_id)
    except ValueError:
        return False
    return len(event_id) <= 41
