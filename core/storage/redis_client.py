"""Building Redis clients from settings; no client exists until someone asks for one."""

from __future__ import annotations

import functools
import select
import sys
from typing import Any
from urllib.parse import urlparse

import redis
import redis.utils
from redis.backoff import NoBackoff
from redis.maint_notifications import MaintNotificationsConfig
from redis.retry import Retry
from redis.sentinel import Sentinel, SentinelConnectionPool, SentinelManagedConnection

from core.ground.settings import Settings


def cache_lib_version() -> None:
    """Make redis-py look its own version up once per process instead of once per connection.

    Every new redis-py connection (ours, and kombu's broker connections: a gevent worker opens
    one per greenlet that acknowledges a task) asks importlib.metadata for redis-py's version
    to report it to the server; that scans the installed packages, about 250 us of CPU a
    connection, a good part of starting 1,000 discussions at once. The version cannot change
    in a running process. Idempotent; redis-py imports the function by name at each call.
    """
    if not isinstance(redis.utils.get_lib_version, functools._lru_cache_wrapper):
        redis.utils.get_lib_version = functools.cache(redis.utils.get_lib_version)


def _native_poll() -> Any:
    """The operating system's `select.poll` when gevent has replaced it, else None."""
    monkey = sys.modules.get("gevent.monkey")
    if monkey is None or not monkey.is_module_patched("select"):
        return None
    return monkey.get_original("select", "poll")


class _CheapCanRead:
    """redis-py's connection check, cheaper under gevent.

    Each time the pool hands out a connection it asks `can_read()` (timeout 0) to make sure
    no stray reply or closed socket is left on it. Under gevent that zero-timeout poll goes
    through gevent's hub (about 7% of an API post's CPU and 5% of a turn's). A zero-timeout
    poll never blocks, so the operating system's own poll answers the same question without
    the trip; when the socket is readable (data or EOF) redis-py's own check decides, so
    a dirty or closed connection is still refused exactly as before.
    """

    _sock: Any
    _parser: Any

    def can_read(self, timeout: float = 0) -> bool:
        poll = _native_poll() if timeout == 0 and self._sock is not None else None
        reader = getattr(self._parser, "_reader", None)  # hiredis's buffer of unread replies
        if poll is None or reader is None or not hasattr(reader, "has_data"):
            return super().can_read(timeout)  # type: ignore[misc]
        if reader.has_data():
            return True
        poller = poll()
        poller.register(self._sock, select.POLLIN)
        if poller.poll(0):
            return super().can_read(0)  # type: ignore[misc]
        return False


class Connection(_CheapCanRead, redis.Connection):
    """A plain TCP connection with the cheaper check."""


class SentinelConnection(_CheapCanRead, SentinelManagedConnection):
    """A connection to whichever server the Sentinels name primary, with the cheaper check."""


class SentinelBlockingPool(SentinelConnectionPool, redis.BlockingConnectionPool):
    """redis-py's Sentinel pool, waiting for a free connection as our plain pool does."""


def _pool_options(settings: Settings, socket_timeout: float, client_name: str | None
                  ) -> dict[str, Any]:
    return {
        "max_connections": settings.redis_max_connections,
        "timeout": settings.redis_socket_timeout_s,
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": settings.redis_connect_timeout_s,
        "health_check_interval": 30,
        "decode_responses": True,
        # One quick retry covers a connection the server closed while idle; more would turn a
        # Redis outage into a hang.
        "retry": Retry(NoBackoff(), 1),
        # Maintenance notifications need RESP3 (we speak RESP2), and with them on ("auto", the
        # default) redis-py 8 skips its check that a pooled connection holds no stray reply
        # (left by a command cut short): off, so that check is made and such a connection is
        # reconnected instead of handing the stray reply to the next command.
        "maint_notifications_config": MaintNotificationsConfig(enabled=False),
        # Named connections (CLIENT LIST) let operators and tests see which role holds them.
        "client_name": client_name,
    }


def _sentinel_pool(settings: Settings, options: dict[str, Any]) -> SentinelBlockingPool:
    """A pool on the primary the Sentinels name; it asks them again after a failover."""
    url = urlparse(settings.redis_url)
    sentinel = Sentinel(
        settings.sentinel_addresses,
        # Questions to the Sentinels themselves fail fast: the next one is asked instead.
        sentinel_kwargs={"socket_timeout": settings.redis_connect_timeout_s,
                         "socket_connect_timeout": settings.redis_connect_timeout_s},
    )
    return SentinelBlockingPool(
        settings.redis_sentinel_master, sentinel,
        connection_class=SentinelConnection, db=settings.redis_db,
        username=url.username or None, password=url.password or None,
        # Every new connection checks the server is still the primary before its first use.
        check_connection=True,
        **options,
    )


def make_redis(settings: Settings, *, blocking_timeout_s: float | None = None,
               client_name: str | None = None) -> redis.Redis:
    """A pooled client with short timeouts, so a dead Redis fails fast instead of hanging.

    With REDIS_SENTINELS set, the client reaches the primary the Sentinels name and follows
    a failover: connections to a demoted primary are dropped, new ones ask the Sentinels.

    `blocking_timeout_s` widens the read timeout for clients that issue blocking reads
    (XREAD BLOCK) so that an idle block is not mistaken for a dead server.
    """
    cache_lib_version()
    socket_timeout = settings.redis_socket_timeout_s
    if blocking_timeout_s is not None:
        socket_timeout = max(socket_timeout, blocking_timeout_s + 2.0)
    options = _pool_options(settings, socket_timeout, client_name)
    if settings.redis_sentinels:
        return redis.Redis(connection_pool=_sentinel_pool(settings, options))
    # Blocking: a burst beyond the pool's size (200 viewers connecting at once, hundreds of
    # gevent steps on one client) waits briefly for a free connection instead of failing.
    pool = redis.BlockingConnectionPool.from_url(
        settings.redis_url,
        # Plain TCP only: rediss:// and unix:// keep the classes redis-py picks for them.
        **({"connection_class": Connection} if settings.redis_url.startswith("redis://")
           else {}),
        db=settings.redis_db,
        **options,
    )
    return redis.Redis(connection_pool=pool)
