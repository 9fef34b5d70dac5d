"""Helpers shared by the HTTP backends: parameter checks and building a reply from usage."""

from __future__ import annotations

from typing import Any

from core.agents.base import AgentReply, TurnRequest
from core.agents.context import estimate_tokens
from core.agents.http import CallStats
from core.ground.errors import AgentError, Unprocessable
from core.ground.models import Participant
from core.ground.settings import Settings


def check_common_params(agent: Participant) -> None:
    """422 for provider params of the wrong shape (shared by the HTTP backends)."""
    params = agent.params
    if "stream" in params and not isinstance(params["stream"], bool):
        raise Unprocessable("params.stream must be true or false")
    mt = params.get("max_tokens")
    if mt is not None and (isinstance(mt, bool) or not isinstance(mt, int) or not 1 <= mt
                           <= 1_000_000):
        raise Unprocessable("params.max_tokens must be an integer from 1 to 1000000")
    if agent.temperature is not None and not 0.0 <= agent.temperature <= 2.0:
        raise Unprocessable("temperature must be between 0 and 2")


def reply_from_usage(content: str, usage: dict[str, Any], model: str | None, request: TurnRequest,
           stats: CallStats) -> AgentReply:
    if not content.strip():
        raise AgentError("the agent returned an empty reply", attempts=stats.attempts)
    estimated = not usage
    prompt = usage.get("prompt_tokens")
    completion = usage.get("completion_tokens")
    return AgentReply(
        content=content,
        prompt_tokens=int(prompt) if isinstance(prompt, int) else sum(
            estimate_tokens(m["content"]) for m in request.messages),
        completion_tokens=int(completion) if isinstance(completion, int) else estimate_tokens(
            content),
        attempts=stats.attempts,
        model=model,
        metadata={"usage_estimated": True} if estimated else {},
    )


# Keys that would carry a secret: credentials are named (`params.auth`), never given in a body.
SECRET_KEYS = frozenset({"token", "api_key", "apikey", "authorization", "headers", "password",
                         "secret", "azure_ad_token", "access_token"})


def check_agent_url(settings: Settings, url: str, what: str) -> None:
    """422 unless AGENT_URL_PREFIXES lets a discussion body point an agent at `url`."""
    if not settings.agent_url_allowed(url):
        raise Unprocessable(f"{what} {url!r} is not under a URL this server allows "
                            "(AGENT_URL_PREFIXES)")


def check_named_credential(settings: Settings, agent: Participant, url: str) -> None:
    """422 unless `params.auth` is absent or names a server credential allowed for `url`."""
    secrets = sorted(k for k in agent.params if k.lower() in SECRET_KEYS)
    if secrets:
        raise Unprocessable(
            f"params.{secrets[0]}: credentials are never taken from a discussion body; "
            "name one that the server defines with params.auth")
    name = agent.params.get("auth")
    if name is None:
        return
    credential = settings.agent_credentials.get(name) if isinstance(name, str) else None
    if credential is None:
        raise Unprocessable(f"params.auth names no credential this server defines: {name!r}")
    if not credential.allows(url):
        raise Unprocessable(f"credential {name!r} may not be sent to {url}")


def named_token(settings: Settings, agent: Participant) -> str | None:
    """The secret of the credential `params.auth` names (validated at creation), or None."""
    credential = settings.agent_credentials.get(str(agent.params.get("auth") or ""))
    return credential.token.get_secret_value() if credential else None
