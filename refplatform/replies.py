"""Simulated replies: in the agent's persona, citing the last line of the transcript."""

from __future__ import annotations

from typing import Any


def _tokens(text: str) -> int:
    return max(1, (len(text) + 3) // 4)


def reply_text(persona: str, messages: list[dict[str, Any]], turn: Any) -> str:
    """A deterministic reply that shows what the agent was given."""
    user = next((m.get("content", "") for m in reversed(messages)
                 if isinstance(m, dict) and m.get("role") == "user"), "")
    lines = [ln for ln in str(user).splitlines() if ln.startswith("[")]
    if lines:
        last = " ".join(lines[-1].split()[:12])
        return f"As {persona} (turn {turn}), replying to {last!r}: here is my next point."
    return f"As {persona} (turn {turn}), I open the discussion with my first point."


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
