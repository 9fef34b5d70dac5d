"""A simulated agent's voice: plausible, varied, topic-aware lines in a persona's words.

Shared by the built-in `simulated` provider and the reference Execution Platform (which stands
alone, so this module uses nothing but the standard library). Every choice is drawn from a hash
of (discussion, turn, persona): the same turn always says the same thing, so tests stay
deterministic, while neighbouring turns and personas vary. A reply names the previous speaker
and the subject they raised, never quotes them, so replies do not nest into one another.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from refplatform.lines import GENERIC, LINES, PERSONAS, SUBJECTS

_STANCES = ("agree", "challenge", "extend", "question")
# Topics that start with a verb read as a gerund inside a sentence ("designing the API").
_GERUNDS = {"design": "designing", "pick": "picking", "choose": "choosing", "adopt": "adopting",
            "decide": "deciding", "build": "building", "plan": "planning",
            "review": "reviewing", "migrate": "migrating", "improve": "improving",
            "define": "defining", "create": "creating", "add": "adding",
            "replace": "replacing", "move": "moving", "reduce": "reducing",
            "ship": "shipping", "select": "selecting",
            "rethink": "rethinking", "simplify": "simplifying", "prepare": "preparing",
            "launch": "launching", "write": "writing", "set": "setting"}
_DETERMINERS = {"a", "an", "the", "our", "this", "that", "my", "your", "their", "its", "which",
                "what", "how", "why", "when", "should", "can", "do", "does", "is", "are"}
ALL_SUBJECTS = tuple(s for _, family in SUBJECTS for s in family) + GENERIC


@dataclass(frozen=True)
class Previous:
    """The message being answered: who said it and what they said."""

    name: str
    content: str


def _digest(*parts: object) -> bytes:
    return hashlib.blake2s(":".join(str(p) for p in parts).encode(), digest_size=8).digest()


def voice_of(persona: str) -> str:
    """The voice a persona speaks in (its first matching keyword family)."""
    words = set(re.findall(r"[a-z]+", persona.lower()))
    text = persona.lower()
    for keys, voice in PERSONAS:
        if any((k in words) if len(k) <= 3 else (k in text) for k in keys):
            return voice
    return "generic"


def subjects_for(topic: str) -> tuple[str, ...]:
    """What the topic is about, as a few subjects a speaker may raise."""
    text = topic.lower()
    for keys, family in SUBJECTS:
        if any(re.search(r"\b" + re.escape(k), text) for k in keys):
            return family
    return GENERIC


def topic_phrase(topic: str) -> str:
    """The topic as a phrase that reads inside a sentence (`designing the API`)."""
    text = " ".join(topic.split()).rstrip("?.! ")
    if len(text) > 80:
        text = text[:77].rsplit(" ", 1)[0] + "…"
    if not text:
        return "this"
    first, _, rest = text.partition(" ")
    if first.lower() in _GERUNDS:
        return f"{_GERUNDS[first.lower()]} {rest}".strip()
    if first[:2].isupper() or first.lower() in _DETERMINERS:
        return text  # an acronym or a name, or it has its own article
    return "the " + text[0].lower() + text[1:]


def subject_in(content: str) -> str | None:
    """The subject a message raised: the last known subject it names, if any."""
    text = content.lower()
    found = [(text.rfind(s.lower()), s) for s in ALL_SUBJECTS if s.lower() in text]
    return max(found)[1] if found else None


def _stem(template: str) -> str:
    """The longest fixed part of a template: how its use is recognised in earlier text."""
    return max(re.split(r"\{[a-z]+\}", template), key=len).strip(" ,.:;")


def line(*, discussion_id: str, turn: object, persona: str, topic: str,
         previous: Previous | None, own: list[str] | tuple[str, ...] = ()) -> str:
    """What `persona` says at this turn: an opening, or an answer to `previous`.

    `own` is what this persona said earlier (as far as the caller sees): a line it already used
    is passed over while another is left, so a long discussion does not repeat itself.
    """
    d = _digest(discussion_id, turn, persona)
    voice = LINES[voice_of(persona)]
    subjects = subjects_for(topic)
    their = subject_in(previous.content) if previous is not None else None
    # Raise something the previous message did not mention.
    said = previous.content.lower() if previous is not None else ""
    choices = [s for s in subjects if s.lower() not in said] or list(subjects)
    subject = choices[d[0] % len(choices)]
    if previous is None:
        candidates = [("open", i) for i in range(len(voice["open"]))]
    else:  # every stance and line, starting from this turn's draw
        candidates = [(st, i) for st in _STANCES for i in range(len(voice[st]))]
    start = (d[1] * 7 + d[2]) % len(candidates)
    candidates = candidates[start:] + candidates[:start]
    earlier = " ".join(own)
    stance, index = next(((st, i) for st, i in candidates
                          if _stem(voice[st][i]) not in earlier), candidates[0])
    text = voice[stance][index].format(
        prev=previous.name if previous is not None else "",
        their=their or "this", subject=subject, topic=topic_phrase(topic))
    # Sentences that begin with a subject ("the password reset flow is…") start upper-case.
    return re.sub(r"(^|[.!?] )([a-z])", lambda m: m.group(1) + m.group(2).upper(), text)


_TRANSCRIPT_LINE = re.compile(r"^\[(\d+|None)\] (.+?) \((agent|human|system)\): (.*)$")


def previous_from_lines(lines: list[str]) -> Previous | None:
    """The last speaker in a rendered transcript (`[seq] Name (kind): text` lines)."""
    for raw in reversed(lines):
        m = _TRANSCRIPT_LINE.match(raw)
        if m and m.group(3) != "system":
            return Previous(name=m.group(2), content=m.group(4))
    return None


def own_from_lines(lines: list[str], persona: str) -> list[str]:
    """What `persona` said in a rendered transcript."""
    out = []
    for raw in lines:
        m = _TRANSCRIPT_LINE.match(raw)
        if m and m.group(2) == persona:
            out.append(m.group(4))
    return out
