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


def usage(messages: list[dict[str, Any]], content: str) -> dict[str, int]:
    prompt = sum(_tokens(str(m.get("content", ""))) for m in messages if isinstance(m, dict))
    completion = _tokens(content)
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion}
