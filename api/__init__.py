"""The Flask API: `create_app` wires settings, Redis, the dispatcher and the blueprints."""

from __future__ import annotations

from typing import Any

import redis
from flask import redirect
from flask_cors import CORS
from flask_openapi3 import Info, OpenAPI
from flask_sock import Sock

from api import (
    admin,
    auth,
    batches,
    control,
    discussions,
    errors,
    health,
    insights,
    limits,
    observability,
    schedules,
    stream,
    ui,
)
from api.extension import Orchestrator
from api.openapi_doc import DocumentedApp
from core.ground import logs, redact
from core.ground.settings import Settings
from core.ground.version import __version__


def create_app(
    test_config: dict[str, Any] | None = None,
    *,
    settings: Settings | None = None,
    redis_client: redis.Redis | None = None,
    dispatch: Any = None,
) -> OpenAPI:
    """Build the API app; tests pass their own settings, Redis client or dispatcher."""
    settings = settings or Settings()
    auth.check_startup(settings)
    logs.configure(settings)
    redact.install("werkzeug", "gunicorn.error", "gunicorn.access")
    app = DocumentedApp(
        __name__,
        info=Info(title="Discussion Orchestrator", version=__version__),
        doc_prefix="",
        doc_url="/openapi.json",
        validation_error_status=422,
        validation_error_callback=errors.validation_error,
    )
    app.config.update(
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        JSON_SORT_KEYS=False,
        SOCK_SERVER_OPTIONS={
            "ping_interval": settings.ws_ping_interval_s,
            "max_message_size": settings.ws_max_frame_bytes,
            # Browsers send a token as the subprotocols `bearer, <token>`; we answer `bearer`.
            "subprotocols": [auth.WS_SUBPROTOCOL],
        },
    )
    if test_config:
        app.config.update(test_config)
    if settings.trusted_proxy_hops:
        from werkzeug.middleware.proxy_fix import ProxyFix

        n = settings.trusted_proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)  # type: ignore

    Orchestrator(app, settings, redis_client=redis_client, dispatch=dispatch)
    CORS(app, origins=settings.cors_origin_list, expose_headers=["Location", "Retry-After"])
    observability.install(app, settings)  # first, so every request gets its id before other hooks
    # Then: identify the caller, count the request, refuse or admit it.
    auth.register_identify(app)
    limiter = limits.create_limiter(app, settings)
    auth.register_require(app)
    errors.register(app)

    admin.register(app)

    app.register_api(health.bp)
    app.register_api(discussions.bp)
    app.register_api(control.bp)
    app.register_api(insights.bp)
    app.register_api(schedules.bp)
    app.register_api(batches.bp)
    app.register_blueprint(ui.bp)
    ui.register_docs_policy(app)
    sock = Sock(app)
    stream.register(sock)
    limits.limit_endpoint(app, limiter, "discussions.create_discussion",
                          settings.rate_limit_create)

    @app.get("/docs", doc_ui=False)
    def _docs() -> Any:
        """Swagger UI, served from the package's own assets."""
        return redirect("/swagger")

    return app
