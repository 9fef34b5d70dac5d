"""Health: liveness (`/health/live`), readiness (`/health/ready`) and the seed's `/health`.

`/health` keeps the seed's meaning and values (`healthy`, or `unhealthy` with 503 when Redis is
unreachable); every other dependency is reported in `dependencies`, failing ones in `failing`.
`/health/ready` is strict: 503 naming every failing part (`failing`), so a load balancer
stops routing to the instance.
"""

from __future__ import annotations

from typing import Any

from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel, Field

from api.extension import ext
from api.observability import ops
from core.ground.version import __version__
from core.operations import health as checks

bp = APIBlueprint("health", __name__, abp_tags=[Tag(name="health")])
SERVICE = "discussion-orchestrator"


class Health(BaseModel):
    status: str
    service: str
    version: str
    dependencies: dict[str, Any]
    failing: list[str] = Field(default_factory=list)


class Live(BaseModel):
    status: str
    service: str
    version: str


def _report() -> checks.Report:
    orch = ext()
    return checks.check(orch.settings, orch.redis, ops().broker)


@bp.get("/health", responses={200: Health, 503: Health})
def health() -> Any:
    """200 while Redis answers (other failing parts listed in `failing`); else 503."""
    report = _report()
    redis_ok = "redis" not in report.failing
    status = "healthy" if redis_ok else "unhealthy"
    body = Health(status=status, service=SERVICE, version=__version__,
                  dependencies=report.dependencies, failing=report.failing)
    return body.model_dump(), 200 if redis_ok else 503


@bp.get("/health/ready", responses={200: Health, 503: Health})
def ready() -> Any:
    """200 when Redis, broker, workers, queue (and Execution Platform) pass; else 503."""
    report = _report()
    ok = not report.failing
    body = Health(status="ready" if ok else "unready", service=SERVICE, version=__version__,
                  dependencies=report.dependencies, failing=report.failing)
    return body.model_dump(), 200 if ok else 503


@bp.get("/health/live", responses={200: Live})
def live() -> Any:
    """200 while the process serves requests; touches no dependency."""
    return Live(status="alive", service=SERVICE, version=__version__).model_dump()
