"""AutoGen agents for tests, dumped by AutoGen itself (`dump_component`), the JSON a client
sends; their model client points at the reference platform's OpenAI-compatible server."""

from __future__ import annotations

from typing import Any

from autogen_agentchat.agents import AssistantAgent
from autogen_core.model_context import BufferedChatCompletionContext
from autogen_ext.models.openai import OpenAIChatCompletionClient

MODEL_INFO = {"vision": False, "function_calling": False, "json_output": True,
              "family": "unknown", "structured_output": True}


def component(base_url: str, name: str = "security_expert", *, model: str = "ref-model",
              system: str = "You are a careful security expert.", buffer: int | None = None,
              **client: Any) -> dict[str, Any]:
    """An AssistantAgent's component JSON, as `agent.dump_component()` gives it."""
    model_client = OpenAIChatCompletionClient(model=model, base_url=base_url, api_key="unused",
                                              model_info=MODEL_INFO, **client)
    agent = AssistantAgent(name, model_client=model_client, system_message=system,
                           model_context=BufferedChatCompletionContext(buffer_size=buffer)
                           if buffer else None)
    return agent.dump_component().model_dump(mode="json")


def autogen_agent(persona: str, base_url: str, **params: Any) -> dict[str, Any]:
    return {"persona": persona, "provider": "autogen",
            "params": {"component": component(base_url), **params}}
