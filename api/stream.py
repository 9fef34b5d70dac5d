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

import logging
import time
from typing import Any

import redis
from flask import request
from flask_sock import Sock
from simple_websocket import ConnectionClosed

from api import wsframes
from api.auth import current
from api.extension import ext
from api.frames import CLOSE_RATE
from api.viewer import SlowViewer, Viewer
from core.ground import metrics
from core.ground.ids import new_id
from core.storage import quotas

log = logging.getLogger(__name__)

CLOSE_SLOW, CLOSE_ERROR = 4008, 1011


def register(sock: Sock) -> None:
    """Add the stream route to the app behind `sock`."""

    @sock.route("/v1/discussions/<discussion_id>/stream")
    def stream(ws: Any, discussion_id: str) -> None:
        orch = ext()
        principal = current()
        # Every frame from here on goes out whole, within the send timeout (api/wsframes.py).
        wsframes.guard(ws, orch.settings.ws_send_timeout_s)
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
    """Send the close frame; when even that cannot go out in time, end the connection."""
    try:
        ws.close(code, reason)
    except TimeoutError:
        framed = getattr(ws, "sock", None)
        if isinstance(framed, wsframes.FrameSocket):
            framed.abort()
    except Exception:  # noqa: BLE001 - already closed
        pass
