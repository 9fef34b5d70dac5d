"""The worker's broker consumer, reconnecting every second after an outage.

Celery's consumer reconnects with kombu's default back-off (2 s, then 2 s more each attempt, up
to 30 s between attempts), so after a Redis outage of half a minute the worker may not consume
again for up to 30 s after Redis answers. Steps that should resume then wait in the queue. This
consumer keeps every other behaviour and only retries at least once a second; an attempt on a
server that is down is one refused (or `REDIS_CONNECT_TIMEOUT_S`-bounded) connect.
"""

from __future__ import annotations

import functools
from typing import Any

from celery.worker.consumer import Consumer

RETRY_START_S = 0.2
RETRY_STEP_S = 0.4
RETRY_MAX_S = 1.0


class QuickReconnectConsumer(Consumer):
    """Celery's consumer with a back-off capped at RETRY_MAX_S."""

    def ensure_connected(self, conn: Any) -> Any:
        conn.ensure_connection = functools.partial(
            type(conn).ensure_connection, conn, interval_start=RETRY_START_S,
            interval_step=RETRY_STEP_S, interval_max=RETRY_MAX_S)
        return super().ensure_connected(conn)
