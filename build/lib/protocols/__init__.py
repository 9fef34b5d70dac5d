"""Pure turn-taking protocols; `get_protocol` maps a protocol name to its class."""

from __future__ import annotations

from core.ground.errors import Unprocessable
from core.ground.models import Protocol
from protocols.base import (
    Action,
    BaseProtocol,
    Choose,
    Finish,
    Idle,
    Speak,
    SpeakAll,
    View,
    WaitForHuman,
)
from protocols.consensus import Consensus
from protocols.free_form import FreeForm
from protocols.moderated import Moderated
from protocols.round_robin import RoundRobin

_REGISTRY: dict[Protocol, type[BaseProtocol]] = {
    Protocol.ROUND_ROBIN: RoundRobin,
    Protocol.FREE_FORM: FreeForm,
    Protocol.MODERATED: Moderated,
    Protocol.CONSENSUS: Consensus,
}


def supported() -> list[Protocol]:
    """Protocols this build can run."""
    return list(_REGISTRY)


def get_protocol(name: Protocol | str) -> BaseProtocol:
    """An instance of the named protocol; 422 for one this build cannot run."""
    try:
        return _REGISTRY[Protocol(name)]()
    except (KeyError, ValueError):
        raise Unprocessable(
            f"protocol {name!r} is not available yet; supported: "
            + ", ".join(p.value for p in _REGISTRY)
        ) from None


__all__ = [
    "Action",
    "BaseProtocol",
    "Choose",
    "Finish",
    "Idle",
    "Speak",
    "SpeakAll",
    "View",
    "WaitForHuman",
    "get_protocol",
    "supported",
]
