"""Health: is this instance able to serve (Redis reachable)?"""

from __future__ import annotations

import time
from typing import Any

import redis
from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel

from api import __version__
from api.extension import ext

bp = APIBlueprint("health", __name__, abp_tags=[Tag(name="health")])


class Health(BaseModel):
    status: str
    service: str
    version: str
    dependencies: dict[str, Any]


@bp.get("/health", responses={200: Health, 503: Health})
def health() -> Any:
    """200 when Redis answers, 503 naming the failing dependency otherwise."""
    started = time.perf_counter()
    try:
        ext().redis.ping()
        latency_ms = round((time.perf_counter() - started) * 1000, 2)
        redis_status = {"status": "ok", "latency_ms": latency_ms}
        ok = True
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        redis_status = {"status": "unavailable", "error": type(exc).__name__}
        ok = False
    body = Health(
        status="healthy" if ok else "unhealthy",
        service="discussion-orchestrator",
        version=__version__,
        dependencies={"redis": redis_status},
    )
    return body.model_dump(), 200 if ok else 503
