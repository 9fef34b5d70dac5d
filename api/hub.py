"""One stream reader per API process, fanning each discussion's events out to local sockets.

Viewers never hold a Redis connection of their own: the hub issues one XREAD over every watched
discussion's stream, encodes each entry once (a Frame) and hands each local subscriber the
whole batch at once, waking its socket once per batch. A subscriber that lets too many frames
pile up is marked overflowed and dropped by its socket loop, so a slow viewer never delays the
others.

Every `existence_check_s` the hub also re-checks the credentials of every local subscriber in one
pipeline: a socket whose API key was revoked, or whose JWT passed its `exp`, is marked `ended`
and woken, so it closes (4401) whether or not its viewer ever sends a frame.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import redis

from api.livefeed import Frame, Subscription, encode, text_frame
from core.ground.models import Event
from core.services.auth import revoked_keys
from core.storage import events

log = logging.getLogger(__name__)

__all__ = ["REWOUND", "Frame", "StreamHub", "Subscription", "encode", "text_frame"]

# Offered to a discussion's subscribers when its stream lost events they may have been sent
# (a Redis failover to a replica that had not received them): each must resync.
REWOUND = Event(id="0-0", type="rewound", data={})


class StreamHub:
    """Reads the events streams of the discussions that local sockets watch."""

    def __init__(
        self,
        client_factory: Callable[[], redis.Redis],
        *,
        block_ms: int = 50,
        queue_size: int = 2000,
        existence_check_s: float = 2.0,
    ) -> None:
        self._client_factory = client_factory
        self.block_ms = block_ms
        self.queue_size = queue_size
        self.existence_check_s = existence_check_s
        self._subs: dict[str, set[Subscription]] = {}
        self._positions: dict[str, str] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._client: redis.Redis | None = None

    def subscribe(self, discussion_id: str, client: redis.Redis, *, key_id: str | None = None,
                  expires_at: float | None = None) -> Subscription:
        """Register a subscriber; events after the current end of the stream reach its queue.

        Call this before reading any backlog, then skip queued events already sent. `key_id`
        and `expires_at` are the socket's credentials, re-checked every `existence_check_s`.
        """
        sub = Subscription(discussion_id, self.queue_size, key_id=key_id,
                           expires_at=expires_at)
        with self._lock:
            if discussion_id not in self._positions:
                self._positions[discussion_id] = events.last_id(client, discussion_id)
            self._subs.setdefault(discussion_id, set()).add(sub)
            self._ensure_thread()
        self._wake.set()
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            subs = self._subs.get(sub.discussion_id)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._subs[sub.discussion_id]
                    self._positions.pop(sub.discussion_id, None)

    def viewer_count(self) -> int:
        with self._lock:
            return sum(len(s) for s in self._subs.values())

    def stop(self) -> None:
        """Stop the reader; its Redis connection is closed when the loop ends."""
        self._stopping = True
        self._wake.set()

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="stream-hub", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        try:
            self._loop()
        finally:
            if self._client is not None:
                self._client.connection_pool.disconnect()
                self._client = None

    def _loop(self) -> None:
        backoff = 0.1
        last_check = time.monotonic()
        lost = False
        while not self._stopping:
            with self._lock:
                positions = dict(self._positions)
            if not positions:
                self._wake.wait(1.0)
                self._wake.clear()
                continue
            try:
                if self._client is None:
                    self._client = self._client_factory()
                if lost:
                    self._check_rewound()
                    lost = False
                result = events.read_live(self._client, positions, count=500,
                                          block_ms=self.block_ms)
                backoff = 0.1
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                log.warning("stream hub lost Redis (%s); retrying in %.1fs", exc, backoff)
                lost = True
                time.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            for did, batch in result:
                self._deliver(did, batch)
            if time.monotonic() - last_check >= self.existence_check_s:
                last_check = time.monotonic()
                self._check_existence()
                self._check_credentials()

    def _deliver(self, did: str, batch: list[Event]) -> None:
        with self._lock:
            if did not in self._positions:
                return
            self._positions[did] = batch[-1].id
            subs = list(self._subs.get(did, ()))
        if not subs:
            return
        frames = [encode(event) for event in batch]  # once per process, not per socket
        for sub in subs:
            sub.offer_frames(frames)

    def _check_rewound(self) -> None:
        """After reconnecting: a stream that now ends before what the hub already delivered
        lost events (a failover to a replica that lacked them). Its subscribers are told to
        resync, and reading goes on from where the stream now ends."""
        assert self._client is not None
        with self._lock:
            positions = dict(self._positions)
        self._rewound(positions, events.stream_ends(self._client, list(positions)))

    def _rewound(self, positions: dict[str, str], ends: list[str | None]) -> None:
        """Resync the subscribers of every stream whose last entry precedes the position."""
        for (did, pos), end in zip(positions.items(), ends, strict=True):
            if end is None or events.stream_id_key(end) >= events.stream_id_key(pos):
                continue  # no stream at all is a deletion: _check_existence tells them
            log.warning("events of %s after %s were lost (Redis failover?); viewers resync",
                        did, end)
            with self._lock:
                if did in self._positions:
                    self._positions[did] = end
                subs = list(self._subs.get(did, ()))
            for sub in subs:
                sub.offer(REWOUND)

    def _check_existence(self) -> None:
        """Tell the sockets of deleted discussions, whose streams simply stop, and those of
        streams that lost events already delivered (a failover may surface no error here:
        the client reconnects by itself)."""
        with self._lock:
            dids = list(self._subs)
            positions = dict(self._positions)
        if not dids or self._client is None:
            return
        try:
            found = events.which_exist(self._client, dids)
            ends = events.stream_ends(self._client, list(positions))
        except (redis.ConnectionError, redis.TimeoutError):
            return
        self._rewound(positions, ends)
        for did, exists in zip(dids, found, strict=True):
            if not exists:
                with self._lock:
                    subs = list(self._subs.get(did, ()))
                for sub in subs:
                    sub.gone = True
                    sub.offer(None)

    def _check_credentials(self) -> None:
        """End the subscriptions whose API key is gone or whose JWT has expired."""
        with self._lock:
            subs = [sub for group in self._subs.values() for sub in group
                    if sub.ended is None and (sub.key_id or sub.expires_at is not None)]
        if not subs or self._client is None:
            return
        now = time.time()
        try:
            revoked = revoked_keys(self._client, {s.key_id for s in subs if s.key_id})
        except (redis.ConnectionError, redis.TimeoutError):
            revoked = set()
        for sub in subs:
            if sub.key_id in revoked:
                sub.end("credentials revoked")
            elif sub.expires_at is not None and now >= sub.expires_at:
                sub.end("credentials expired")
