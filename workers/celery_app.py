"""The Celery app factory: the only way a Celery app is made."""

from __future__ import annotations

from celery import Celery

import celeryconfig
from core.ground.settings import Settings
from core.storage.redis_client import cache_lib_version


def create_celery(settings: Settings | None = None) -> Celery:
    """A Celery app configured from settings, with our tasks registered."""
    settings = settings or Settings()
    cache_lib_version()  # the broker's connections are redis-py connections too
    app = Celery("orchestrator", set_as_current=False)
    app.conf.update(celeryconfig.build(settings))
    app.conf.orchestrator_settings = settings
    # Importing the tasks module registers its shared tasks with every app, this one included.
    import workers.ops_tasks  # noqa: F401
    import workers.tasks  # noqa: F401
    from workers import ops

    ops.install(app)

    return app
