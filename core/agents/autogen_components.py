"""Checking an AutoGen component JSON before AutoGen sees it.

AutoGen's loader imports the module a `provider` names and only then checks the class, so a
body naming `subprocess.Popen` would import (and could run) what it likes. Here the whole JSON
is walked first, with no import at all: every object carrying a `provider` must name an
allow-listed class, and no model client may carry a secret (credentials are named with
`params.auth`, never given).
"""

from __future__ import annotations

import json
from typing import Any

from core.ground.errors import Unprocessable

# AutoGen's own short names for some providers (autogen_core's WELL_KNOWN_PROVIDERS), resolved
# the same way its loader does, so an alias is checked as the class it stands for.
ALIASES = {
    "azure_openai_chat_completion_client":
        "autogen_ext.models.openai.AzureOpenAIChatCompletionClient",
    "AzureOpenAIChatCompletionClient": "autogen_ext.models.openai.AzureOpenAIChatCompletionClient",
    "openai_chat_completion_client": "autogen_ext.models.openai.OpenAIChatCompletionClient",
    "OpenAIChatCompletionClient": "autogen_ext.models.openai.OpenAIChatCompletionClient",
    "OllamaChatCompletionClient": "autogen_ext.models.ollama.OllamaChatCompletionClient",
}
AGENT_CLASSES = frozenset({"autogen_agentchat.agents.AssistantAgent"})
# Model-client config keys that hold a secret. `dump_component` writes the key masked with
# asterisks: that placeholder is dropped, anything else is refused.
SECRET_CONFIG_KEYS = frozenset({"api_key", "azure_ad_token", "azure_ad_token_provider",
                                "access_token", "token"})
MAX_COMPONENT_BYTES = 64 * 1024
MAX_DEPTH = 32


def provider_of(node: dict[str, Any]) -> str:
    provider = node.get("provider")
    return ALIASES.get(provider, provider) if isinstance(provider, str) else ""


def _walk(node: Any, path: str, allowed: frozenset[str], depth: int) -> None:
    if depth > MAX_DEPTH:
        raise Unprocessable(f"params.component is nested deeper than {MAX_DEPTH} levels")
    if isinstance(node, list):
        for i, item in enumerate(node):
            _walk(item, f"{path}[{i}]", allowed, depth + 1)
        return
    if not isinstance(node, dict):
        return
    if "provider" in node:
        provider = provider_of(node)
        if not provider:
            raise Unprocessable(f"{path}.provider must be a class name (a string)")
        if provider not in allowed:
            raise Unprocessable(
                f"{path}.provider names {provider!r}, a class this server does not allow "
                "(AUTOGEN_ALLOWED_CLASSES); nothing was imported")
        config = node.get("config")
        if isinstance(config, dict):
            for key in sorted(SECRET_CONFIG_KEYS & set(config)):
                value = config[key]
                if isinstance(value, str) and value and set(value) == {"*"}:
                    continue  # dump_component's mask, not a secret
                raise Unprocessable(
                    f"{path}.config.{key}: credentials are never taken from a discussion "
                    "body; name one that the server defines with params.auth")
    for key, value in node.items():
        _walk(value, f"{path}.{key}", allowed, depth + 1)


def check_component(component: Any, allowed: frozenset[str]) -> None:
    """422 naming the problem unless `component` is an allow-listed AgentChat agent, checked
    all the way down; nothing is imported."""
    if not isinstance(component, dict):
        raise Unprocessable("provider 'autogen' needs params.component, the agent's component "
                            "JSON (what agent.dump_component() produces)")
    if len(json.dumps(component)) > MAX_COMPONENT_BYTES:
        raise Unprocessable(f"params.component is larger than {MAX_COMPONENT_BYTES} bytes")
    _walk(component, "params.component", allowed, 0)
    if provider_of(component) not in AGENT_CLASSES:
        raise Unprocessable("params.component must be an AgentChat AssistantAgent "
                            f"(provider {sorted(AGENT_CLASSES)[0]!r})")
    if not isinstance(component.get("config"), dict) or not isinstance(
            component["config"].get("model_client"), dict):
        raise Unprocessable("params.component.config.model_client is missing")


def without_masked_secrets(component: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of a checked component with dump_component's masked keys removed."""
    def clean(node: Any) -> Any:
        if isinstance(node, list):
            return [clean(item) for item in node]
        if not isinstance(node, dict):
            return node
        out = {k: clean(v) for k, v in node.items()}
        if "provider" in out and isinstance(out.get("config"), dict):
            out["config"] = {k: v for k, v in out["config"].items()
                             if k not in SECRET_CONFIG_KEYS}
        return out
    return clean(component)
