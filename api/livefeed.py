"""What the stream hub (api.hub) hands each local socket: every live event encoded once per
process (a Frame), delivered a whole XREAD batch at a time into a bounded Subscription."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field

from core.ground.models import Event
from core.storage import events


def text_frame(payload: bytes) -> bytes:
    """One final, unmasked text frame (RFC 6455 section 5.2) carrying `payload`."""
    n = len(payload)
    if n < 126:
        head = bytes((0x81, n))
    elif n < 1 << 16:
        head = bytes((0x81, 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x81, 127)) + n.to_bytes(8, "big")
    return head + payload


@dataclass(eq=False)
class Frame:
    """One live event as every local viewer gets it, built once per process however many
    sockets send it: its id as a sortable pair, its frame text, and its bytes on the wire as a
    whole WebSocket text frame (server frames are not masked) for viewers that negotiated no
    extension."""

    event: Event
    key: tuple[int, int]
    text: str
    wire: bytes


def encode(event: Event) -> Frame:
    """The event as a Frame."""
    text = json.dumps({"id": event.id, "type": event.type, "data": event.data},
                      separators=(",", ":"), ensure_ascii=False)
    return Frame(event, events.stream_id_key(event.id), text, text_frame(text.encode()))


# What a subscription hands its socket: frames of events, in stream order, and the markers
# REWOUND (resync) and None (wake up: the socket closed, the discussion is gone, or the
# credentials ended; the flags say which).
Item = Frame | Event | None


def _taken_lock() -> threading.Lock:
    lock = threading.Lock()
    lock.acquire()
    return lock


@dataclass(eq=False)
class Subscription:
    """One socket's feed of live events of one discussion.

    The hub adds each XREAD's batch of frames at once and wakes the socket once; the socket
    takes everything waiting in one go, so a batch costs one wake-up and one write per viewer,
    not one per event. At most `limit` frames wait (besides the batch being written): a viewer
    that lets more pile up is marked overflowed and dropped by its socket loop, so a slow
    viewer never delays the others.
    """

    discussion_id: str
    limit: int
    overflowed: bool = False
    gone: bool = False
    # The credentials the socket was opened with: an API key's id, a JWT's `exp` (epoch s).
    key_id: str | None = None
    expires_at: float | None = None
    ended: str | None = None  # why the credentials no longer hold ("revoked", "expired")
    _pending: list[Item] = field(default_factory=list)
    _waiting: int = 0  # frames in _pending
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # A plain lock as a binary semaphore: released once when something is delivered, taken
    # back by take(). threading.Event costs a Condition, a new lock and several acquisitions
    # per wait: under gevent, a seventh of a viewer's CPU (py-spy, bench d).
    _signal: threading.Lock = field(default_factory=_taken_lock)
    _signalled: bool = False

    def offer_frames(self, frames: list[Frame]) -> None:
        """Deliver a batch without blocking; too many waiting marks the viewer too slow."""
        with self._lock:
            if self.overflowed:
                return
            if self._waiting + len(frames) > self.limit:
                self.overflowed = True
            else:
                self._pending.extend(frames)
                self._waiting += len(frames)
            self._wake()

    def offer(self, item: Event | None) -> None:
        """Deliver a marker (REWOUND, or None to wake the socket), after the frames before it."""
        with self._lock:
            self._pending.append(item)
            self._wake()

    def _wake(self) -> None:
        """Release the signal once per take (the caller holds `_lock`)."""
        if not self._signalled:
            self._signalled = True
            self._signal.release()

    def take(self, timeout: float) -> list[Item]:
        """Everything delivered since the last take, in order; [] after `timeout` seconds
        with nothing delivered."""
        if not self._signal.acquire(timeout=timeout):
            return []
        with self._lock:
            self._signalled = False
            items, self._pending, self._waiting = self._pending, [], 0
        return items

    def end(self, reason: str) -> None:
        """The credentials no longer hold: mark it and wake the socket's loop."""
        self.ended = reason
        self.offer(None)
