"""The reference Execution Platform's routes (contract: docs/execution-platform.md)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

from flask import Flask, Response, jsonify, request

from refplatform import replies
from refplatform.faults import FaultError, Faults, check
from refplatform.state import PlatformState

ERRORS = {"500": 500, "502": 502, "503": 503, "400": 400}


def _error(status: int, message: str) -> Response:
    resp = jsonify({"error": message})
    resp.status_code = status
    return resp


def _body() -> dict[str, Any]:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise FaultError("the body must be a JSON object")
    return data


def _sse(chunks: Iterator[dict[str, Any]], delay_s: float,
         sleep: Callable[[float], None]) -> Response:
    def gen() -> Iterator[str]:
        for chunk in chunks:
            if delay_s:
                sleep(delay_s)
            yield f"data: {json.dumps(chunk)}\n\n"
        yield "data: [DONE]\n\n"

    return Response(gen(), mimetype="text/event-stream")


def register_routes(app: Flask, state: PlatformState, sleep: Callable[[float], None]) -> None:
    """Attach every route to `app`."""

    def inject(faults: Faults, call_no: int) -> tuple[str | None, Response | None]:
        """Apply latency, then decide whether this call faults: (mode, response to send)."""
        delay = faults.latency_ms + (state.roll() * faults.jitter_ms if faults.jitter_ms else 0)
        if delay:
            sleep(delay / 1000)
        fire = call_no <= faults.fail_first or (
            faults.error_rate > 0 and state.roll() < faults.error_rate)
        if not fire:
            return None, None
        mode = faults.error_mode
        if mode in ERRORS:
            return mode, _error(ERRORS[mode], f"injected fault: HTTP {mode}")
        if mode == "429":
            resp = _error(429, "injected fault: rate limited")
            resp.headers["Retry-After"] = f"{faults.retry_after_s:g}"
            return mode, resp
        if mode == "malformed":
            return mode, Response('{"content": "half a reply', status=200,
                                  mimetype="application/json")
        if mode == "hang":
            sleep(faults.hang_s)
        return mode, None

    @app.errorhandler(FaultError)
    def _bad(exc: FaultError) -> Response:
        return _error(400, str(exc))

    @app.get("/health")
    def health() -> Any:
        return {"status": "ok", "agents": len(state.agents)}

    @app.post("/agents")
    def create_agent() -> Any:
        body = _body()
        params = body.get("params") or {}
        if not isinstance(params, dict):
            raise FaultError("params must be an object")
        faults = check(params.get("faults") or {})
        agent, created = state.register(body, faults, request.headers.get("Idempotency-Key"))
        return {"agent_id": agent.agent_id, "status": "ready",
                "name": body.get("name")}, 201 if created else 200

    @app.get("/agents/<agent_id>")
    def get_agent(agent_id: str) -> Any:
        agent = state.agents.get(agent_id)
        if agent is None:
            return _error(404, f"agent {agent_id} not found")
        return {"agent_id": agent.agent_id, "config": agent.config, "faults": agent.faults}

    @app.post("/agents/<agent_id>/turns")
    def run_turn(agent_id: str) -> Any:
        agent = state.agents.get(agent_id)
        if agent is None:
            return _error(404, f"agent {agent_id} not found")
        body = _body()
        messages = body.get("messages")
        if not isinstance(messages, list):
            raise FaultError("messages must be a list")
        call_no = state.count(f"{agent_id}:{body.get('turn')}", body)
        faults = state.faults.merged(agent.faults)
        mode, fault = inject(faults, call_no)
        if fault is not None:
            return fault
        persona = agent.config.get("persona") or agent.config.get("name") or "agent"
        content = "" if mode == "empty" else replies.reply_text(persona, messages,
                                                                 body.get("turn"), agent_id)
        usage = replies.usage(messages, content)
        model = agent.config.get("model") or "reference-sim"
        if body.get("stream"):
            words = content.split(" ")
            chunks = [{"delta": w if i == 0 else " " + w} for i, w in enumerate(words) if w]
            chunks.append({"done": True, "usage": usage, "model": model})
            return _sse(iter(chunks), faults.chunk_delay_ms / 1000, sleep)
        return {"content": content, "usage": usage, "model": model, "finish_reason": "stop"}

    @app.post("/v1/chat/completions")
    def chat_completions() -> Any:
        body = _body()
        messages = body.get("messages")
        model = body.get("model")
        if not isinstance(messages, list) or not isinstance(model, str) or not model:
            return _error(400, "model and messages are required")
        key = request.headers.get("Idempotency-Key") or "anonymous"
        call_no = state.count(key, body)
        faults = state.faults.merged(body.get("faults"))
        mode, fault = inject(faults, call_no)
        if fault is not None:
            return fault
        system = next((m.get("content", "") for m in messages
                       if isinstance(m, dict) and m.get("role") == "system"), "")
        persona = str(system).split("Your persona: ", 1)[-1].split(".", 1)[0] if (
            "Your persona: " in str(system)) else model
        schema = replies.json_schema(body.get("response_format"))
        if model.startswith(replies.PROSE_PREFIX):
            # A model without structured output: refuses a JSON schema, answers in prose.
            if schema is not None:
                return _error(400, "response_format json_schema is not supported")
            content = replies.PROSE
        elif schema is not None:
            content = json.dumps(replies.structured(schema, persona, messages, key))
        else:
            content = replies.reply_text(persona, messages, key)
        content = "" if mode == "empty" else content
        usage = replies.usage(messages, content)
        created = int(time.time())
        if body.get("stream"):
            words = content.split(" ")
            chunks = [{"id": "chatcmpl-ref", "object": "chat.completion.chunk",
                       "created": created, "model": model,
                       "choices": [{"index": 0, "delta": {"content": w if i == 0 else " " + w},
                                    "finish_reason": None}]}
                      for i, w in enumerate(words) if w]
            if (body.get("stream_options") or {}).get("include_usage"):
                chunks.append({"id": "chatcmpl-ref", "object": "chat.completion.chunk",
                               "created": created, "model": model, "choices": [],
                               "usage": usage})
            return _sse(iter(chunks), faults.chunk_delay_ms / 1000, sleep)
        return {
            "id": "chatcmpl-ref", "object": "chat.completion", "created": created,
            "model": model,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": content}}],
            "usage": usage,
        }

    @app.get("/calls")
    def calls() -> Any:
        """Calls received: `?agent_id=&turn=` or `?key=` for one count, else all of them."""
        key = _key_arg()
        if key is not None:
            return {"key": key, "count": state.calls.get(key, 0)}
        return {"total": sum(state.calls.values()), "calls": dict(state.calls)}

    @app.get("/requests")
    def last_request() -> Any:
        """The last request body received for `?agent_id=&turn=` or `?key=`."""
        key = _key_arg()
        if key is None or key not in state.requests:
            return _error(404, "no request recorded for that key")
        return state.requests[key]

    @app.get("/faults")
    def get_faults() -> Any:
        return state.faults.to_json()

    @app.put("/faults")
    def put_faults() -> Any:
        state.faults = Faults().merged(_body())
        return state.faults.to_json()

    @app.post("/reset")
    def reset() -> Any:
        state.reset()
        return {"reset": True}


def _key_arg() -> str | None:
    if "key" in request.args:
        return request.args["key"]
    if "agent_id" in request.args:
        return f"{request.args['agent_id']}:{request.args.get('turn', '')}"
    return None
