"""The Execution Platform over HTTP (contract: docs/execution-platform.md).

Agents are registered with `POST {url}/agents` when a discussion is created; the instance id is
kept on the participant. Each turn is one `POST {url}/agents/{agent_id}/turns` carrying the
agent's context, retried on transient errors under the turn's deadline.
"""

from __future__ import annotations

import time
from typing import Any

from core.agents.base import AgentReply, TurnRequest
from core.agents.common import check_common_params, reply_from_usage
from core.agents.http import CallStats, HttpCaller, json_body, sse_events
from core.ground.errors import AgentError, ServiceUnavailable, Unprocessable
from core.ground.models import Participant
from core.ground.settings import Settings


class ExecutionPlatformBackend:
    """Registers agents and runs their turns on the Execution Platform."""

    name = "execution_platform"
    costly = True

    def __init__(self, settings: Settings, caller: HttpCaller) -> None:
        self.settings = settings
        self.caller = caller

    @property
    def url(self) -> str:
        return self.settings.execution_platform_url.rstrip("/")

    def _headers(self, idempotency_key: str) -> dict[str, str]:
        headers = {"Idempotency-Key": idempotency_key}
        if self.settings.execution_platform_api_key:
            headers["Authorization"] = f"Bearer {self.settings.execution_platform_api_key}"
        return headers

    def validate(self, agent: Participant) -> None:
        if not self.url:
            raise Unprocessable(
                "provider 'execution_platform' is not configured: set EXECUTION_PLATFORM_URL"
            )
        check_common_params(agent)

    def register(self, discussion_id: str, agent: Participant) -> str | None:
        """Create the agent instance; 422 if the platform refuses it, 503 if it is unreachable."""
        body = {
            "discussion_id": discussion_id,
            "participant_id": agent.participant_id,
            "name": agent.name,
            "persona": agent.persona,
            "role": agent.role,
            "model": agent.model,
            "system_prompt": agent.system_prompt,
            "temperature": agent.temperature,
            "params": agent.params,
        }
        what = "Execution Platform agent registration"
        stats = CallStats()
        try:
            resp = self.caller.post(
                f"{self.url}/agents", body, what=what,
                deadline_s=self.settings.agent_register_deadline_s,
                headers=self._headers(f"{discussion_id}:{agent.participant_id}"), stats=stats)
            data = json_body(resp, what, stats.attempts)
        except AgentError as exc:
            if exc.transient:
                raise ServiceUnavailable(f"the Execution Platform is unavailable: {exc.message}",
                                         retry_after=5) from None
            raise Unprocessable(f"the Execution Platform refused agent {agent.name!r}: "
                                f"{exc.message}") from None
        agent_id = data.get("agent_id")
        if not isinstance(agent_id, str) or not agent_id or len(agent_id) > 200:
            raise ServiceUnavailable(f"{what}: the reply has no agent_id")
        return agent_id

    def generate(self, request: TurnRequest) -> AgentReply:
        agent = request.agent
        if not agent.instance_id:
            raise AgentError(f"agent {agent.name!r} has no Execution Platform instance")
        stream = bool(agent.params.get("stream")) and request.on_delta is not None
        body: dict[str, Any] = {
            "discussion_id": request.discussion_id,
            "participant_id": agent.participant_id,
            "turn": request.turn,
            "round": request.round,
            "topic": request.topic,
            "instructions": request.instructions,
            "messages": request.messages,
            "model": agent.model,
            "temperature": agent.temperature,
            "deadline_s": request.deadline_s,
            "stream": stream,
        }
        what = f"Execution Platform agent {agent.instance_id}"
        stats = CallStats()
        ends = time.monotonic() + request.deadline_s
        resp = self.caller.post(
            f"{self.url}/agents/{agent.instance_id}/turns", body, what=what,
            deadline_s=request.deadline_s, headers=self._headers(request.idempotency_key),
            stream=stream, stats=stats)
        if stream:
            parts: list[str] = []
            data: dict[str, Any] = {}
            for chunk in sse_events(resp, what, ends):
                if not isinstance(chunk, dict):
                    raise AgentError(f"{what}: a streamed chunk is not a JSON object")
                delta = chunk.get("delta")
                if isinstance(delta, str) and delta:
                    parts.append(delta)
                    assert request.on_delta is not None
                    request.on_delta(delta)
                if chunk.get("done"):
                    data = chunk
            content: Any = "".join(parts)
        else:
            data = json_body(resp, what, stats.attempts)
            content = data.get("content")
        if not isinstance(content, str):
            raise AgentError(f"{what}: the reply has no text `content`", attempts=stats.attempts)
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        model = data.get("model") if isinstance(data.get("model"), str) else None
        reply = reply_from_usage(content, usage, model or agent.model, request, stats)
        cost = data.get("cost_usd")
        if isinstance(cost, int | float) and not isinstance(cost, bool) and cost >= 0:
            reply.cost_usd = float(cost)
        return reply
