"""Small helpers shared by tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from core.ground.clock import iso
from core.ground.models import (
    DiscussionConfig,
    DiscussionState,
    Message,
    Participant,
    ParticipantType,
    Permission,
    Protocol,
)


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05) -> Any:
    """Poll until `predicate()` is truthy; fail with a clear message after `timeout`."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last value: {last!r})")


def agent(pid: str, name: str | None = None, **params: Any) -> Participant:
    return Participant(participant_id=pid, name=name or pid, persona=name or pid,
                       participant_type=ParticipantType.AGENT, provider="simulated",
                       permissions=[Permission.READ, Permission.WRITE], params=params)


def human(pid: str, user: str, perms: tuple[Permission, ...] = (Permission.READ,
                                                               Permission.WRITE)) -> Participant:
    return Participant(participant_id=pid, name=user.title(), user_id=user,
                       participant_type=ParticipantType.HUMAN, permissions=list(perms))


def config(protocol: Protocol = Protocol.ROUND_ROBIN, max_rounds: int = 3,
           **kw: Any) -> DiscussionConfig:
    return DiscussionConfig(id="disc_test", topic="Design the auth API", protocol=protocol,
                            max_rounds=max_rounds, created_at=iso(), **kw)


def state(turn: int = 0, seq: int = 0, **kw: Any) -> DiscussionState:
    kw.setdefault("status", "active")
    return DiscussionState(turn=turn, seq=seq, **kw)


def message(pid: str, content: str, *, seq: int = 1, turn: int | None = None,
            ptype: ParticipantType = ParticipantType.AGENT) -> Message:
    return Message(message_id=f"msg_{seq}", seq=seq, participant_id=pid, participant_name=pid,
                   participant_type=ptype, content=content, timestamp=iso(), turn=turn)


def agent_body(n: int = 3, rounds: int = 3, protocol: str = "round_robin",
               **params: Any) -> dict[str, Any]:
    personas = ["Security Expert", "Backend Developer", "Product Manager", "Tester", "SRE"]
    return {
        "topic": "Design API for user authentication",
        "agents": [{"persona": personas[i % len(personas)] + ("" if i < 5 else f" {i}"),
                    "provider": "simulated", "params": params} for i in range(n)],
        "protocol": protocol,
        "max_rounds": rounds,
    }
