"""Keeping a worker's leases alive, and giving them back once Redis answers again.

One keeper per worker process. While a step holds its discussion's lease, the keeper renews it
(fenced by the token) every `lease_renew_interval_s`, all of the process's leases in one
pipelined round trip, so a lease lives a few seconds yet never runs out under a step that is
working, however long its agent takes. A renewal that finds the token stale marks the lease
lost and, when the step is waiting on its agent under the gevent pool, stops that wait at once
with StaleLease; the step checks the mark before every turn (and its commits are fenced).

A step whose Redis calls failed (Redis down) hands its lease to `release_later`: the keeper
retries the release every `RETRY_S` and, once Redis answers, re-enqueues the discussion, so
nothing waits for the lease to expire or for a sweep.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import redis
from kombu.exceptions import OperationalError

from core.ground.errors import StaleLease
from core.ground.settings import Settings
from core.storage.leases import Leases, owner_id
from core.storage.store import Store

log = logging.getLogger(__name__)

# This process's identity as a lease owner: the worker's name (set when the worker starts)
# and a boot id made at import, shared by a prefork worker's children.
BOOT = uuid.uuid4().hex[:12]
_worker_name = f"{socket.gethostname()}-{os.getpid()}"


def set_worker_name(name: str) -> None:
    """Name leases after this Celery worker (its heartbeat entry), not the bare process."""
    global _worker_name
    _worker_name = name


def owner() -> str:
    """What this process writes as `lease_owner` when it takes a lease."""
    return owner_id(_worker_name, BOOT)


RETRY_S = 0.25  # how often leases waiting to be released are retried while Redis is away
IDLE_EXIT_S = 30.0  # a keeper thread with nothing to keep for this long ends
TRANSIENT = (redis.ConnectionError, redis.TimeoutError, OperationalError)


def _gevent_hub() -> Any:
    """gevent's hub when this process runs under gevent's monkey patches, else None."""
    monkey = sys.modules.get("gevent.monkey")
    if monkey is None or not monkey.is_module_patched("threading"):
        return None
    return sys.modules["gevent"].get_hub()


class Lease:
    """One step's hold on a discussion."""

    def __init__(self, discussion_id: str, token: int, now: float) -> None:
        self.discussion_id = discussion_id
        self.token = token
        self.renewed_at = now
        self.lost = threading.Event()
        self._waiting: Any = None  # the step's greenlet while it waits on its agent

    def check(self) -> None:
        """Raise StaleLease if a renewal found the lease taken over (or it ran out)."""
        if self.lost.is_set():
            raise StaleLease(f"lease {self.token} of {self.discussion_id} was lost",
                             reason="lease_lost")

    @contextmanager
    def interruptible(self) -> Iterator[None]:
        """A wait (an agent call) that a lost lease ends at once under gevent."""
        self.check()
        hub = _gevent_hub()
        self._waiting = sys.modules["gevent"].getcurrent() if hub is not None else None
        try:
            yield
        finally:
            self._waiting = None
        self.check()

    def mark_lost(self) -> None:
        self.lost.set()
        waiting, hub = self._waiting, _gevent_hub()
        if waiting is None or hub is None:
            return

        def interrupt() -> None:
            # Runs in the hub: the step is still parked in its agent call only if `_waiting`
            # is unchanged, and nothing can switch between this check and the throw.
            if self._waiting is waiting and not waiting.dead:
                waiting.throw(StaleLease(f"lease {self.token} of {self.discussion_id} was "
                                         "taken over", reason="lease_lost"))

        hub.loop.run_callback(interrupt)


class LeaseKeeper:
    """Renews the leases of this process's running steps; releases those a failure left."""

    def __init__(self, settings: Settings, store: Store, enqueue: Callable[[str], None],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.store = store
        self.leases = Leases(store.r)
        self.enqueue = enqueue
        self.clock = clock
        self._held: dict[tuple[str, int], Lease] = {}
        self._pending: dict[tuple[str, int], float] = {}  # (did, token) -> give up after
        self._unsent: set[str] = set()  # discussions to re-enqueue once the broker answers
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ what steps call

    def hold(self, discussion_id: str, token: int) -> Lease:
        """Keep this lease alive until `drop`."""
        lease = Lease(discussion_id, token, self.clock())
        with self._lock:
            self._held[(discussion_id, token)] = lease
        self._ensure_thread()
        return lease

    def drop(self, lease: Lease) -> None:
        with self._lock:
            self._held.pop((lease.discussion_id, lease.token), None)

    def get(self, discussion_id: str) -> Lease | None:
        """The lease this process holds on a discussion, if any."""
        with self._lock:
            for (did, _), lease in self._held.items():
                if did == discussion_id:
                    return lease
        return None

    def release_later(self, discussion_id: str, token: int) -> None:
        """Release this lease, and re-enqueue its discussion, as soon as Redis answers."""
        with self._lock:
            # Past the visibility timeout the broker's redelivery takes over anyway.
            self._pending[(discussion_id, token)] = (
                self.clock() + self.settings.broker_visibility_timeout_s)
        self._ensure_thread()
        self._wake.set()

    def enqueue_later(self, discussion_id: str) -> None:
        """Re-enqueue a discussion as soon as the broker takes it (a failed enqueue)."""
        with self._lock:
            self._unsent.add(discussion_id)
        self._ensure_thread()
        self._wake.set()

    # ------------------------------------------------------------ the keeper's loop

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="lease-keeper",
                                                daemon=True)
                self._thread.start()

    def _idle_exit(self, idle_since: float) -> bool:
        """End the thread after IDLE_EXIT_S with nothing to do (the next hold starts one)."""
        with self._lock:
            if self._held or self._pending or self._unsent:
                return False
            if self.clock() - idle_since < IDLE_EXIT_S:
                return False
            self._thread = None
            return True

    def _run(self) -> None:
        next_renewal = self.clock()
        idle_since = self.clock()
        while True:
            if self._held or self._pending or self._unsent:
                idle_since = self.clock()
            elif self._idle_exit(idle_since):
                return
            busy = bool(self._pending or self._unsent)
            wait = RETRY_S if busy else max(0.0, next_renewal - self.clock())
            self._wake.wait(wait)
            self._wake.clear()
            try:
                if self.clock() >= next_renewal:
                    next_renewal = self.clock() + self.settings.lease_renew_interval_s
                    self.renew_once()
                self.retry_once()
            except Exception:  # noqa: BLE001 - the keeper must outlive any one failure
                log.exception("lease keeper pass failed")

    def renew_once(self) -> None:
        """Renew every held lease; mark those found stale, or unrenewed past their TTL."""
        with self._lock:
            held = list(self._held.values())
        if not held:
            return
        now = self.clock()
        try:
            fresh = self.leases.renew([(h.discussion_id, h.token) for h in held],
                                      self.settings.lease_ttl_ms)
        except TRANSIENT as exc:
            log.warning("renewing %d leases failed: %s", len(held), exc)
            for lease in held:
                if now - lease.renewed_at > self.settings.lease_ttl_s:
                    lease.mark_lost()  # it has expired by now, wherever Redis is
            return
        for lease, ok in zip(held, fresh, strict=True):
            if ok:
                lease.renewed_at = now
            else:
                log.info("lease %s of %s was taken over; stopping its step", lease.token,
                         lease.discussion_id)
                lease.mark_lost()

    def retry_once(self) -> None:
        """Release the leases left by failed steps, then re-enqueue their discussions."""
        with self._lock:
            pending = list(self._pending.items())
        now = self.clock()
        for (did, token), give_up in pending:
            try:
                self.store.release(did, token)
            except TRANSIENT:
                if now > give_up:
                    with self._lock:
                        self._pending.pop((did, token), None)
                continue
            except Exception:  # noqa: BLE001 - a deleted discussion, say: nothing to release
                log.exception("releasing the lease of %s failed", did)
            with self._lock:
                self._pending.pop((did, token), None)
                self._unsent.add(did)
        with self._lock:
            unsent = list(self._unsent)
        for did in unsent:
            try:
                self.enqueue(did)
            except TRANSIENT:
                continue
            with self._lock:
                self._unsent.discard(did)
            log.info("re-enqueued %s after Redis answered again", did)
