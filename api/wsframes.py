"""Whole WebSocket frames or none: the socket under a viewer's connection.

simple-websocket writes every frame (ours, its own pings and pongs, the close frame) with one
`socket.send`, from whichever thread produced it, and ignores how many bytes went out. Once a
send timeout is set (so a viewer that stopped reading cannot hang a send), a send into a nearly
full buffer writes part of a frame and returns: the rest was silently dropped, and the next frame
(often the 4008 close) followed the fragment, which the client read as a corrupt frame ("rsv is
not implemented"). Two threads sending at once (a pong from the frame reader, an event from the
pump, a ping from the library's thread) could also interleave their bytes.

`guard(ws, timeout_s)` puts a `FrameSocket` in place of the connection's socket: every write
holds one lock and goes out whole before the next starts, within `timeout_s`. A write that
times out before its first byte raises TimeoutError with the stream still intact (a close frame
may follow); one that times out part-way leaves the stream unusable, so the connection is shut
down at once and every later write raises BrokenPipeError (simple-websocket treats that as
closed): the client sees the connection end, never a corrupt frame, and reconnects with its
last event id.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any


class FrameSocket:
    """A socket whose `send` writes all of its bytes or, on a timeout part-way, ends the
    connection; everything else is the wrapped socket's."""

    def __init__(self, sock: Any, timeout_s: float) -> None:
        self._sock = sock
        self._timeout_s = timeout_s
        self._lock = threading.Lock()
        self.broken = False
        sock.settimeout(timeout_s)

    def send(self, data: bytes) -> int:
        view = memoryview(data)
        with self._lock:
            if self.broken:
                raise BrokenPipeError("the connection was cut after a partly written frame")
            deadline = time.monotonic() + self._timeout_s
            written = 0
            try:
                while written < len(view):
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise TimeoutError("send timed out")
                    self._sock.settimeout(remaining)
                    written += self._sock.send(view[written:])
            except OSError:  # a timeout, or the peer went away
                if written:
                    self._cut()
                raise
            finally:
                if not self.broken:
                    self._sock.settimeout(self._timeout_s)
            return written

    def sendall(self, data: bytes) -> None:
        self.send(data)

    def abort(self) -> None:
        """End the connection without a close frame (one could not be written in time)."""
        with self._lock:
            self._cut()

    def _cut(self) -> None:
        """End the connection: part of a frame is out and the rest can never follow."""
        self.broken = True
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already gone

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def guard(ws: Any, timeout_s: float) -> FrameSocket | None:
    """Put a FrameSocket under the connection `ws` (once); None when it has no socket."""
    sock = getattr(ws, "sock", None)
    if sock is None:
        return None
    if isinstance(sock, FrameSocket):
        return sock
    framed = FrameSocket(sock, timeout_s)
    ws.sock = framed
    return framed
