"""The CLI's generic actions: votes, moderation and lifecycle verbs are found in the service's
own action list (GET .../actions), so the CLI follows the server's bodies instead of hard-coding
them."""

from __future__ import annotations

from typing import Any

from cli.client import Client, CliError

ACTORS = ("by", "actor_id", "moderator_id", "voter_id", "participant_id")
TARGETS = ("participant_id", "target", "target_id", "target_participant_id", "speaker_id")


def resolve_action(offered: dict[str, dict[str, Any]], name: str) -> tuple[str, dict[str, str]]:
    """(endpoint, preset fields) for NAME: an endpoint of that name, or a verb of an endpoint
    whose body has an `action` enum naming it (e.g. `mute` -> /moderation with action=mute)."""
    if name in offered:
        return name, {}
    for endpoint, spec in sorted(offered.items()):
        if name in ((spec["fields"].get("action") or {}).get("enum") or []):
            return endpoint, {"action": name}
    verbs = sorted({v for spec in offered.values()
                    for v in (spec["fields"].get("action") or {}).get("enum") or []})
    names = ", ".join(sorted(offered) + verbs) or "none"
    raise CliError(f"this service has no '{name}' action (offered: {names})")


def run_action(client: Client, discussion_id: str, name: str, participant_id: str | None,
               fields: dict[str, Any], target: str | None = None) -> Any:
    """POST the action, filling the acting participant and the target where the body wants them."""
    offered = client.actions()
    endpoint, preset = resolve_action(offered, name)
    schema = offered[endpoint]["fields"]
    body = {**preset, **fields}
    actor = next((a for a in ACTORS if a in schema), None)
    if actor and participant_id and actor not in body:
        body[actor] = participant_id
    if target:
        slot = next((t for t in TARGETS if t in schema and t != actor), None)
        if slot is None:
            raise CliError(f"'{name}' takes no target participant")
        body.setdefault(slot, target)
    for key, value in list(body.items()):
        kind = (schema.get(key) or {}).get("type")
        try:
            if kind == "integer":
                body[key] = int(value)
            elif kind == "number":
                body[key] = float(value)
            elif kind == "boolean" and isinstance(value, str):
                body[key] = value.lower() in ("1", "true", "yes", "on")
        except ValueError:
            raise CliError(f"{key} must be a {kind}") from None
    return client.post(Client.path(discussion_id, f"/{endpoint}"), body)


def parse_fields(pairs: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CliError(f"expected key=value, got {pair!r}")
        out[key] = value
    return out
