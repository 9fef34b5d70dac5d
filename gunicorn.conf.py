"""gunicorn settings read from the repository root (the Procfile's `web` role).

The one job here: refuse to start when authentication is off and gunicorn would listen on a
network address (the app alone cannot see gunicorn's `-b`). docs/security.md explains the modes.
"""

from __future__ import annotations

from typing import Any


def on_starting(server: Any) -> None:
    """Before any socket is opened: check the binds against AUTH_ENABLED."""
    from api.auth import check_startup
    from core.settings import Settings

    hosts = []
    for bind in server.cfg.bind:
        if bind.startswith("unix:") or bind.startswith("fd://"):
            continue
        host, _, _port = bind.rpartition(":")
        hosts.append(host or "0.0.0.0")
    check_startup(Settings(), hosts)  # raises StartupRefused (a RuntimeError): gunicorn exits 1


# When an access log is turned on (--access-logfile), log the path without its query string:
# a WebSocket client may carry its token there (`?access_token=`).
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(L)ss'
