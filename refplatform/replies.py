"""Simulated replies in the agent's persona (refplatform/voice.py), and token counts."""

from __future__ import annotations

from typing import Any

from refplatform import voice


def _tokens(text: str) -> int:
    return max(1, (len(text) + 3) // 4)


def reply_text(persona: str, messages: list[dict[str, Any]], turn: Any,
               key: str = "") -> str:
    """A deterministic reply in the persona's voice, answering the last other speaker.

    The topic comes from the system message (`Discussion topic: …`), the previous speaker from
    the last `[seq] Name (kind): text` line of the user message's transcript that is not the
    agent's own.
    """
    system = "\n".join(str(m.get("content", "")) for m in messages
                       if isinstance(m, dict) and m.get("role") == "system")
    topic = next((ln.split(":", 1)[1].strip() for ln in system.splitlines()
                  if ln.startswith("Discussion topic:")), "this discussion")
    user = next((m.get("content", "") for m in reversed(messages)
                 if isinstance(m, dict) and m.get("role") == "user"), "")
    lines = [ln for ln in str(user).splitlines() if ln.startswith("[")]
    others = [ln for ln in lines if f"] {persona} (agent):" not in ln]  # never itself
    return voice.line(discussion_id=key, turn=turn, persona=persona, topic=topic,
                      previous=voice.previous_from_lines(others),
                      own=voice.own_from_lines(lines, persona))


# Models named `prose-*` stand for servers without structured output: they refuse a JSON
# schema with 400 and answer a ballot in prose, with no `VOTE:` line.
PROSE_PREFIX = "prose-"
PROSE = "I'm in favour, with one reservation: the rollout needs a fallback for old clients."


def json_schema(response_format: Any) -> dict[str, Any] | None:
    """The JSON schema a `response_format` of type `json_schema` asks for, else None."""
    if not isinstance(response_format, dict) or response_format.get("type") != "json_schema":
        return None
    schema = (response_format.get("json_schema") or {}).get("schema")
    return schema if isinstance(schema, dict) else None


def structured(schema: dict[str, Any], persona: str, messages: list[dict[str, Any]],
               turn: Any) -> dict[str, Any]:
    """An object that follows `schema`: an enum's first value, the usual reply for text."""
    out: dict[str, Any] = {}
    for name, prop in (schema.get("properties") or {}).items():
        if isinstance(prop, dict) and prop.get("enum"):
            out[name] = prop["enum"][0]
        elif isinstance(prop, dict) and prop.get("type") in ("integer", "number"):
            out[name] = 0
        else:
            out[name] = reply_text(persona, messages, turn)
    return out


def usage(messages: list[dict[str, Any]], content: str) -> dict[str, int]:
    prompt = sum(_tokens(str(m.get("content", ""))) for m in messages if isinstance(m, dict))
    completion = _tokens(content)
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion}
