"""Authentication at the edge: every request gets a principal on `flask.g` before its view runs.

Credentials: `Authorization: Bearer <API key or JWT>` or `X-API-Key: <API key>`; a WebSocket
upgrade may instead carry `?access_token=<token>` or the subprotocols `bearer, <token>` (browsers
cannot set headers on a WebSocket). With AUTH_ENABLED off every caller is the demo principal, and
only loopback clients are served (unless AUTH_OFF_ALLOW_NETWORK says otherwise).

Routes are private unless their endpoint is listed as public here (docs, health, the page shell):
an endpoint someone adds later is protected without anyone remembering to.
"""

from __future__ import annotations

import ipaddress
import logging

from flask import Flask, g, request

from api.extension import ext
from core.ground.errors import (
    DiscussionNotFound,
    Forbidden,
    NotFound,
    StartupRefused,
    Unauthenticated,
)
from core.ground.ids import valid_id
from core.ground.settings import Settings
from core.services import access
from core.services.auth import DEMO, Principal, authenticate

log = logging.getLogger(__name__)

# Endpoint names (or their blueprint prefixes, ending in ".") that need no credentials.
# `metrics` is Prometheus' scrape target: firewall it or keep it behind the proxy (security.md).
PUBLIC_ENDPOINTS = {"static", "_docs", "health.health", "metrics"}
PUBLIC_PREFIXES = ("swagger.", "redoc.", "openapi.", "ui.", "health.")
WS_SUBPROTOCOL = "bearer"
# Path ids and the id style each must have before anything may look it up in Redis.
PATH_IDS = {"discussion_id": "disc", "batch_id": "batch", "schedule_id": "sched"}


def is_loopback_host(host: str) -> bool:
    """Whether a bind address or client address is loopback-only."""
    host = host.strip().strip("[]")
    if host in ("localhost", "") or host.startswith("unix:"):
        return host != ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_startup(settings: Settings, hosts: list[str] | None = None) -> None:
    """Refuse to start with authentication off on a network address, unless explicitly forced."""
    if settings.auth_enabled or settings.auth_off_allow_network:
        return
    for host in hosts if hosts is not None else [settings.service_host]:
        if not is_loopback_host(host):
            raise StartupRefused(
                f"AUTH_ENABLED is off but the service would listen on {host!r}: bind to "
                "127.0.0.1 (SERVICE_HOST), turn authentication on, or set "
                "AUTH_OFF_ALLOW_NETWORK=true to accept the risk"
            )


def is_public(endpoint: str | None) -> bool:
    if endpoint is None:  # no such route: let it 404
        return True
    return endpoint in PUBLIC_ENDPOINTS or endpoint.startswith(PUBLIC_PREFIXES)


def is_websocket() -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket"


def credential() -> str | None:
    """The token the request carries, from the first place that has one."""
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("Authorization must be 'Bearer <token>'")
        return token.strip()
    if request.headers.get("X-API-Key"):
        return request.headers["X-API-Key"].strip()
    if is_websocket():
        if request.args.get("access_token"):
            return request.args["access_token"]
        offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")]
        if len(offered) >= 2 and offered[0] == WS_SUBPROTOCOL:
            return offered[1]
    return None


def identify() -> None:
    """Before every request: who is calling (the outcome is kept on g; refusal comes later, so
    that the per-address rate limit counts failed attempts too)."""
    g.principal, g.auth_error = None, None
    settings = ext().settings
    if not settings.auth_enabled:
        addr = request.remote_addr or ""
        if not settings.auth_off_allow_network and not is_loopback_host(addr):
            g.auth_error = Forbidden("authentication is off: this service answers loopback only")
            return
        g.principal = DEMO
        return
    try:
        token = credential()
        if token:
            g.principal = authenticate(ext().redis, settings, token)
    except Unauthenticated as exc:
        g.auth_error = exc


def origin_allowed(origin: str, settings: Settings) -> bool:
    """A browser's Origin is fine when it is this service itself or listed in CORS_ORIGINS."""
    allowed = settings.cors_origin_list
    if "*" in allowed:
        return True
    own = f"{request.scheme}://{request.host}"
    return origin.rstrip("/") in {*(o.rstrip("/") for o in allowed), own}


def require() -> None:
    """Before every view (after the rate limiter): refuse a cross-site WebSocket upgrade and the
    unauthenticated, then refuse a discussion route to a caller with no access to it (404)."""
    if request.method == "OPTIONS" or is_public(request.endpoint):
        return
    origin = request.headers.get("Origin")
    if is_websocket() and origin is not None and not origin_allowed(origin, ext().settings):
        # Cross-site WebSocket hijacking: a page elsewhere riding on the user's credentials.
        raise Forbidden("WebSocket upgrade from an origin not in CORS_ORIGINS", origin=origin)
    if g.get("auth_error") is not None:
        raise g.auth_error
    principal: Principal | None = g.get("principal")
    if principal is None:
        raise Unauthenticated("missing credentials: send 'Authorization: Bearer <token>' or "
                              "'X-API-Key: <key>'")
    check_path_ids()
    did = (request.view_args or {}).get("discussion_id")
    # A safety net under the service functions' own checks: nothing about a discussion reaches a
    # view for a caller who cannot read it. The stream answers unknown and forbidden alike with
    # close code 4404 after the upgrade, so it does its own check.
    if did and not principal.unrestricted and not is_websocket():
        access.authorize(ext().store, did, principal)


def check_path_ids() -> None:
    """404 for a path id that does not have its id style, before any Redis call: a client
    string that is not an id never reaches a key (`disc_x:session`, `disc_*`)."""
    for name, value in (request.view_args or {}).items():
        prefix = PATH_IDS.get(name)
        if prefix is None or valid_id(prefix, value):
            continue
        if name == "discussion_id":
            raise DiscussionNotFound("discussion not found")
        raise NotFound(f"{name.removesuffix('_id')} not found")


def current() -> Principal:
    """The principal `require` admitted for this request."""
    principal = g.get("principal")
    if principal is None:  # a view reached without `require`: never treat it as trusted
        raise Unauthenticated("missing credentials")
    return principal


def owner() -> str | None:
    """Who owns what this request creates: the caller, or nobody in the demo mode."""
    principal = current()
    return None if principal.unrestricted else principal.user_id


def register_identify(app: Flask) -> None:
    app.before_request(identify)


def register_require(app: Flask) -> None:
    app.before_request(require)
