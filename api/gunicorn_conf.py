"""gunicorn hooks (`gunicorn -c python:api.gunicorn_conf`, as the Procfile runs it).

Before any socket opens, the master refuses to start with authentication off on a network
address (the app alone cannot see gunicorn's `-b`; docs/security.md). For Prometheus multiprocess
mode it clears stale sample files before forking; each exiting worker's live gauges are dropped
so `orchestrator_websocket_connections` counts only running processes.
"""

from __future__ import annotations

from typing import Any

from api.auth import check_startup
from core.ground import metrics
from core.ground.settings import Settings

# When an access log is turned on (--access-logfile), log the path without its query string:
# a WebSocket client may carry its token there (`?access_token=`).
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(L)ss'


def bind_hosts(binds: list[str]) -> list[str]:
    """The host part of each TCP bind (`unix:` and `fd://` binds are local)."""
    hosts = []
    for bind in binds:
        if bind.startswith(("unix:", "fd://")):
            continue
        host, _, _port = bind.rpartition(":")
        hosts.append(host or "0.0.0.0")
    return hosts


def on_starting(server: Any) -> None:
    # Raises StartupRefused (a RuntimeError): gunicorn prints it and exits 1.
    check_startup(Settings(), bind_hosts(list(server.cfg.bind)))
    metrics.reset_multiproc_dir()


def child_exit(server: Any, worker: Any) -> None:
    metrics.mark_dead(worker.pid)
