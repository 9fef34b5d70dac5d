"""Streamed replies: token deltas batched into `message_delta` events for viewers."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


class DeltaPublisher:
    """Collects a streaming backend's text pieces and publishes them at most once per interval.

    Each event carries the turn and a running `index`, so a viewer can stitch the pieces in
    order and drop them when the turn's `message` (the one committed copy) arrives.
    """

    def __init__(self, publish: Callable[[dict[str, Any]], Any], base: dict[str, Any], *,
                 interval_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._publish = publish
        self._base = base
        self._interval = interval_s
        self._clock = clock
        self._buf: list[str] = []
        self._last = float("-inf")  # the first piece goes out at once
        self.index = 0

    def __call__(self, text: str) -> None:
        self._buf.append(text)
        if self._clock() - self._last >= self._interval:
            self.flush()

    def flush(self) -> None:
        """Publish what is buffered, if anything."""
        if not self._buf:
            return
        self._publish({**self._base, "index": self.index, "delta": "".join(self._buf)})
        self.index += 1
        self._buf.clear()
        self._last = self._clock()
