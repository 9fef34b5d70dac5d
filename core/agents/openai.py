"""Any OpenAI-compatible chat-completions server: OpenAI, vLLM, Ollama, llama.cpp server.

Base URL and key come from settings (OPENAI_BASE_URL, OPENAI_API_KEY); model and temperature
from the agent. `params`: `max_tokens`, `stream` (token deltas reach viewers), `extra_body`
(merged into the request, for server-specific options) and `structured` (default true: a
ballot or a speaker choice is asked for as `response_format` with its JSON schema; a server
that refuses that with a 400 or 422 is asked once more without it, and the free-text parse
decides).
"""

from __future__ import annotations

import json
import time
from typing import Any

from core.agents.base import AgentReply, TurnRequest
from core.agents.common import check_common_params, reply_from_usage
from core.agents.http import CallStats, HttpCaller, json_body, sse_events
from core.ground.errors import AgentError, Unprocessable
from core.ground.models import Participant
from core.ground.settings import Settings
from protocols.decisions import render

_OURS = ("model", "messages", "temperature", "stream", "stream_options", "response_format")


class OpenAIBackend:
    """Chat completions over HTTP with `requests`, through the shared retrying caller."""

    name = "openai"
    costly = True

    def __init__(self, settings: Settings, caller: HttpCaller) -> None:
        self.settings = settings
        self.caller = caller

    def validate(self, agent: Participant) -> None:
        if not agent.model:
            raise Unprocessable("provider 'openai' needs a model (e.g. \"gpt-4o-mini\")")
        if not self.settings.openai_base_url:
            raise Unprocessable("provider 'openai' is not configured: set OPENAI_BASE_URL")
        check_common_params(agent)
        extra = agent.params.get("extra_body")
        if extra is not None and not isinstance(extra, dict):
            raise Unprocessable("params.extra_body must be an object")
        if "structured" in agent.params and not isinstance(agent.params["structured"], bool):
            raise Unprocessable("params.structured must be true or false")

    def register(self, discussion_id: str, agent: Participant) -> str | None:
        return None

    def generate(self, request: TurnRequest) -> AgentReply:
        task = request.task
        if not task.get("schema") or request.agent.params.get("structured") is False:
            return self._generate(request, None)
        response_format = {"type": "json_schema", "json_schema": {
            "name": task.get("name") or "Decision", "schema": task["schema"], "strict": True}}
        try:
            reply = self._generate(request, response_format)
        except AgentError as exc:
            if exc.details.get("status") not in (400, 422):
                raise
            # This server does not take a JSON schema: ask in words, parse the words.
            reply = self._generate(request, None)
            reply.metadata["structured_refused"] = True
            return reply
        try:
            data = json.loads(reply.content)
        except ValueError:
            return reply  # it answered in prose after all: the text parse decides
        text = render(task, data)
        if text is not None:
            reply.metadata["decision_data"] = data
            reply.content = text
        return reply

    def _generate(self, request: TurnRequest,
                  response_format: dict[str, Any] | None) -> AgentReply:
        agent = request.agent
        params = agent.params
        stream = bool(params.get("stream")) and request.on_delta is not None and (
            response_format is None)
        body: dict[str, Any] = {k: v for k, v in (params.get("extra_body") or {}).items()
                                if k not in _OURS}
        body.update(model=agent.model, messages=request.messages)
        if agent.temperature is not None:
            body["temperature"] = agent.temperature
        if params.get("max_tokens"):
            body["max_tokens"] = params["max_tokens"]
        if stream:
            body.update(stream=True, stream_options={"include_usage": True})
        if response_format is not None:
            body["response_format"] = response_format
        headers = {"Idempotency-Key": request.idempotency_key}
        if self.settings.openai_api_key:
            headers["Authorization"] = f"Bearer {self.settings.openai_api_key}"
        url = self.settings.openai_base_url.rstrip("/") + "/chat/completions"
        what = f"openai model {agent.model}"
        stats = CallStats()
        ends = time.monotonic() + request.deadline_s
        resp = self.caller.post(url, body, what=what, deadline_s=request.deadline_s,
                                headers=headers, stream=stream, stats=stats)
        if stream:
            content, usage, model = self._read_stream(resp, request, what, ends)
        else:
            data = json_body(resp, what, stats.attempts)
            content, usage, model = _parse_completion(data, what, stats.attempts)
        return reply_from_usage(content, usage, model or agent.model, request, stats)

    def _read_stream(self, resp: Any, request: TurnRequest, what: str,
                     ends: float) -> tuple[str, dict[str, Any], str | None]:
        parts: list[str] = []
        usage: dict[str, Any] = {}
        model = None
        for chunk in sse_events(resp, what, ends):
            if not isinstance(chunk, dict):
                raise AgentError(f"{what}: a streamed chunk is not a JSON object")
            model = chunk.get("model") or model
            if isinstance(chunk.get("usage"), dict):
                usage = chunk["usage"]
            for choice in chunk.get("choices") or []:
                delta = (choice.get("delta") or {}).get("content") if isinstance(
                    choice, dict) else None
                if isinstance(delta, str) and delta:
                    parts.append(delta)
                    assert request.on_delta is not None
                    request.on_delta(delta)
        return "".join(parts), usage, model


def _parse_completion(data: dict[str, Any], what: str,
                      attempts: int) -> tuple[str, dict[str, Any], str | None]:
    try:
        content = data["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise AgentError(f"{what}: the reply has no choices[0].message.content",
                         attempts=attempts) from None
    if not isinstance(content, str):
        raise AgentError(f"{what}: the reply's content is not text", attempts=attempts)
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    return content, usage, data.get("model") if isinstance(data.get("model"), str) else None
