"""Every error leaves as JSON `{"error", "message", "details"}` with its status; never a trace."""

from __future__ import annotations

import logging
from typing import Any

import redis
from flask import Flask, Response, jsonify, request
from pydantic import ValidationError
from werkzeug.exceptions import BadRequest, HTTPException

from core.ground.errors import OrchestratorError
from core.ground.jsonlimits import BODY_MAX_DEPTH, depth

log = logging.getLogger(__name__)


def error_response(status: int, code: str, message: str, /, **details: Any) -> Response:
    """A JSON error body with the given status (positional-only, so a detail may be named
    `status`, as a Conflict's current discussion status is)."""
    resp = jsonify({"error": code, "message": message, "details": details})
    resp.status_code = status
    return resp


def validation_message(exc: ValidationError) -> str:
    """The first problem of a pydantic error as `field.path: message`."""
    errors = exc.errors(include_url=False, include_input=False, include_context=False)
    if not errors:
        return "invalid input"
    where = ".".join(str(p) for p in errors[0]["loc"]) or "body"
    return f"{where}: {errors[0]['msg']}"


def validation_error(exc: ValidationError) -> Response:
    """pydantic errors as 422, with the field paths but not the offending input echoed back."""
    problems = [
        {"loc": [str(p) for p in e["loc"]], "msg": e["msg"], "type": e["type"]}
        for e in exc.errors(include_url=False, include_input=False, include_context=False)
    ]
    first = problems[0] if problems else {"loc": [], "msg": "invalid input"}
    where = ".".join(first["loc"]) or "body"
    return error_response(422, "validation_error", f"{where}: {first['msg']}", errors=problems)


def check_json_body() -> Response | None:
    """Before a view: a body must be JSON (415 otherwise), must parse (400 otherwise) and may
    nest at most BODY_MAX_DEPTH levels (422: deeper would be refused by the free-form caps
    anyway, and a body nested ~900 deep makes the JSON parser itself recurse too far)."""
    if request.method not in ("POST", "PUT", "PATCH") or not request.content_length:
        return None
    if not request.is_json:
        return error_response(415, "unsupported_media_type",
                              "request bodies must be JSON (Content-Type: application/json)")
    try:
        body = request.get_json()
    except RecursionError:
        return _too_deep()
    except BadRequest:
        return error_response(400, "bad_request", "request body is not valid JSON")
    if depth(body, BODY_MAX_DEPTH) > BODY_MAX_DEPTH:
        return _too_deep()
    return None


def _too_deep() -> Response:
    return error_response(422, "validation_error",
                          f"body: nested too deep: at most {BODY_MAX_DEPTH} levels",
                          limit=BODY_MAX_DEPTH)


def register(app: Flask) -> None:
    """Install the JSON error handlers on the app."""
    app.before_request(check_json_body)

    @app.errorhandler(OrchestratorError)
    def _ours(exc: OrchestratorError) -> Response:
        details = {k: v for k, v in exc.details.items() if isinstance(v, str | int | float | bool)}
        resp = error_response(exc.status, exc.code, exc.message, **details)
        if exc.status == 401:
            resp.headers["WWW-Authenticate"] = 'Bearer realm="discussion-orchestrator"'
        if exc.status == 429:
            resp.headers["Retry-After"] = str(details.get("retry_after", 60))
        return resp

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        if exc.response is not None and exc.response.is_json:  # already ours (validation)
            return exc.response
        code = (exc.name or "error").lower().replace(" ", "_")
        resp = error_response(exc.code or 500, code, exc.description or exc.name or "error")
        if exc.code == 405 and hasattr(exc, "valid_methods") and exc.valid_methods:
            resp.headers["Allow"] = ", ".join(exc.valid_methods)
        return resp

    @app.errorhandler(redis.ConnectionError)
    @app.errorhandler(redis.TimeoutError)
    def _redis_down(exc: Exception) -> Response:
        log.warning("redis unavailable: %s", exc)
        resp = error_response(503, "service_unavailable", "the state store is unavailable")
        resp.headers["Retry-After"] = "5"
        return resp

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled error")
        return error_response(500, "internal_error", "internal error")
