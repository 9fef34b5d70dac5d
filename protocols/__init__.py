"""Pure turn-taking protocols; `get_protocol` maps a protocol name to its class."""

from __future__ import annotations

from core.ground.errors import Unprocessable
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
from protocols.debate import Debate
from protocols.free_form import FreeForm
from protocols.moderated import Moderated
from protocols.round_robin import RoundRobin

# The registry: one line per protocol (docs/architecture.md, "How to add a protocol").
_REGISTRY: dict[str, type[BaseProtocol]] = {cls.name: cls for cls in (
    RoundRobin,
    FreeForm,
    Moderated,
    Consensus,
    Debate,
)}


def supported() -> list[str]:
    """Names of the protocols this build can run."""
    return list(_REGISTRY)


def get_protocol(name: str) -> BaseProtocol:
    """An instance of the named protocol; 422 for one this build cannot run."""
    try:
        return _REGISTRY[str(name)]()
    except KeyError:
        raise Unprocessable(
            f"protocol {name!r} is not available; supported: " + ", ".join(_REGISTRY)
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
