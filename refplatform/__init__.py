"""A reference Execution Platform: the contract of docs/execution-platform.md with simulated
replies, injectable faults and a call counter. Also serves an OpenAI-compatible
`/v1/chat/completions` fake. Run it with `python -m refplatform` (see `--help`)."""

from __future__ import annotations

import time
from collections.abc import Callable

from flask import Flask

from refplatform.app import register_routes
from refplatform.faults import Faults
from refplatform.state import PlatformState


def create_app(faults: Faults | None = None, *, seed: int | None = None,
               sleep: Callable[[float], None] = time.sleep) -> Flask:
    """The reference platform as a Flask app; its state is `app.extensions["refplatform"]`."""
    app = Flask("refplatform")
    state = PlatformState(faults, seed)
    app.extensions["refplatform"] = state
    register_routes(app, state, sleep)
    return app
