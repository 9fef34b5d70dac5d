"""(e) the HTTP floor: the least a Flask app can do to take a posted message into Redis.

Run as `gunicorn -k gevent -w 2 "bench.http_floor:create_app()"` (REDIS_URL from the
environment), exactly as the bench runs the API. POST /v1/discussions/{id}/messages parses the
JSON body, checks `participant_id` and `content` are strings, appends the message and an event
and bumps the discussion's seq in one MULTI/EXEC round trip (what bench/redis_loop.py does per
turn), and answers 201 with the message. No authentication, no access check, no limits, no
idempotency, no turn rules: the floor our post path is held to, same server and same load.
"""

from __future__ import annotations

import json
import os
import time

import redis
from flask import Flask, abort, jsonify, request


def create_app() -> Flask:
    app = Flask(__name__)
    r = redis.Redis.from_url(os.environ["REDIS_URL"], decode_responses=True,
                             max_connections=int(os.environ.get("REDIS_MAX_CONNECTIONS", "50")))

    @app.get("/health")
    def health() -> tuple[str, int]:
        return "ok", 200

    @app.post("/v1/discussions/<did>/messages")
    def post(did: str):  # noqa: ANN202 - a Flask response
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or not isinstance(body.get("participant_id"), str) \
                or not isinstance(body.get("content"), str):
            abort(422)
        message = {"participant_id": body["participant_id"], "content": body["content"],
                   "timestamp": time.time()}
        data = json.dumps(message, separators=(",", ":"))
        pipe = r.pipeline(transaction=True)
        pipe.rpush(f"floor:{did}:messages", data)
        pipe.xadd(f"floor:{did}:events", {"type": "message", "data": data})
        pipe.hincrby(f"floor:{did}:state", "seq", 1)
        _, event_id, seq = pipe.execute()
        return jsonify({**message, "seq": seq, "event_id": event_id}), 201

    return app
