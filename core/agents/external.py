"""The `external` provider: an agent whose turns the caller's own system posts.

The engine never calls it: when an external agent's turn comes, the discussion waits for its
post (REST `POST /v1/discussions/{id}/messages` or a WebSocket `post` frame) exactly as it waits
for a person, with the discussion's deadline and policy (`human_turn_timeout_s`,
`human_turn_policy`). Its posts follow the same turn and state rules as a person's; with
authentication on, the discussion's creator may post as it.
"""

from __future__ import annotations

from core.agents.base import AgentReply, TurnRequest
from core.ground.errors import AgentError, Unprocessable
from core.ground.models import Participant, Permission


class ExternalBackend:
    """Holds no agent: validation only, and a refusal should anything try to call one."""

    name = "external"
    costly = False

    def validate(self, agent: Participant) -> None:
        if agent.params:
            raise Unprocessable("an external agent takes no params: its turns are posted")
        if agent.can(Permission.MODERATE):
            raise Unprocessable("an external agent cannot be the moderator agent")

    def register(self, discussion_id: str, agent: Participant) -> str | None:
        return None

    def generate(self, request: TurnRequest) -> AgentReply:
        raise AgentError(f"{request.agent.name} is an external agent: its turns are posted by "
                         "its own system, not called")
