"""The simulated voice (refplatform/voice.py), pure: deterministic, topic-aware, in the persona's
voice, answering the previous speaker by name without quoting them, not repeating itself."""

from __future__ import annotations

from refplatform import voice
from refplatform.lines import SUBJECTS

TOPIC = "Design the API for user authentication"
PANEL = ["Security Expert", "Backend Developer", "Product Manager"]


def _discussion(did: str, turns: int) -> list[tuple[str, str]]:
    said: list[tuple[str, str]] = []
    previous = None
    for turn in range(turns):
        persona = PANEL[turn % len(PANEL)]
        text = voice.line(discussion_id=did, turn=turn, persona=persona, topic=TOPIC,
                          previous=previous, own=[t for p, t in said if p == persona])
        said.append((persona, text))
        previous = voice.Previous(persona, text)
    return said


def test_the_same_turn_always_says_the_same_thing() -> None:
    assert _discussion("disc_a", 9) == _discussion("disc_a", 9)
    assert _discussion("disc_a", 9) != _discussion("disc_b", 9)  # and discussions differ


def test_each_reply_names_the_previous_speaker_and_never_quotes_them() -> None:
    said = _discussion("disc_a", 18)
    for (prev_persona, prev_text), (_, text) in zip(said, said[1:], strict=False):
        assert prev_persona in text
        assert prev_text[:40] not in text  # no raw quote, so replies never nest
        assert '"' not in text  # nothing quoted


def test_a_persona_does_not_repeat_a_line_in_a_demo_sized_discussion() -> None:
    said = _discussion("disc_a", 18)
    for persona in PANEL:
        stems = [voice._stem(t) for p, t in said if p == persona]
        lines = [t for p, t in said if p == persona]
        assert len(set(lines)) == len(lines), persona
        assert len(stems) == 6


def test_replies_are_about_the_topic_and_in_the_personas_voice() -> None:
    auth = next(family for keys, family in SUBJECTS if "auth" in keys)
    said = _discussion("disc_a", 9)
    assert all(any(s in text for s in auth) for _, text in said)
    assert voice.voice_of("Security Expert") == "security"
    assert voice.voice_of("Product Manager") == "product"
    assert voice.voice_of("Test Agent") == "generic"
    opening = said[0][1]
    assert "designing the API for user authentication" in opening


def test_the_reference_platform_reads_the_previous_speaker_from_the_transcript() -> None:
    lines = ["[1] Security Expert (agent): We need short token lifetime.",
             "[2] John Doe (human): What about @Backend Developer?",
             "[3] Backend Developer (agent): I'd keep it simple."]
    assert voice.previous_from_lines(lines[:2]) == voice.Previous(
        "John Doe", "What about @Backend Developer?")
    assert voice.own_from_lines(lines, "Backend Developer") == ["I'd keep it simple."]
    assert voice.subject_in(lines[0]) == "token lifetime"
