"""Rate limits shared by every API process: flask-limiter counting in Redis.

Two application-wide limits (across all routes): one per client address, one per authenticated
user; and one more on creating discussions, per user (or address). A refused request gets 429
with `Retry-After`. Health and docs are exempt so probes never trip a limit.
"""

from __future__ import annotations

import time

from flask import Flask, Response, g, request
from flask_limiter import ApplicationLimit, Limiter, RateLimitExceeded

from api import auth
from api.errors import error_response
from core.ground.settings import Settings
from core.storage import keys


def address_key() -> str:
    return "addr:" + (request.remote_addr or "unknown")


def user_key() -> str:
    principal = g.get("principal")
    if principal is not None and not principal.unrestricted:
        return "user:" + principal.user_id
    return address_key()


def _no_user() -> bool:
    principal = g.get("principal")
    return principal is None or principal.unrestricted or request.method == "OPTIONS" or \
        auth.is_public(request.endpoint)


def _exempt() -> bool:
    return request.method == "OPTIONS" or auth.is_public(request.endpoint)


def storage_uri(settings: Settings) -> str:
    """The state Redis, on the configured database (through the Sentinels when configured;
    the database then comes as a storage option, see create_limiter)."""
    if settings.redis_sentinels:
        hosts = ",".join(f"{h}:{p}" for h, p in settings.sentinel_addresses)
        return f"redis+sentinel://{hosts}/{settings.redis_sentinel_master}"
    base = settings.redis_url.rstrip("/")
    tail = base.split("://", 1)[-1]
    return base if "/" in tail else f"{base}/{settings.redis_db}"


def create_limiter(app: Flask, settings: Settings) -> Limiter:
    """Install the limiter on the app (its before_request runs where this is called)."""
    limiter = Limiter(
        address_key,
        app=app,
        storage_uri=storage_uri(settings),
        storage_options={"socket_timeout": settings.redis_socket_timeout_s,
                         "socket_connect_timeout": settings.redis_connect_timeout_s,
                         **({"db": settings.redis_db} if settings.redis_sentinels else {})},
        strategy=settings.rate_limit_strategy,
        key_prefix=keys.RATE_LIMIT_PREFIX,
        headers_enabled=False,  # one Redis round trip per limit, not two
        enabled=settings.rate_limit_enabled,
        application_limits=[
            ApplicationLimit(settings.rate_limit_per_address, key_function=address_key,
                             exempt_when=_exempt, scope="address"),
            ApplicationLimit(settings.rate_limit_per_user, key_function=user_key,
                             exempt_when=_no_user, scope="user"),
        ],
    )
    app.extensions["orchestrator_limiter"] = limiter

    @app.errorhandler(RateLimitExceeded)
    def _limited(exc: RateLimitExceeded) -> Response:
        resp = error_response(429, "rate_limited", f"rate limit exceeded ({exc.description}); "
                              "retry after the number of seconds in Retry-After")
        resp.headers["Retry-After"] = str(_retry_after(limiter))
        return resp

    return limiter


def limit_endpoint(app: Flask, limiter: Limiter, endpoint: str, limit: str) -> None:
    """Add a per-user limit to one registered endpoint (e.g. creating discussions)."""
    view = app.view_functions.get(endpoint)
    if view is not None:  # the wrapper checks the limit when the view is called
        app.view_functions[endpoint] = limiter.limit(limit, key_func=user_key,
                                                     override_defaults=False)(view)


def _retry_after(limiter: Limiter) -> int:
    """Seconds until the breached window resets (at least 1)."""
    reset = 0.0
    for lim in limiter.context.view_rate_limits or []:
        if lim.breached:
            reset = max(reset, lim.reset_at)
    if not reset and limiter.current_limit is not None:
        reset = limiter.current_limit.reset_at
    return max(1, int(reset - time.time()) + 1) if reset else 1
