"""Entry point for the Celery command line: `celery -A workers.main worker`.

Settings that break the time budget (core.ground.settings.check_time_budget) stop the process
here with one clear line instead of a traceback, before any worker starts.
"""

from __future__ import annotations

import sys

from pydantic import ValidationError

from core.ground.settings import Settings
from workers.celery_app import create_celery


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(str(e.get("msg", "")).removeprefix("Value error, ")
                             for e in exc.errors())
        sys.exit(f"orchestrator worker: refusing to start: {problems}")


app = create_celery(_settings())
