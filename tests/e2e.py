"""Helpers for end-to-end tests against the live server and its real Celery worker."""

from __future__ import annotations

from typing import Any

import requests

from tests.helpers import wait_for

TERMINAL = ("completed", "failed", "cancelled")


class Api:
    """A tiny client of the live server."""

    def __init__(self, base: str) -> None:
        self.base = base

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        resp = requests.post(f"{self.base}/v1/discussions", json=body, timeout=5)
        assert resp.status_code == 201, resp.text
        return resp.json()

    def get(self, did: str) -> dict[str, Any]:
        return requests.get(f"{self.base}/v1/discussions/{did}", timeout=5).json()

    def messages(self, did: str) -> list[dict[str, Any]]:
        return requests.get(f"{self.base}/v1/discussions/{did}/messages?limit=500",
                            timeout=5).json()["messages"]

    def post(self, did: str, path: str, body: dict | None = None,
             headers: dict | None = None) -> requests.Response:
        return requests.post(f"{self.base}/v1/discussions/{did}/{path}", json=body or {},
                             headers=headers or {}, timeout=5)

    def wait_status(self, did: str, *statuses: str, timeout: float = 30) -> dict[str, Any]:
        def check() -> dict | None:
            s = self.get(did)
            return s if s["status"] in statuses else None

        return wait_for(check, timeout=timeout)

    def finished(self, did: str, timeout: float = 30) -> dict[str, Any]:
        return self.wait_status(did, *TERMINAL, timeout=timeout)


def people(session: dict) -> dict[str, str]:
    """name -> participant id."""
    return {p["name"]: p["participant_id"] for p in session["participants"]}


def two_agents_and_john(protocol: str = "round_robin", rounds: int = 2,
                        **extra: Any) -> dict[str, Any]:
    """The issue's shape: two simulated agents and one person, in that speaking order."""
    agent_params = extra.pop("agent_params", [{}, {}])
    return {
        "topic": "Design API for user authentication",
        "agents": [{"persona": "Security Expert", "params": agent_params[0]},
                   {"persona": "Backend Developer", "params": agent_params[1]}],
        "humans": [{"user_id": "john", "name": "John",
                    "permissions": ["read", "write"]}],
        "protocol": protocol,
        "max_rounds": rounds,
        **extra,
    }
