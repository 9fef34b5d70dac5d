"""AutoGen AgentChat agents (0.7.x), given as their declarative component JSON.

`params`: `component` (what `agent.dump_component()` produces: an AssistantAgent and its model
client, model context and workbench) and `auth` (the name of a server credential that becomes
the model client's API key; a key inside the component is refused). AutoGen is optional
(requirements-autogen.txt); without it this provider answers 422.

The JSON is checked against the allow-list before AutoGen's loader sees it (see
autogen_components). Each turn the agent is loaded afresh, given its saved state and the
transcript messages it has not seen yet, and its state is saved back to Redis per discussion
and participant, so any worker can run its next turn.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import time
from typing import Any

import redis

from core.agents.aio import run_sync
from core.agents.autogen_components import check_component, provider_of, without_masked_secrets
from core.agents.base import AgentReply, TurnRequest
from core.agents.common import (
    check_agent_url,
    check_named_credential,
    named_token,
    reply_from_usage,
)
from core.agents.context import render_transcript
from core.agents.http import CallStats
from core.ground.errors import AgentError, Unprocessable
from core.ground.models import Participant
from core.ground.settings import Settings
from core.storage import agent_state
from core.storage.redis_client import make_redis

SOURCE = "orchestrator"
_KEYLESS = ("autogen_ext.models.ollama.OllamaChatCompletionClient",)
_KNOWN = {"component", "auth", "stream"}


def installed() -> bool:
    """True when the optional AutoGen packages are importable."""
    return all(importlib.util.find_spec(name) is not None
               for name in ("autogen_agentchat", "autogen_core", "autogen_ext"))


def _model_url(component: dict[str, Any]) -> str:
    config = component["config"]["model_client"].get("config") or {}
    return str(config.get("base_url") or config.get("azure_endpoint") or config.get("host") or "")


class AutoGenBackend:
    """Runs an AssistantAgent loaded from its component JSON, its state kept in Redis."""

    name = "autogen"
    costly = True

    def __init__(self, settings: Settings, client: redis.Redis | None = None) -> None:
        self.settings = settings
        self._redis = client

    @property
    def redis(self) -> redis.Redis:
        if self._redis is None:  # made on first use: after a worker forks, not at import
            self._redis = make_redis(self.settings)
        return self._redis

    def _prepared(self, agent: Participant, task: dict[str, Any] | None = None
                  ) -> dict[str, Any]:
        """The checked component with the named credential (or a placeholder) as its key."""
        component = without_masked_secrets(agent.params["component"])
        model_client = component["config"]["model_client"]
        if provider_of(model_client) not in _KEYLESS:
            model_client.setdefault("config", {})["api_key"] = (
                named_token(self.settings, agent) or "unused")
        if task:
            component["config"]["structured_message_factory"] = task
        return component

    def _load(self, component: dict[str, Any]) -> Any:
        agents = importlib.import_module("autogen_agentchat.agents")
        return agents.AssistantAgent.load_component(component)

    def validate(self, agent: Participant) -> None:
        if not installed():
            raise Unprocessable("provider 'autogen' is not installed on this server "
                                "(pip install -r requirements-autogen.txt)")
        unknown = sorted(set(agent.params) - _KNOWN)
        if unknown:
            raise Unprocessable(f"provider 'autogen' does not know params.{unknown[0]}; "
                                f"it takes {', '.join(sorted(_KNOWN))}")
        component = agent.params.get("component")
        check_component(component, self.settings.autogen_allowed)
        assert isinstance(component, dict)
        check_agent_url(self.settings, _model_url(component), "the model client's URL")
        check_named_credential(self.settings, agent, _model_url(component))
        if "stream" in agent.params and not isinstance(agent.params["stream"], bool):
            raise Unprocessable("params.stream must be true or false")
        try:
            loaded = self._load(self._prepared(agent))
        except Exception as exc:  # noqa: BLE001 - any loader error is the component's fault
            raise Unprocessable(f"params.component failed to load: {type(exc).__name__}: "
                                f"{str(exc)[:300]}") from None
        run_sync(_close(loaded), 5, "closing the AutoGen model client")

    def register(self, discussion_id: str, agent: Participant) -> str | None:
        return None

    def generate(self, request: TurnRequest) -> AgentReply:
        agent = request.agent
        did, pid = request.discussion_id, agent.participant_id
        record = agent_state.load(self.redis, did, pid)
        state, seen = agent_state.starting_point(record, request.turn)
        new = [m for m in request.transcript if m.seq > seen and m.participant_id != pid]
        text = (request.messages[0]["content"] if state is None else request.instructions)
        text += "\n\n" + (render_transcript(new) if new else "(Nothing new since your last turn.)")
        text += f"\n\nIt is your turn. Reply as {agent.persona or agent.name}, in your own words."
        structured = _decision_factory(request.task, agent.params["component"])
        component = self._prepared(agent, structured)
        stream = bool(agent.params.get("stream")) and request.on_delta is not None
        what = f"AutoGen agent {agent.name!r}"
        started = time.monotonic()
        try:
            loaded = self._load(component)
        except Exception as exc:  # noqa: BLE001 - checked at creation; settings may change
            raise AgentError(f"{what}: the component failed to load ({type(exc).__name__})"
                             ) from None
        content, usage, decision, after = run_sync(
            _turn(loaded, state, text, request.on_delta if stream else None, what),
            request.deadline_s, what)
        last_seq = max([seen, *(m.seq for m in request.transcript)])
        agent_state.save(self.redis, did, pid, {
            "turn": request.turn, "before": state, "seen_before": seen,
            "after": after, "seen": last_seq})
        stats = CallStats(attempts=1)
        reply = reply_from_usage(content, usage, _model_name(component), request, stats)
        reply.latency_ms = (time.monotonic() - started) * 1000
        if decision is not None:
            reply.metadata["decision_data"] = decision
        return reply


def _model_name(component: dict[str, Any]) -> str | None:
    model = (component["config"]["model_client"].get("config") or {}).get("model")
    return model if isinstance(model, str) else None


def _decision_factory(task: dict[str, Any], component: dict[str, Any]
                      ) -> dict[str, Any] | None:
    """A StructuredMessageFactory asking for the task's decision (AutoGen's structured output),
    when the model client says it can give structured output; else None (the text decides)."""
    model_info = (component["config"]["model_client"].get("config") or {}).get("model_info")
    if not task.get("schema") or not (model_info or {}).get("structured_output"):
        return None
    return {"provider": "autogen_agentchat.messages.StructuredMessageFactory",
            "component_type": "structured_message",
            "config": {"json_schema": task["schema"], "format_string": task.get("format"),
                       "content_model_name": task.get("name") or "Decision"}}


async def _close(agent: Any) -> None:
    client = getattr(agent, "_model_client", None)
    if client is not None:
        await client.close()


async def _turn(agent: Any, state: Any, text: str, on_delta: Any, what: str
                ) -> tuple[str, dict[str, int], dict[str, Any] | None, Any]:
    """One turn on the loop: (reply text, usage, structured decision, state after)."""
    messages = importlib.import_module("autogen_agentchat.messages")
    core = importlib.import_module("autogen_core")
    base = importlib.import_module("autogen_agentchat.base")
    try:
        if state is not None:
            await agent.load_state(state)
        response = None
        async for item in agent.on_messages_stream(
                [messages.TextMessage(content=text, source=SOURCE)], core.CancellationToken()):
            if isinstance(item, messages.ModelClientStreamingChunkEvent) and on_delta:
                on_delta(item.content)
            elif isinstance(item, base.Response):
                response = item
        if response is None:
            raise AgentError(f"{what}: the agent gave no response")
        usage = {"prompt_tokens": 0, "completion_tokens": 0}
        counted = False
        for msg in [*(response.inner_messages or []), response.chat_message]:
            if getattr(msg, "models_usage", None) is not None:
                counted = True
                usage["prompt_tokens"] += msg.models_usage.prompt_tokens
                usage["completion_tokens"] += msg.models_usage.completion_tokens
        chat = response.chat_message
        decision = None
        if isinstance(chat, messages.StructuredMessage):
            decision = chat.content.model_dump(mode="json")
        after = json.loads(json.dumps(await agent.save_state(), default=str))
        return chat.to_text(), usage if counted else {}, decision, after
    except AgentError:
        raise
    except Exception as exc:  # noqa: BLE001 - model clients raise their own errors
        name = type(exc).__name__
        transient = any(w in name for w in ("Timeout", "Connection", "RateLimit",
                                            "InternalServer"))
        raise AgentError(f"{what}: {name}: {str(exc)[:300]}", transient=transient) from None
    finally:
        await _close(agent)
