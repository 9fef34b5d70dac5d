"""The service context every service function takes, and the one factory that builds it.

The API, the workers, beat's tasks, scripts, the bench and the tests all call
`build_services`, so a discussion created by any of them gets the same validation and agent
registration (a schedule once skipped registering Execution Platform agents).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from core.agents import Backends
from core.ground.models import Message, Participant
from core.ground.settings import Settings
from core.storage.store import Store


@dataclass
class Services:
    """What the service functions need: settings, the store, the agent backends and a
    dispatcher that enqueues a discussion's next step."""

    settings: Settings
    store: Store
    backends: Backends
    dispatch: Callable[[str], None]

    def validate_agent(self, agent: Participant) -> None:
        """422 unless the agent's provider exists and accepts its configuration."""
        self.backends.validate(agent)

    def register_agent(self, discussion_id: str, agent: Participant) -> str | None:
        """Create the agent on its backend (Execution Platform agents get an instance id)."""
        return self.backends.register(discussion_id, agent)


@dataclass
class PostResult:
    """What a post did: the committed (or held) message, and whether it was a replay."""

    message: Message
    replayed: bool = False
    held_id: str | None = None


def build_services(settings: Settings, store: Store, dispatch: Callable[[str], None], *,
                   backends: Backends | None = None) -> Services:
    """The service context; `backends` defaults to every backend these settings configure."""
    return Services(settings=settings, store=store, backends=backends or Backends(settings),
                    dispatch=dispatch)
