"""Building Redis clients from settings; no client exists until someone asks for one."""

from __future__ import annotations

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from core.settings import Settings


def make_redis(settings: Settings, *, blocking_timeout_s: float | None = None,
               client_name: str | None = None) -> redis.Redis:
    """A pooled client with short timeouts, so a dead Redis fails fast instead of hanging.

    `blocking_timeout_s` widens the read timeout for clients that issue blocking reads
    (XREAD BLOCK) so that an idle block is not mistaken for a dead server.
    """
    socket_timeout = settings.redis_socket_timeout_s
    if blocking_timeout_s is not None:
        socket_timeout = max(socket_timeout, blocking_timeout_s + 2.0)
    # Blocking: a burst beyond the pool's size (200 viewers connecting at once, hundreds of
    # gevent steps on one client) waits briefly for a free connection instead of failing.
    pool = redis.BlockingConnectionPool.from_url(
        settings.redis_url,
        db=settings.redis_db,
        max_connections=settings.redis_max_connections,
        timeout=settings.redis_socket_timeout_s,
        socket_timeout=socket_timeout,
        socket_connect_timeout=settings.redis_connect_timeout_s,
        health_check_interval=30,
        decode_responses=True,
        # One quick retry covers a connection the server closed while idle; more would turn a
        # Redis outage into a hang.
        retry=Retry(NoBackoff(), 1),
        # Named connections (CLIENT LIST) let operators and tests see which role holds them.
        client_name=client_name,
    )
    return redis.Redis(connection_pool=pool)
