"""Per-user rate limits shared by every door: REST, WebSocket frames, batches and schedules.

These are the very counters flask-limiter keeps for the API (the `limits` library, in the state
Redis under `keys.RATE_LIMIT_PREFIX`): the API names its per-user limit's scope USER_SCOPE and its
create limit's scope CREATE_SCOPE, and everything else hits the same keys through `Rates`, so a
WebSocket post or a batch item spends the same budget as a REST call.
"""

from __future__ import annotations

import threading
import time

from limits import RateLimitItem, parse
from limits.storage import storage_from_string
from limits.strategies import STRATEGIES, RateLimiter

from core.ground.errors import RateLimited
from core.ground.settings import Settings
from core.storage import keys

USER_SCOPE = "user"  # RATE_LIMIT_PER_USER: every request a user makes, whatever the door
CREATE_SCOPE = "create"  # RATE_LIMIT_CREATE: every discussion a user starts, whatever the door


def user_key(user_id: str) -> str:
    """The limiter's key for one user (the API's `limits.user_key` gives the same)."""
    return "user:" + user_id


def storage_uri(settings: Settings) -> str:
    """The state Redis, on the configured database (through the Sentinels when configured;
    the database then comes as a storage option, see storage_options)."""
    if settings.redis_sentinels:
        hosts = ",".join(f"{h}:{p}" for h, p in settings.sentinel_addresses)
        return f"redis+sentinel://{hosts}/{settings.redis_sentinel_master}"
    base = settings.redis_url.rstrip("/")
    tail = base.split("://", 1)[-1]
    return base if "/" in tail else f"{base}/{settings.redis_db}"


def storage_options(settings: Settings) -> dict[str, float]:
    return {"socket_timeout": settings.redis_socket_timeout_s,
            "socket_connect_timeout": settings.redis_connect_timeout_s,
            **({"db": settings.redis_db} if settings.redis_sentinels else {})}


class Rates:
    """Hits and tests one user's budgets outside a Flask request."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.enabled = settings.rate_limit_enabled
        self.limits: dict[str, RateLimitItem] = {
            USER_SCOPE: parse(settings.rate_limit_per_user),
            CREATE_SCOPE: parse(settings.rate_limit_create),
        }
        self._limiter: RateLimiter | None = None
        self._lock = threading.Lock()

    @property
    def limiter(self) -> RateLimiter:
        if self._limiter is None:
            with self._lock:
                if self._limiter is None:
                    storage = storage_from_string(storage_uri(self.settings),
                                                  **storage_options(self.settings))
                    self._limiter = STRATEGIES[self.settings.rate_limit_strategy](storage)
        return self._limiter

    def _ids(self, scope: str, user_id: str) -> tuple[str, str, str]:
        return (keys.RATE_LIMIT_PREFIX, user_key(user_id), scope)

    def hit(self, scope: str, user_id: str) -> None:
        """Spend one from the user's budget, or raise RateLimited (429) when none is left."""
        if not self.enabled:
            return
        item = self.limits[scope]
        if not self.limiter.hit(item, *self._ids(scope, user_id)):
            raise self._refusal(scope, user_id)

    def check(self, scope: str, user_id: str) -> None:
        """Raise RateLimited when the budget is used up, without spending any of it."""
        if self.enabled and not self.limiter.test(self.limits[scope],
                                                  *self._ids(scope, user_id)):
            raise self._refusal(scope, user_id)

    def _refusal(self, scope: str, user_id: str) -> RateLimited:
        item = self.limits[scope]
        reset = self.limiter.get_window_stats(item, *self._ids(scope, user_id)).reset_time
        retry = max(1, int(reset - time.time()) + 1)
        return RateLimited(f"rate limit exceeded ({item}); retry after the number of seconds "
                           "in Retry-After", limit=str(item), scope=scope, retry_after=retry)


_shared: dict[tuple, Rates] = {}
_shared_lock = threading.Lock()


def rates_for(settings: Settings) -> Rates:
    """One Rates (one connection pool) per process and configuration."""
    key = (storage_uri(settings), settings.rate_limit_enabled, settings.rate_limit_strategy,
           settings.rate_limit_per_user, settings.rate_limit_create)
    with _shared_lock:
        if key not in _shared:
            _shared[key] = Rates(settings)
        return _shared[key]
