"""The service's version, as the health endpoints and the OpenAPI document report it."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("discussion-orchestrator")
except PackageNotFoundError:  # running from a checkout that was not installed
    __version__ = "0.1.0"
