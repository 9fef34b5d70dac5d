"""Schemathesis hooks for the stateful run (SCHEMATHESIS_HOOKS=tests.security.fuzz_hooks).

Chains only start when a create succeeds, and a random schema-valid create is usually refused
for a rule JSON Schema cannot state (a moderator outside `moderated`, consensus settings outside
`consensus`, ...: the documented exceptions in schemathesis.toml). This maps generated creates
onto ones those rules accept, so the stateful phase walks the links from real objects; every
other part of every request stays as generated.
"""

from __future__ import annotations

from typing import Any

import schemathesis

CREATES = {"/v1/discussions", "/v1/schedules", "/v1/batches"}


def _acceptable(body: Any) -> Any:
    if not isinstance(body, dict):
        return body
    body = dict(body)
    for key in ("consensus", "proxy_agent", "require_approval", "parallel_rounds"):
        body.pop(key, None)
    if body.get("human_turn_policy") == "proxy":
        body["human_turn_policy"] = "skip"
    agents = [dict(a) for a in body.get("agents") or [] if isinstance(a, dict)]
    for a in agents:
        a.update(provider="simulated", moderator=False, params={})
    if "agents" in body:
        body["agents"] = agents
    if body.get("protocol") == "consensus":
        body["protocol"] = "round_robin"
    seen: set[str] = set()
    humans = []
    for h in body.get("humans") or []:
        if isinstance(h, dict) and h.get("user_id") not in seen:
            seen.add(h.get("user_id"))
            humans.append(h)
    if "humans" in body:
        body["humans"] = humans
    if not agents and not humans:
        body["agents"] = [{"persona": "Fuzz", "provider": "simulated"}]
    return body


@schemathesis.hook
def map_body(ctx: Any, body: Any) -> Any:
    op = ctx.operation
    if op is None or op.method.upper() != "POST" or op.path not in CREATES:
        return body
    if op.path == "/v1/discussions":
        return _acceptable(body)
    if isinstance(body, dict) and isinstance(body.get("template"), dict):
        return {**body, "template": _acceptable(body["template"])}
    return body
