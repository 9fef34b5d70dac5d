"""Running the async agent SDKs (a2a-sdk, AutoGen) from our synchronous steps and views.

One event loop per process runs on its own thread, started on first use (after a fork, never
at import). Callers hand it a coroutine and wait for the result with a timeout. Under gevent's
monkey-patching that thread is a greenlet whose loop waits on gevent's selector, so a step
waiting on an agent holds only its own greenlet; without gevent it is an ordinary thread.
Both the A2A client and AutoGen's model clients are made per call inside the coroutine, so
nothing bound to the loop outlives a call.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from core.ground.errors import AgentError

T = TypeVar("T")


class _Loop:
    """The process's loop thread; remade in a child after a fork."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            self.loop.call_soon(ready.set)
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, name="agents-aio", daemon=True)
        self.thread.start()
        ready.wait(10)


_current: _Loop | None = None
_lock = threading.Lock()


def _loop() -> asyncio.AbstractEventLoop:
    global _current
    if _current is None or _current.pid != os.getpid():
        with _lock:
            if _current is None or _current.pid != os.getpid():
                _current = _Loop()
    return _current.loop


def run_sync(coro: Coroutine[Any, Any, T], timeout_s: float, what: str) -> T:
    """Run `coro` on the process's loop; its result, or AgentError (transient) on timeout.

    On timeout the coroutine is cancelled, so an abandoned call does not keep running."""
    future = asyncio.run_coroutine_threadsafe(coro, _loop())
    try:
        return future.result(timeout=timeout_s)
    except concurrent.futures.TimeoutError:
        future.cancel()
        raise AgentError(f"{what}: no answer within the turn deadline of {timeout_s:g}s",
                         transient=True) from None
