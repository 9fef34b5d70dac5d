"""Parts of the settings kept apart from the Settings class: the fixed lists it defaults to,
the agent credential model, and the time-budget check every process runs on its settings."""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel, Field, SecretStr

# JWT algorithms a deployment may choose from ("none" is never one of them).
JWT_ALGORITHMS = ("HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384",
                  "PS256", "PS384", "PS512")

# The AgentChat assistant, the model clients of OpenAI, Azure OpenAI, Anthropic and Ollama, and
# the model-context and workbench sub-components such an agent's JSON carries.
AUTOGEN_DEFAULT_CLASSES = (
    "autogen_agentchat.agents.AssistantAgent",
    "autogen_ext.models.openai.OpenAIChatCompletionClient",
    "autogen_ext.models.openai.AzureOpenAIChatCompletionClient",
    "autogen_ext.models.anthropic.AnthropicChatCompletionClient",
    "autogen_ext.models.ollama.OllamaChatCompletionClient",
    "autogen_core.model_context.UnboundedChatCompletionContext",
    "autogen_core.model_context.BufferedChatCompletionContext",
    "autogen_core.model_context.TokenLimitedChatCompletionContext",
    "autogen_core.model_context.HeadAndTailChatCompletionContext",
    "autogen_core.tools.StaticWorkbench",
    "autogen_core.tools.StaticStreamWorkbench",
)


class Credential(BaseModel):
    """A secret an agent may name: a bearer token, and the URLs it may be sent to."""

    token: SecretStr
    urls: list[str] = Field(default_factory=list)

    def allows(self, url: str) -> bool:
        return not self.urls or any(url.startswith(prefix) for prefix in self.urls)


class TimeBudget(Protocol):
    """The settings the time budget reads."""

    lease_renew_interval_s: float
    lease_ttl_s: float
    broker_visibility_timeout_s: float
    turn_deadline_s: float
    step_slice_s: float
    step_soft_time_limit_s: float
    step_time_limit_s: float

    @property
    def sentinel_addresses(self) -> list[tuple[str, int]]: ...


def check_time_budget(s: TimeBudget) -> None:
    """Refuse settings that break the time budget, naming the variables to change.

    lease renewal <= half the lease (a lease survives one missed renewal) and the lease below
    the broker's visibility timeout (a redelivered step finds a dead step's lease gone); turn
    deadline + slice < Celery's soft limit < hard limit < visibility timeout (a redelivery
    never races a step that may still run).
    """
    if s.lease_renew_interval_s * 2 > s.lease_ttl_s:
        raise ValueError(
            f"time budget: LEASE_RENEW_INTERVAL_S ({s.lease_renew_interval_s:g}) must be at most "
            f"half of LEASE_TTL_S ({s.lease_ttl_s:g}), so a lease survives a missed renewal")
    if not s.lease_ttl_s < s.broker_visibility_timeout_s:
        raise ValueError(
            f"time budget: LEASE_TTL_S ({s.lease_ttl_s:g}) must stay below "
            f"BROKER_VISIBILITY_TIMEOUT_S ({s.broker_visibility_timeout_s:g})")
    chain = [
        ("TURN_DEADLINE_S + STEP_SLICE_S", s.turn_deadline_s + s.step_slice_s),
        ("STEP_SOFT_TIME_LIMIT_S", s.step_soft_time_limit_s),
        ("STEP_TIME_LIMIT_S", s.step_time_limit_s),
        ("BROKER_VISIBILITY_TIMEOUT_S", s.broker_visibility_timeout_s),
    ]
    for (lower_name, lower), (upper_name, upper) in zip(chain, chain[1:], strict=False):
        if not lower < upper:
            raise ValueError(
                f"time budget: {lower_name} ({lower:g}) must stay below {upper_name} "
                f"({upper:g}); the order is {' < '.join(name for name, _ in chain)}")
    s.sentinel_addresses  # noqa: B018 - raises on a malformed REDIS_SENTINELS
