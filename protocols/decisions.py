"""Structured decisions: what a ballot and a speaker choice look like as data, and how an answer
becomes a decision. Pure: backends turn the task into their own structured-output request
(`response_format` with the JSON schema, AutoGen's structured message, an A2A data part), and
the free-text parse (`VOTE: yes`, `NEXT: name`) stays the fallback.

Each decision records its path: `structured` (the backend returned the data), `text` (parsed
from the reply's words), or `unparsed` (neither; a ballot then counts as an abstention).
"""

from __future__ import annotations

from typing import Any

from core.ground.models import Participant, Vote

STRUCTURED, TEXT, UNPARSED = "structured", "text", "unparsed"

BALLOT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Ballot",
    "additionalProperties": False,
    "required": ["reason", "vote"],
    "properties": {
        "reason": {"type": "string", "description": "Your position in one or two sentences."},
        "vote": {"type": "string", "enum": [v.value for v in Vote]},
    },
}


def vote_task(proposal: str) -> dict[str, Any]:
    """The task of a ballot turn: the schema, and how an answer reads in the transcript."""
    return {"kind": "vote", "proposal": proposal, "name": "Ballot", "schema": BALLOT_SCHEMA,
            "format": "{reason}\nVOTE: {vote}"}


def choice_task(names: list[str], end: str = "END") -> dict[str, Any]:
    """The task of a moderator's choice among `names` (or `end`)."""
    schema = {
        "type": "object",
        "title": "Choice",
        "additionalProperties": False,
        "required": ["next"],
        "properties": {"next": {"type": "string", "enum": [*names, end]}},
    }
    return {"kind": "choose_speaker", "candidates": names, "name": "Choice", "schema": schema,
            "format": "NEXT: {next}"}


def render(task: dict[str, Any], data: Any) -> str | None:
    """The text a structured answer stands for in the transcript, or None if it does not fit."""
    fmt = task.get("format")
    if not isinstance(fmt, str) or not isinstance(data, dict):
        return None
    required = task.get("schema", {}).get("required", [])
    if any(not isinstance(data.get(k), str) for k in required):
        return None
    try:
        return fmt.format(**{k: data[k] for k in required}).strip()
    except (KeyError, IndexError, ValueError):
        return None


def structured_vote(data: Any) -> Vote | None:
    """The vote a structured answer carries, or None."""
    raw = data.get("vote") if isinstance(data, dict) else None
    if not isinstance(raw, str):
        return None
    try:
        return Vote(raw.strip().lower())
    except ValueError:
        return None


def structured_choice(data: Any, candidates: list[Participant], end: str = "END") -> str | None:
    """The participant id (or `end`) a structured choice names exactly, or None."""
    raw = data.get("next") if isinstance(data, dict) else None
    if not isinstance(raw, str):
        return None
    raw = raw.strip()
    if raw.upper() == end:
        return end
    for p in candidates:
        if raw.lower() in (p.name.lower(), p.participant_id.lower()):
            return p.participant_id
    return None
