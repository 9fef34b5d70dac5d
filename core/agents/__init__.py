"""Agent backends behind one interface, looked up by provider name."""

from __future__ import annotations

from core.agents.a2a import A2ABackend
from core.agents.autogen import AutoGenBackend
from core.agents.base import AgentBackend, AgentReply, TurnRequest
from core.agents.execution_platform import ExecutionPlatformBackend
from core.agents.external import ExternalBackend
from core.agents.http import HttpCaller
from core.agents.openai import OpenAIBackend
from core.agents.simulated import SimulatedBackend
from core.ground.errors import Unprocessable
from core.ground.models import Participant
from core.ground.settings import Settings


class Backends:
    """The backends this process can call, built from settings on first use."""

    def __init__(self, settings: Settings, extra: dict[str, AgentBackend] | None = None,
                 *, caller: HttpCaller | None = None) -> None:
        self.settings = settings
        # One caller (one pooled HTTP session) shared by the HTTP backends of this process.
        self.caller = caller or HttpCaller(settings)
        self._by_name: dict[str, AgentBackend] = {
            "simulated": SimulatedBackend(),
            "execution_platform": ExecutionPlatformBackend(settings, self.caller),
            "openai": OpenAIBackend(settings, self.caller),
            "external": ExternalBackend(),
            "a2a": A2ABackend(settings),
            "autogen": AutoGenBackend(settings),
        }
        self._by_name.update(extra or {})

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def get(self, provider: str) -> AgentBackend:
        try:
            return self._by_name[provider]
        except KeyError:
            raise Unprocessable(
                f"provider {provider!r} is not available; available: {', '.join(self.names())}"
            ) from None

    def validate(self, agent: Participant) -> None:
        """422 unless the agent's provider exists and accepts its configuration."""
        self.get(agent.provider or self.settings.default_provider).validate(agent)

    def register(self, discussion_id: str, agent: Participant) -> str | None:
        """Create the agent on its backend when that backend keeps instances."""
        return self.get(agent.provider or self.settings.default_provider).register(
            discussion_id, agent)


__all__ = ["AgentBackend", "AgentReply", "Backends", "TurnRequest"]
