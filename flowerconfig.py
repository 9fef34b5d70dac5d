"""Flower's settings (the Procfile runs `celery flower --conf=flowerconfig.py`).

Flower listens on loopback unless FLOWER_HOST (the Procfile's `--address`) names another
address, and it refuses to serve a network address without authentication: set
FLOWER_BASIC_AUTH=user:password (or Flower's own OAuth, FLOWER_AUTH). Flower has applied its
FLOWER_* variables and command line to `options` before it runs this file.
"""

from __future__ import annotations

import ipaddress
import sys

from tornado.options import options


def _loopback(host: str) -> bool:
    host = host.strip().strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


address = options.address or "127.0.0.1"
# An empty FLOWER_BASIC_AUTH (a copied .env.example) reads as [""]: that is no authentication.
basic_auth = [pair for pair in options.basic_auth or [] if pair.strip()]
if not _loopback(address) and not (basic_auth or options.auth):
    sys.exit(f"Flower would listen on {address!r} without authentication: set "
             "FLOWER_BASIC_AUTH=user:password (or FLOWER_AUTH), or bind 127.0.0.1")
